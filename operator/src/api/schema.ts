import { checkKeywordPatterns } from '@xianyu/workload/config';
import { z } from 'zod';

// The XianyuAccount API: the one source of the TypeScript types, the runtime validation
// (XianyuAccountSpec.safeParse) and the CRD's openAPIV3Schema (crd.ts turns this into the
// structural schema in crds/). The spec follows the workload config's shape
// (workload/src/config/schema.ts), with Secret references wherever the workload takes a secret.
//
// Conventions:
// - Every field has a description: it is what `kubectl explain xya.spec...` prints.
// - Defaults live here (zod applies them when the operator renders the workload config); the
//   CRD does not carry them, so a stored object is exactly what its author wrote.
// - `.meta({ 'x-kubernetes-validations': [...] })` adds CEL rules the API server enforces;
//   each rule is mirrored by a zod refinement so runtime validation agrees with the server.

export type CelRule = { rule: string; message: string; fieldPath?: string; reason?: string };
const cel = (...rules: CelRule[]) => ({ 'x-kubernetes-validations': rules });

/** Kubernetes resource.Quantity syntax (apimachinery's regular expression). */
export const QUANTITY_PATTERN =
  /^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
/** Children are named `xianyu-<name>`; Service names must be DNS-1035 labels of <= 63 characters. */
export const MAX_ACCOUNT_NAME_LENGTH = 56;
export const ACCOUNT_NAME_PATTERN = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

const text = (description: string) => z.string().describe(description);
const nonEmpty = (description: string) => z.string().min(1).describe(description);
const int = (description: string, min = 0) => z.number().int().min(min).describe(description);

function secretRef(what: string, defaultKey: string) {
  return z
    .object({
      name: z
        .string()
        .min(1)
        .max(253)
        .regex(DNS_SUBDOMAIN)
        .describe(`Name of the Secret (in the account's namespace) that holds ${what}.`),
      key: z
        .string()
        .min(1)
        .max(253)
        .regex(SECRET_KEY)
        .default(defaultKey)
        .describe(`Key in the Secret's data. Default: ${defaultKey}.`),
    })
    .describe(`Reference to the Secret key that holds ${what}.`);
}

export const SecretKeyRef = secretRef('the value', 'value');
export type SecretKeyRef = z.output<typeof SecretKeyRef>;

const keywordRule = z
  .object({
    match: z
      .array(z.string().trim().min(1).describe('A keyword or pattern.'))
      .min(1)
      .max(50)
      .describe('Keywords (or regular expressions with mode: regex); any of them fires the rule.'),
    mode: z
      .enum(['contains', 'exact', 'regex'])
      .default('contains')
      .describe('How a keyword matches the buyer message: contains, exact or regex. Default: contains.'),
    reply: text(
      'Reply text with placeholders ({buyer_name}, {item_title}, ...); "" means deliberately silent.',
    ),
    itemIds: z
      .array(nonEmpty('A Xianyu item id.'))
      .max(1000)
      .optional()
      .describe('Only fire for conversations about these items.'),
    name: text('Name of the rule, shown in decision logs.').optional(),
  })
  .superRefine(checkKeywordPatterns)
  .describe('A keyword rule: the first matching rule answers.');

const bargaining = z
  .object({
    maxDiscountPercent: z
      .number()
      .min(0)
      .max(100)
      .default(10)
      .describe('Largest discount the AI may grant, in percent of the price. Default: 10.'),
    maxDiscountAmount: z.number().min(0).optional().describe('Largest discount the AI may grant, in yuan.'),
    maxRounds: int('Bargaining rounds before the refusal text is sent. Default: 3.').default(3),
    refusal: text('Text sent when the buyer asks for more than the limits allow.').optional(),
  })
  .describe('Price-bargaining limits for AI answers.');

const ai = z
  .object({
    enabled: z
      .boolean()
      .default(false)
      .describe('Answer with an OpenAI-compatible chat API. Default: false.'),
    scope: z
      .enum(['all', 'bargaining'])
      .default('all')
      .describe(
        'all: AI answers what no keyword rule answers; bargaining: only price questions. Default: all.',
      ),
    baseURL: z
      .url()
      .optional()
      .describe('Base URL of the OpenAI-compatible API. Default: https://api.openai.com/v1.'),
    model: nonEmpty('Chat model name. Default: gpt-4o-mini.').optional(),
    apiKeySecretRef: secretRef('the AI API key', 'apiKey').optional(),
    systemPrompt: text('System prompt given to the model.').optional(),
    timeoutMs: int('Timeout of one AI request in milliseconds.', 1).optional(),
    maxTurns: int('Conversation turns given to the model.').optional(),
    bargaining: bargaining.optional(),
  })
  .refine((a) => !a.enabled || a.apiKeySecretRef !== undefined, {
    message: 'apiKeySecretRef is required when enabled is true',
    path: ['apiKeySecretRef'],
  })
  .meta(
    cel({
      rule: '!(has(self.enabled) && self.enabled) || has(self.apiKeySecretRef)',
      message: 'apiKeySecretRef is required when enabled is true',
      fieldPath: '.apiKeySecretRef',
      reason: 'FieldValueRequired',
    }),
  )
  .describe('AI answers through an OpenAI-compatible chat API.');

