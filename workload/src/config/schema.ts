import { z } from 'zod';
import { ruleConflicts } from '../delivery/rules.js';

// The one schema of the workload's configuration. Types, defaults and validation all come
// from here; `check --config FILE` prints its errors with their field paths.

const nonEmpty = z.string().trim().min(1, 'must not be empty');

/** A keyword rule in regex mode needs patterns that compile (also used by the operator's CRD schema). */
export function checkKeywordPatterns(rule: { mode: string; match: string[] }, ctx: z.RefinementCtx): void {
  if (rule.mode !== 'regex') return;
  rule.match.forEach((pattern, i) => {
    try {
      new RegExp(pattern, 'u');
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        path: ['match', i],
        message: `invalid regex: ${(err as Error).message}`,
      });
    }
  });
}

const keywordRule = z
  .object({
    match: z
      .union([nonEmpty, z.array(nonEmpty).min(1, 'needs at least one keyword')])
      .transform((m) => (Array.isArray(m) ? m : [m]))
      .describe('Keywords; any of them fires the rule'),
    mode: z.enum(['contains', 'exact', 'regex']).default('contains'),
    reply: z.string().describe('Reply text with placeholders; an empty string means deliberately silent'),
    itemIds: z.array(nonEmpty).optional().describe('Only for conversations about these items'),
    name: z.string().optional().describe('Name shown in decision logs'),
  })
  .superRefine(checkKeywordPatterns);

const bargaining = z.object({
  maxDiscountPercent: z.number().min(0).max(100).default(10),
  maxDiscountAmount: z.number().min(0).optional().describe('Largest discount in yuan'),
  maxRounds: z.number().int().min(0).default(3),
  refusal: z.string().default('不好意思，这已经是最低价了哦～'),
});

const ai = z
  .object({
    enabled: z.boolean().default(false),
    scope: z
      .enum(['all', 'bargaining'])
      .default('all')
      .describe('all: AI answers what no keyword rule answers; bargaining: only price questions'),
    baseURL: z.url().default('https://api.openai.com/v1'),
    model: nonEmpty.default('gpt-4o-mini'),
    apiKey: z.string().optional(),
    apiKeyFile: z.string().optional(),
    systemPrompt: z.string().default('你是闲鱼卖家的客服助手，回答简短、礼貌、真实，不编造商品信息。'),
    timeoutMs: z.number().int().positive().default(15000),
    maxTurns: z.number().int().min(0).default(10).describe('Conversation turns given to the model'),
    bargaining: bargaining.prefault({}),
  })
  .prefault({});

const reply = z.object({
  default: z
    .object({
      text: z.string(),
      oncePerConversation: z.boolean().default(false),
    })
    .optional(),
  itemDefaults: z
    .array(z.object({ itemId: nonEmpty, text: z.string() }))
    .default([])
    .describe('Default reply per item, used after AI and before the account default'),
  keywords: z.array(keywordRule).default([]),
  ai,
  manualTakeoverMinutes: z.number().min(0).default(10),
  delay: z
    .object({ minMs: z.number().int().min(0).default(0), maxMs: z.number().int().min(0).default(0) })
    .refine((d) => d.maxMs >= d.minMs, { message: 'maxMs must be >= minMs', path: ['maxMs'] })
    .prefault({}),
  debounceMs: z.number().int().min(0).default(800).describe('Answer only the last message of a burst'),
  rateLimit: z
    .object({ perMinute: z.number().int().positive().default(60) })
    .prefault({})
    .describe('Per-account send rate limit'),
});

const session = z.object({
  heartbeatIntervalMs: z.number().int().positive().default(15_000),
  heartbeatTimeoutMs: z.number().int().positive().default(5_000),
  tokenRefreshIntervalMs: z.number().int().positive().default(3_600_000),
  tokenRefreshJitterMs: z.number().int().min(0).default(300_000),
  tokenRetryIntervalMs: z.number().int().positive().default(600_000),
  messageMaxAgeMs: z.number().int().positive().default(300_000),
  dedupCapacity: z.number().int().positive().default(10_000),
  backoffInitialMs: z.number().int().positive().default(1_000),
  backoffMaxMs: z.number().int().positive().default(60_000),
  riskControlBackoffMs: z
    .number()
    .int()
    .min(60_000, 'must be at least 60000: hammering a risk-controlled account gets it banned')
    .default(300_000),
  registerSettleMs: z.number().int().min(0).default(1_000).describe('Pause between /reg and ackDiff'),
});

// ---- auto-delivery (自动发货) ----

const specMatch = z
  .object({ name: nonEmpty.describe('规格名, e.g. 版本'), value: nonEmpty.describe('规格值, e.g. 标准版') })
  .describe('Only orders of this spec (规格) of a multi-spec item');

const deliverySource = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('pool'),
    pool: nonEmpty.describe('Name of a pool in delivery.pools: one code per unit, each handed out once'),
  }),
  z.object({
    type: z.literal('text'),
    text: nonEmpty.describe('Fixed text with placeholders; it is {code} in the message'),
  }),
  z.object({
    type: z.literal('http'),
    url: nonEmpty.describe(
      'URL with placeholders ({order_id} {unit} {item_id} {quantity} {spec}), URL-encoded',
    ),
    method: z.enum(['GET', 'POST']).default('GET'),
    body: z.string().optional().describe('POST body with placeholders (JSON-escaped)'),
    headers: z.record(z.string(), z.string()).default({}),
    field: z.string().optional().describe('Take this field of a JSON answer; default: the whole body'),
    timeoutMs: z.number().int().positive().default(5000),
    retries: z.number().int().min(0).max(10).default(3),
    retryDelayMs: z.number().int().min(0).default(500),
  }),
  z.object({
    type: z.literal('image'),
    url: z.url().describe('A Xianyu CDN image URL (upload it first); sent as an image message'),
    width: z.number().int().positive().default(800),
    height: z.number().int().positive().default(600),
  }),
]);

