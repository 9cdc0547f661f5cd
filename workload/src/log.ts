import { type DestinationStream, type Logger, pino } from 'pino';

// Secrets must never reach a log line. Known secret fields are censored by path; values that
// slip into free text (a cookie string inside an error message) are scrubbed by pattern.
const SECRET_KEYS = [
  'cookie',
  'cookies',
  'Cookie',
  'token',
  'accessToken',
  'apiKey',
  'authorization',
  'Authorization',
  'code',
  'codes',
  'password',
  'secret',
];
const REDACT_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `headers.${k}`]);

const SECRET_PATTERNS: RegExp[] = [
  /\b(_m_h5_tk|_m_h5_tk_enc|cookie2|sgcookie|unb|t|cna|XSRF-TOKEN|x5sec|havana_lgc2_77|_tb_token_)=[^;\s"]+/g,
  /\bBearer\s+[A-Za-z0-9._~+/=-]+/g,
  /\bsk-[A-Za-z0-9_-]{8,}/g,
];

export function scrub(text: string): string {
  let out = text;
  for (const p of SECRET_PATTERNS) out = out.replace(p, (m) => `${m.split(/[=\s]/)[0]}=[REDACTED]`);
  return out;
}

export function createLogger(
  level = 'info',
  destination?: DestinationStream,
  extraSecrets: () => string[] = () => [],
): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        // Free-text scrubbing: message strings and error messages.
        logMethod(args, method) {
          const secrets = extraSecrets().filter((s) => s.length >= 4);
          const clean = (v: unknown): unknown => {
            if (typeof v !== 'string') return v;
            let s = scrub(v);
            for (const secret of secrets) s = s.split(secret).join('[REDACTED]');
            return s;
          };
          const cleaned = args.map((a) => {
            if (typeof a === 'string') return clean(a);
            if (a instanceof Error) return { err: { type: a.name, message: clean(a.message) } };
            if (a && typeof a === 'object' && 'err' in a && (a as { err: unknown }).err instanceof Error) {
              const e = (a as { err: Error }).err;
              return { ...a, err: { type: e.name, message: clean(e.message) } };
            }
            return a;
          });
          return method.apply(this, cleaned as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
}

export type { Logger };