const delay = z
  .object({
    minMs: int('Shortest human-like delay before a reply, in milliseconds. Default: 0.').default(0),
    maxMs: int('Longest human-like delay before a reply, in milliseconds. Default: 0.').default(0),
  })
  .refine((d) => d.maxMs >= d.minMs, { message: 'maxMs must be >= minMs', path: ['maxMs'] })
  .meta(
    cel({
      rule: '!has(self.maxMs) || self.maxMs >= (has(self.minMs) ? self.minMs : 0)',
      message: 'maxMs must be >= minMs',
      fieldPath: '.maxMs',
    }),
  )
  .describe('Human-like reply delay, drawn between minMs and maxMs.');

const reply = z
  .object({
    default: z
      .object({
        text: text('Default reply text with placeholders.'),
        oncePerConversation: z
          .boolean()
          .optional()
          .describe('Send the default reply only once per conversation. Default: false.'),
      })
      .optional()
      .describe('Reply sent when no rule and no AI answer applies.'),
    itemDefaults: z
      .array(
        z
          .object({ itemId: nonEmpty('A Xianyu item id.'), text: text('Reply text for this item.') })
          .describe('Default reply for one item.'),
      )
      .max(1000)
      .optional()
      .describe('Default reply per item, used after AI and before the account default.'),
    keywords: z.array(keywordRule).max(500).optional().describe('Keyword rules, tried in order.'),
    ai: ai.optional(),
    manualTakeoverMinutes: z
      .number()
      .min(0)
      .optional()
      .describe(
        'Minutes the bot stays silent in a conversation after the seller replies by hand. Default: 10.',
      ),
    delay: delay.optional(),
    debounceMs: int(
      'Answer only the last message of a burst within this many milliseconds. Default: 800.',
    ).optional(),
    rateLimit: z
      .object({ perMinute: int('Most messages sent per minute. Default: 60.', 1).optional() })
      .optional()
      .describe('Per-account send rate limit.'),
  })
  .describe('How the account answers buyers.');

const session = z
  .object({
    heartbeatIntervalMs: int('IM heartbeat interval in milliseconds.', 1).optional(),
    heartbeatTimeoutMs: int('IM heartbeat timeout in milliseconds.', 1).optional(),
    tokenRefreshIntervalMs: int('Access-token refresh interval in milliseconds.', 1).optional(),
    tokenRefreshJitterMs: int(
      'Random jitter added to the token refresh interval, in milliseconds.',
    ).optional(),
    tokenRetryIntervalMs: int('Retry interval after a failed token refresh, in milliseconds.', 1).optional(),
    messageMaxAgeMs: int('Ignore pushed messages older than this many milliseconds.', 1).optional(),
    dedupCapacity: int('How many message ids are remembered for de-duplication.', 1).optional(),
    backoffInitialMs: int('First reconnect delay in milliseconds.', 1).optional(),
    backoffMaxMs: int('Longest reconnect delay in milliseconds.', 1).optional(),
    riskControlBackoffMs: int(
      'Pause after the service signals risk control, in milliseconds (at least 60000: hammering gets the account banned).',
      60_000,
    ).optional(),
    registerSettleMs: int('Pause between IM registration and the first sync, in milliseconds.').optional(),
  })
  .refine((s) => s.backoffMaxMs === undefined || s.backoffMaxMs >= (s.backoffInitialMs ?? 1000), {
    message: 'backoffMaxMs must be >= backoffInitialMs',
    path: ['backoffMaxMs'],
  })
  .meta(
    cel({
      rule: '!has(self.backoffMaxMs) || self.backoffMaxMs >= (has(self.backoffInitialMs) ? self.backoffInitialMs : 1000)',
      message: 'backoffMaxMs must be >= backoffInitialMs',
      fieldPath: '.backoffMaxMs',
    }),
  )
  .describe('Session tuning (IM connection, token refresh, reconnect backoff). Defaults suit most accounts.');

