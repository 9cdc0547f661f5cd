// Small helpers shared by the simulator modules: hashing, ids, cookies, HTTP plumbing, waiting.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const MTOP_APP_KEY = '34839810';
export const IM_APP_KEY = '444e9908a51d1cb236a27862abc769c9';
export const SUCCESS_RET = 'SUCCESS::调用成功';

export const md5 = (s: string): string => createHash('md5').update(s, 'utf8').digest('hex');
export const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
export const delay = (ms: number): Promise<void> =>
  ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();

/** lwp request/push id: random 0-999 + epoch ms + " 0" (protocol 1.2). */
export const makeMid = (): string => `${Math.floor(Math.random() * 1000)}${Date.now()} 0`;

/** Device-id shape of protocol 1.2: upper-case UUIDv4 + "-" + unb. */
export const DEVICE_ID_RE = /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}-(\d+)$/;

export const uuidUpper = (): string => randomUUID().toUpperCase();

/** Parses a Cookie header into name → value (first occurrence wins, like a server would). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    if (name && !out.has(name)) out.set(name, part.slice(i + 1).trim());
  }
  return out;
}

export const serializeCookies = (jar: Map<string, string>): string =>
  [...jar].map(([k, v]) => `${k}=${v}`).join('; ');

/** The attributes the real h5api puts on its cookies; a naive name=value merge must cope with them. */
export const setCookieLine = (name: string, value: string, maxAge = 86400): string =>
  `${name}=${value};Path=/;Domain=goofish.com;Max-Age=${maxAge};SameSite=None;Secure`;

export async function readBody(req: IncomingMessage, limit = 5 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string | string[]> = {},
): void {
  if (res.writableEnded) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json;charset=UTF-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function tryJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Polls `fn` until it returns something truthy; rejects with a readable message at the deadline. */
export async function waitFor<T>(
  fn: () => T | undefined | null | false,
  timeoutMs = 5000,
  intervalMs = 10,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = fn();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const src = fn.toString().replace(/\s+/g, ' ').slice(0, 200);
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`waitFor: condition not met within ${timeoutMs} ms: ${src}${why}`);
    }
    await delay(intervalMs);
  }
}
