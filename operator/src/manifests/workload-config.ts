import { configSchema } from '@xianyu/workload/config';
import { formatIssues, type XianyuAccountSpec } from '../api/schema.js';

// account → the workload's config file (workload/src/config/schema.ts). Secrets never appear
// in it: the cookie string and the AI key are files mounted from their Secrets, the database
// URL is the DATABASE_URL environment variable (from its Secret).

export const CONFIG_DIR = '/etc/xianyu';
export const CONFIG_KEY = 'config.yaml';
export const CONFIG_PATH = `${CONFIG_DIR}/${CONFIG_KEY}`;
export const COOKIES_DIR = '/var/run/secrets/xianyu/cookies';
export const COOKIES_FILE = `${COOKIES_DIR}/cookies`;
export const AI_KEY_DIR = '/var/run/secrets/xianyu/ai';
export const AI_KEY_FILE = `${AI_KEY_DIR}/apiKey`;
export const POOLS_DIR = '/var/run/secrets/xianyu/pools';
export const POOL_FILE_NAME = 'codes';
/** Pool i's folder (by index: pool names are free text). */
export const poolDir = (i: number) => `${POOLS_DIR}/${i}`;
export const DATA_DIR = '/var/lib/xianyu';
export const WORKLOAD_PORT = 8080;

export interface RenderTarget {
  name: string;
  namespace: string;
}

/** Copies the keys of `obj` whose values are defined (the workload applies its own defaults). */
function defined<T extends object>(obj: T | undefined): Partial<T> | undefined {
  if (!obj) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return Object.keys(out).length ? (out as Partial<T>) : undefined;
}

function renderReply(reply: XianyuAccountSpec['reply']): Record<string, unknown> {
  if (!reply) return {};
  const { ai, ...rest } = reply;
  const out: Record<string, unknown> = { ...defined(rest) };
  if (ai) {
    const { apiKeySecretRef, bargaining, ...aiRest } = ai;
    out.ai = {
      ...defined(aiRest),
      ...(apiKeySecretRef ? { apiKeyFile: AI_KEY_FILE } : {}),
      ...(bargaining ? { bargaining: defined(bargaining) } : {}),
    };
  }
  return out;
}

function renderDelivery(d: NonNullable<XianyuAccountSpec['delivery']>): Record<string, unknown> {
  const { pools, rules, orderDetails, ...rest } = d;
  return {
    ...defined(rest),
    ...(orderDetails ? { orderDetails: defined(orderDetails) ?? {} } : {}),
    pools: Object.fromEntries(
      (pools ?? []).map((p, i) => [
        p.name,
        {
          file: `${poolDir(i)}/${POOL_FILE_NAME}`,
          ...(p.lowStock !== undefined ? { lowStock: p.lowStock } : {}),
        },
      ]),
    ),
    rules: (rules ?? []).map(({ source, ...r }) => ({ ...defined(r), source: defined(source) })),
  };
}

/** The workload config for an account whose spec has been validated (XianyuAccountSpec.parse). */
export function renderWorkloadConfig(
  account: RenderTarget,
  spec: XianyuAccountSpec,
): Record<string, unknown> {
  const config: Record<string, unknown> = {
    account: { id: spec.accountId ?? `${account.namespace}/${account.name}`, cookiesFile: COOKIES_FILE },
  };
  const endpoints = defined(spec.endpoints);
  if (endpoints) config.endpoints = endpoints;
  const session = defined(spec.session);
  if (session) config.session = session;
  config.reply = renderReply(spec.reply);
  if (spec.delivery) config.delivery = renderDelivery(spec.delivery);
  config.dataDir = `${DATA_DIR}/data`;
  config.server = { port: WORKLOAD_PORT, host: '0.0.0.0' };
  config.log = { level: spec.log?.level ?? 'info' };
  return config;
}

/** The config file's text: JSON (a subset of YAML) behind a header comment. */
export function renderConfigFile(account: RenderTarget, spec: XianyuAccountSpec): string {
  const body = JSON.stringify(renderWorkloadConfig(account, spec), null, 2);
  return `# Rendered by xianyu-operator from XianyuAccount ${account.namespace}/${account.name}. Do not edit: changes are overwritten.\n${body}\n`;
}

/**
 * What the workload would refuse in the config rendered for this spec (its own schema, with the
 * checks a CRD cannot make: two delivery rules taking one order at one priority, ...), as
 * `spec.<path>: <message>` lines; undefined when it would start.
 */
export function workloadConfigProblems(account: RenderTarget, spec: XianyuAccountSpec): string | undefined {
  const r = configSchema.safeParse(renderWorkloadConfig(account, spec));
  return r.success ? undefined : formatIssues(r.error);
}