const endpoints = z
  .object({
    api: z.url().optional().describe('Xianyu HTTP API base URL. Default: https://h5api.m.goofish.com.'),
    im: z.url().optional().describe('Xianyu IM WebSocket URL. Default: wss://wss-goofish.dingtalk.com/.'),
    passport: z
      .url()
      .optional()
      .describe('Xianyu passport (login) base URL. Default: https://passport.goofish.com.'),
  })
  .describe('Service endpoints; change only to point the account at a simulator or a proxy.');

// --- delivery ---------------------------------------------------------------------------
// Rendered into the workload's `delivery` section; pools are Secrets mounted as files (a
// mounted Secret changes in place, and the workload re-imports a pool file when it changes).
// The workload checks the rest at start (rule conflicts, unknown pools) and refuses to run.
const SOURCE_TYPES = ['pool', 'text', 'http', 'image'] as const;
/** Per source type, the field it needs. */
const SOURCE_NEEDS = { pool: 'pool', text: 'text', http: 'url', image: 'url' } as const;

const deliverySource = z
  .object({
    type: z
      .enum(SOURCE_TYPES)
      .describe(
        'pool: a code per unit from a pool; text: fixed text; http: GET/POST a URL; image: an image message.',
      ),
    pool: nonEmpty('type pool: name of a pool in delivery.pools.').optional(),
    text: nonEmpty('type text: the text, with placeholders; it is {code} in the message.').optional(),
    url: nonEmpty(
      'type http: URL with placeholders ({order_id} {unit} {item_id} {quantity} {spec}); type image: a Xianyu CDN image URL.',
    ).optional(),
    method: z.enum(['GET', 'POST']).optional().describe('type http: GET or POST. Default: GET.'),
    body: text('type http: POST body with placeholders.').optional(),
    headers: z
      .record(z.string(), z.string().describe('A header value.'))
      .optional()
      .describe('type http: request headers.'),
    field: text('type http: take this field of a JSON answer. Default: the whole body.').optional(),
    timeoutMs: int('type http: timeout of one request in milliseconds. Default: 5000.', 1).optional(),
    retries: z
      .number()
      .int()
      .min(0)
      .max(10)
      .optional()
      .describe('type http: retries after a failure. Default: 3.'),
    retryDelayMs: int('type http: pause before a retry in milliseconds. Default: 500.').optional(),
    width: int('type image: width in pixels. Default: 800.', 1).optional(),
    height: int('type image: height in pixels. Default: 600.', 1).optional(),
  })
  .refine((s) => s[SOURCE_NEEDS[s.type]] !== undefined, {
    message: 'pool needs pool, text needs text, http and image need url',
  })
  .meta(
    cel({
      rule:
        "(self.type == 'pool' && has(self.pool)) || (self.type == 'text' && has(self.text)) || " +
        "((self.type == 'http' || self.type == 'image') && has(self.url))",
      message: 'pool needs pool, text needs text, http and image need url',
    }),
  )
  .describe('Where the goods of one unit come from.');

const deliveryRule = z
  .object({
    name: nonEmpty('Unique rule name (logs, metrics, `orders`).'),
    itemIds: z
      .array(nonEmpty('A Xianyu item id.'))
      .min(1)
      .max(1000)
      .optional()
      .describe('Orders of these items.'),
    keywords: z
      .array(nonEmpty('A keyword.'))
      .min(1)
      .max(100)
      .optional()
      .describe('Orders whose item title + description contains any of these (when no item rule matches).'),
    spec: z
      .object({ name: nonEmpty('规格名, e.g. 版本.'), value: nonEmpty('规格值, e.g. 标准版.') })
      .optional()
      .describe('Only orders of this spec (规格) of a multi-spec item.'),
    source: deliverySource,
    message: nonEmpty(
      'Sent per unit; placeholders {code} {order_id} {item_title} {quantity} {buyer_name} {unit}. Default: {code}.',
    ).optional(),
    delayMs: int('Wait after payment before sending, in milliseconds. Default: 0.').optional(),
    confirmShipment: z.boolean().optional().describe('Override of delivery.confirmShipment for this rule.'),
  })
  .refine((r) => (r.itemIds === undefined) !== (r.keywords === undefined), {
    message: 'give either itemIds or keywords (exactly one)',
    path: ['itemIds'],
  })
  .meta(
    cel({
      rule: 'has(self.itemIds) != has(self.keywords)',
      message: 'give either itemIds or keywords (exactly one)',
      fieldPath: '.itemIds',
    }),
  )
  .describe('An auto-delivery rule. Priority: item + spec, then item, then keyword.');

