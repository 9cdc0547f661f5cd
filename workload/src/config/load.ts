import { accessSync, constants, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { type Config, configSchema } from './schema.js';

// Reads a config file (YAML or JSON), applies environment overrides, validates it with the one
// schema, and resolves secret files. Every problem is reported with its field path.

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration in ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Environment variables that override config keys (endpoints and secrets). */
export const ENV_OVERRIDES: Record<string, string[]> = {
  DATABASE_URL: ['database', 'url'],
  PORT: ['server', 'port'],
  LOG_LEVEL: ['log', 'level'],
  XIANYU_COOKIES: ['account', 'cookies'],
  XIANYU_API_URL: ['endpoints', 'api'],
  XIANYU_IM_URL: ['endpoints', 'im'],
  XIANYU_PASSPORT_URL: ['endpoints', 'passport'],
  AI_BASE_URL: ['reply', 'ai', 'baseURL'],
  AI_MODEL: ['reply', 'ai', 'model'],
  AI_API_KEY: ['reply', 'ai', 'apiKey'],
};

export interface LoadedConfig {
  config: Config;
  /** Resolved secrets (from the config, a file or the environment). */
  cookies: string;
  aiApiKey: string | undefined;
}

export function loadConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  overrides: { dataDir?: string } = {},
): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [
      `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    ]);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (err) {
    throw new ConfigError(file, [`not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(file, ['(root): must be a mapping of keys, e.g. "account: {id: ...}"']);
  }
  const merged = applyEnv(structuredClone(raw as Record<string, unknown>), env);
  if (overrides.dataDir) merged.dataDir = overrides.dataDir;
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) throw new ConfigError(file, formatIssues(parsed.error));
  const config = parsed.data;
  const base = dirname(resolve(file));
  if (!config.dataDir.startsWith('/')) config.dataDir = resolve(base, config.dataDir);

  const problems: string[] = [];
  // Pool files: relative to the config file; each must be readable (its content is never printed).
  for (const [name, pool] of Object.entries(config.delivery.pools)) {
    pool.file = resolve(base, pool.file);
    try {
      accessSync(pool.file, constants.R_OK);
    } catch (err) {
      problems.push(
        `delivery.pools.${name}.file: cannot read ${pool.file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  }
  const cookies = readSecret(
    config.account.cookies,
    config.account.cookiesFile,
    base,
    'account.cookiesFile',
    problems,
  );
  if (cookies !== undefined && !/(?:^|;\s*)unb=\d+/.test(cookies)) {
    problems.push(
      'account.cookies: the cookie string has no "unb=<digits>" (the seller id); copy the full cookie of goofish.com',
    );
  }
  const ai = config.reply.ai;
  const aiApiKey = readSecret(ai.apiKey, ai.apiKeyFile, base, 'reply.ai.apiKeyFile', problems);
  if (ai.enabled && !aiApiKey) {
    problems.push('reply.ai.apiKey: AI is enabled but no key is given (apiKey, apiKeyFile or AI_API_KEY)');
  }
  if (problems.length) throw new ConfigError(file, problems);
  return { config, cookies: cookies ?? '', aiApiKey };
}

function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  for (const [name, path] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    let node = raw;
    for (const key of path.slice(0, -1)) {
      if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    const last = path.at(-1)!;
    node[last] = name === 'PORT' ? Number(value) : value;
    if (name === 'XIANYU_COOKIES') delete node.cookiesFile;
  }
  return raw;
}

function readSecret(
  inline: string | undefined,
  file: string | undefined,
  base: string,
  field: string,
  problems: string[],
): string | undefined {
  if (inline !== undefined && inline.trim() !== '') return inline.trim();
  if (!file) return undefined;
  try {
    return readFileSync(resolve(base, file), 'utf8').trim();
  } catch (err) {
    problems.push(`${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    return undefined;
  }
}

export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
}