const deliveryRule = z
  .object({
    name: nonEmpty.describe('Unique rule name (logs, metrics, the orders table)'),
    itemIds: z.array(nonEmpty).min(1).optional().describe('Orders of these items'),
    keywords: z
      .array(nonEmpty)
      .min(1)
      .optional()
      .describe('Orders whose item title + description contains any of these (when no item rule matches)'),
    spec: specMatch.optional(),
    source: deliverySource,
    message: z
      .string()
      .min(1)
      .default('{code}')
      .describe('Sent per unit; placeholders {code} {order_id} {item_title} {quantity} {buyer_name} {unit}'),
    delayMs: z.number().int().min(0).default(0).describe('Wait after payment before sending'),
    confirmShipment: z.boolean().optional().describe('Override of delivery.confirmShipment'),
  })
  .superRefine((r, ctx) => {
    if ((r.itemIds === undefined) === (r.keywords === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['itemIds'],
        message: 'give either itemIds or keywords (exactly one)',
      });
    }
    if (r.source.type === 'image' && /\{code\}/.test(r.message) && r.message !== '{code}') {
      ctx.addIssue({ code: 'custom', path: ['message'], message: 'an image source sends the image only' });
    }
  });

const deliveryPool = z.object({
  file: nonEmpty.describe('Codes, one per line (a mounted Secret); re-imported whenever it changes'),
  lowStock: z
    .number()
    .int()
    .min(0)
    .default(5)
    .describe('Raise a low-stock event at or below this many free codes'),
});

const delivery = z
  .object({
    enabled: z.boolean().default(true),
    confirmShipment: z
      .boolean()
      .default(true)
      .describe('Call mtop.taobao.idle.logistic.consign.dummy after every unit was sent'),
    freeShipping: z
      .boolean()
      .default(true)
      .describe('Bargain orders (我已小刀，待刀成): call the free-shipping API before delivering'),
    unitIntervalMs: z.number().int().min(0).default(1000).describe('Pause between the units of one order'),
    concurrency: z.number().int().min(1).max(256).default(16).describe('Orders delivered at once'),
    retryIntervalMs: z.number().int().positive().default(30_000).describe('Re-check of waiting orders'),
    poolCheckIntervalMs: z
      .number()
      .int()
      .positive()
      .default(5_000)
      .describe('How often pool files are checked'),
    orderDetails: z
      .object({
        source: z
          .enum(['none', 'browser', 'http'])
          .default('none')
          .describe(
            'none: quantity 1, no spec; browser: render the order-detail page in Chromium (playwright-core); ' +
              'http: fetch the same page without a browser (only for server-rendered pages, e.g. the simulator)',
          ),
        url: z
          .string()
          .default('https://www.goofish.com/order-detail?orderId={order_id}&role=seller')
          .describe('Order-detail page; {order_id} is replaced'),
        chromiumPath: z.string().default('/usr/bin/chromium'),
        timeoutMs: z.number().int().positive().default(15_000),
      })
      .prefault({}),
    pools: z.record(nonEmpty, deliveryPool).default({}),
    rules: z.array(deliveryRule).default([]),
  })
  .superRefine((d, ctx) => {
    const names = new Map<string, number>();
    d.rules.forEach((r, i) => {
      const prev = names.get(r.name);
      if (prev !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'name'],
          message: `duplicate rule name (also rules.${prev})`,
        });
      }
      names.set(r.name, i);
      if (r.source.type === 'pool' && !(r.source.pool in d.pools)) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'source', 'pool'],
          message: `no pool "${r.source.pool}" in delivery.pools`,
        });
      }
    });
    for (const c of ruleConflicts(d.rules)) {
      ctx.addIssue({ code: 'custom', path: ['rules', c.b], message: c.message });
    }
  });

export const configSchema = z.object({
  account: z
    .object({
      id: nonEmpty.describe('Account name used in logs, metrics and storage'),
      cookies: z.string().optional().describe('Full cookie string; prefer cookiesFile or XIANYU_COOKIES'),
      cookiesFile: z.string().optional(),
    })
    .refine((a) => a.cookies !== undefined || a.cookiesFile !== undefined, {
      message: 'give account.cookies, account.cookiesFile or the XIANYU_COOKIES environment variable',
      path: ['cookies'],
    }),
  endpoints: z
    .object({
      api: z.url().default('https://h5api.m.goofish.com'),
      im: z.url().default('wss://wss-goofish.dingtalk.com/'),
      passport: z.url().default('https://passport.goofish.com'),
    })
    .prefault({}),
  session: session.prefault({}),
  reply: reply.prefault({}),
  delivery: delivery.prefault({}),
  database: z
    .object({
      url: z.string().optional(),
      poolSize: z
        .number()
        .int()
        .min(1)
        .max(100)
        .default(10)
        .describe(
          'PostgreSQL connections at most (3 kept open); many accounts on one server: lower it or use PgBouncer',
        ),
    })
    .prefault({}),
  dataDir: z.string().default('./data').describe('PGlite data directory when no database URL is given'),
  server: z
    .object({ port: z.number().int().min(0).max(65535).default(8080), host: z.string().default('0.0.0.0') })
    .prefault({}),
  log: z
    .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type KeywordRule = Config['reply']['keywords'][number];
export type ReplyConfig = Config['reply'];
export type SessionConfig = Config['session'];
export type AiConfig = Config['reply']['ai'];
export type DeliveryConfig = Config['delivery'];
export type DeliveryRule = DeliveryConfig['rules'][number];
export type DeliverySource = DeliveryRule['source'];