const deliveryPool = z
  .object({
    name: nonEmpty(
      'Pool name, named by rules (source.pool); pools are shared by every account using the same database.',
    ),
    secretRef: secretRef('the codes, one per line', 'codes'),
    lowStock: int('Raise a low-stock event at or below this many free codes. Default: 5.').optional(),
  })
  .describe('A pool of codes from a Secret; each code is handed out once.');

const delivery = z
  .object({
    enabled: z.boolean().optional().describe('Deliver paid orders. Default: true.'),
    confirmShipment: z
      .boolean()
      .optional()
      .describe('Confirm the shipment (consign) after every unit was sent. Default: true.'),
    freeShipping: z
      .boolean()
      .optional()
      .describe('Bargain orders (我已小刀): call the free-shipping API before delivering. Default: true.'),
    unitIntervalMs: int('Pause between the units of one order, in milliseconds. Default: 1000.').optional(),
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(256)
      .optional()
      .describe('Orders delivered at once. Default: 16.'),
    retryIntervalMs: int('Re-check of waiting orders, in milliseconds. Default: 30000.', 1).optional(),
    orderDetails: z
      .object({
        source: z
          .enum(['none', 'browser', 'http'])
          .optional()
          .describe(
            'none: quantity 1, no spec; browser: the order page in Chromium (needs workload.browser); http: the page without a browser. Default: none.',
          ),
        url: nonEmpty('Order-detail page; {order_id} is replaced.').optional(),
      })
      .optional()
      .describe('Where quantity and spec of an order come from.'),
    pools: z
      .array(deliveryPool)
      .max(50)
      .optional()
      // A list keyed by name: the API server itself refuses two pools of one name.
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })
      .describe('Code pools (Secrets), by unique name.'),
    rules: z.array(deliveryRule).max(100).optional().describe('Delivery rules.'),
  })
  .superRefine((d, ctx) => {
    const pools = new Set((d.pools ?? []).map((p) => p.name));
    if (pools.size !== (d.pools ?? []).length)
      ctx.addIssue({ code: 'custom', path: ['pools'], message: 'pool names must be unique' });
    // Checked here (the operator reports it as ConfigValid=False) and by the workload; a CEL rule
    // across rules and pools would exceed the API server's cost budget.
    d.rules?.forEach((r, i) => {
      if (r.source.type === 'pool' && r.source.pool !== undefined && !pools.has(r.source.pool))
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'source', 'pool'],
          message: `no pool "${r.source.pool}" in delivery.pools`,
        });
    });
  })
  .describe('Automatic delivery of virtual goods after payment (自动发货), exactly once per unit.');
// --- end of delivery --------------------------------------------------------------------

const toleration = z
  .object({
    key: text(
      'Taint key the toleration applies to; empty with operator Exists matches all taints.',
    ).optional(),
    operator: z.enum(['Exists', 'Equal']).optional().describe('Exists or Equal. Default: Equal.'),
    value: text('Taint value matched with operator Equal.').optional(),
    effect: z
      .enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute'])
      .optional()
      .describe('Taint effect to match; empty matches all effects.'),
    tolerationSeconds: z
      .number()
      .int()
      .optional()
      .describe('For NoExecute: how long the pod stays bound after the taint appears.'),
  })
  .describe('A pod toleration (core/v1 Toleration).');

const quantity = z
  .union([z.string().regex(QUANTITY_PATTERN, 'must be a quantity like 100m, 128Mi or 1'), z.number().int()])
  .meta({ 'x-xianyu-quantity': true })
  .describe('A resource quantity (e.g. 100m, 128Mi).');

const resources = z
  .object({
    requests: z.record(z.string(), quantity).optional().describe('Minimum resources (cpu, memory).'),
    limits: z.record(z.string(), quantity).optional().describe('Maximum resources (cpu, memory).'),
  })
  .describe("Resources of the workload container. Default: the operator's --workload-resources.");

const workload = z
  .object({
    image: nonEmpty("Workload container image. Default: the operator's --workload-image.").optional(),
    imagePullPolicy: z
      .enum(['Always', 'IfNotPresent', 'Never'])
      .optional()
      .describe('Image pull policy. Default: IfNotPresent.'),
    resources: resources.optional(),
    nodeSelector: z
      .record(z.string(), z.string().describe('Required value of the node label.'))
      .optional()
      .describe('Labels a node must have to run the workload pod.'),
    tolerations: z.array(toleration).max(32).optional().describe('Tolerations of the workload pod.'),
    browser: z
      .object({
        enabled: z
          .boolean()
          .optional()
          .describe('Allow a headless browser for login refresh (needs more memory). Default: false.'),
      })
      .optional()
      .describe('Headless browser for login refresh.'),
  })
  .describe('How the workload pod runs.');

