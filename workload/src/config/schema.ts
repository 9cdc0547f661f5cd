import { z } from 'zod';

// The one schema of the workload's configuration. Types, defaults and validation all come
// from here; `check --config FILE` prints its errors with their field paths.

const nonEmpty = z.string().trim().min(1, 'must not be empty');

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
  .superRefine((rule, ctx) => {
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
  });

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
  database: z.object({ url: z.string().optional() }).prefault({}),
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