export const XianyuAccountSpec = z
  .object({
    accountId: nonEmpty(
      'Account name used in logs, metrics and storage. Default: <namespace>/<name>.',
    ).optional(),
    paused: z
      .boolean()
      .optional()
      .describe(
        'Scale the workload to zero while keeping everything else (also: annotation xianyu.io/paused).',
      ),
    credentials: z
      .object({ cookiesSecretRef: secretRef('the full goofish.com cookie string', 'cookies') })
      .describe('Login credentials of the seller account.'),
    endpoints: endpoints.optional(),
    reply: reply.optional(),
    delivery: delivery.optional(),
    session: session.optional(),
    database: z
      .object({ urlSecretRef: secretRef('a PostgreSQL connection URL', 'url').optional() })
      .optional()
      .describe(
        "PostgreSQL database. Default: the operator's --default-database-secret, else the embedded PGlite (data on an emptyDir).",
      ),
    log: z
      .object({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .optional()
          .describe('Log level of the workload. Default: info.'),
      })
      .optional()
      .describe('Workload logging.'),
    workload: workload.optional(),
  })
  .describe('Desired state of a Xianyu seller account.');

export type XianyuAccountSpec = z.output<typeof XianyuAccountSpec>;
export type XianyuAccountSpecInput = z.input<typeof XianyuAccountSpec>;

// --- status ------------------------------------------------------------------------------

export const CONDITION_STATUS = ['True', 'False', 'Unknown'] as const;

export const Condition = z
  .object({
    type: z
      .string()
      .max(316)
      .regex(
        /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
      )
      .describe('Type of the condition in CamelCase, e.g. Ready, ConfigValid, Connected.'),
    status: z.enum(CONDITION_STATUS).describe('True, False or Unknown.'),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('metadata.generation the condition was set for.'),
    lastTransitionTime: z.iso.datetime().describe('When the status last changed.'),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .describe('Programmatic CamelCase reason for the last transition.'),
    message: z.string().max(32768).describe('Human-readable details; never contains secrets.'),
  })
  .describe('A condition in the metav1.Condition shape.');
export type Condition = z.output<typeof Condition>;

export const PHASES = ['Pending', 'Running', 'Paused', 'Failed'] as const;
export type Phase = (typeof PHASES)[number];

export const XianyuAccountStatus = z
  .object({
    phase: z
      .enum(PHASES)
      .optional()
      .describe(
        'Pending (starting), Running (ready), Paused (scaled to zero) or Failed (invalid configuration).',
      ),
    conditions: z
      .array(Condition)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })
      .describe(
        'Ready, ConfigValid and Paused (set by the operator); Connected, LoginValid and StockAvailable (reported by the workload).',
      ),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('metadata.generation the operator last acted on.'),
    deploymentName: text('Name of the child Deployment that runs the workload.').optional(),
    connectedSince: z.iso.datetime().optional().describe('When the workload last connected to Xianyu IM.'),
    lastMessageTime: z.iso.datetime().optional().describe('When the workload last received a buyer message.'),
  })
  .describe('Observed state of a Xianyu seller account.');
export type XianyuAccountStatus = z.output<typeof XianyuAccountStatus>;

/** A XianyuAccount as read from the API (spec not yet validated). */
export interface XianyuAccount {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    generation?: number;
    resourceVersion?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: unknown;
  status?: XianyuAccountStatus;
}

/** Schema of metadata.name (children are `xianyu-<name>`, and a Service name is a DNS-1035 label). */
export const NAME_SCHEMA = {
  type: 'string',
  maxLength: MAX_ACCOUNT_NAME_LENGTH,
  pattern: ACCOUNT_NAME_PATTERN.source,
  description: `A DNS-1035 label (lowercase letters, digits and '-', starting with a letter) of at most ${MAX_ACCOUNT_NAME_LENGTH} characters.`,
};

/** Validation issues as `spec.<path>: <message>` (paths of the spec, or of the same-shaped workload config). */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map(
      (i) =>
        `spec.${i.path
          .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
          .join('.')
          .replace(/\.\[/g, '[')}: ${i.message}`,
    )
    .join('; ');
}
