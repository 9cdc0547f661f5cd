import { setTimeout as sleep } from 'node:timers/promises';
import type { DeliverySource } from '../config/schema.js';
import { type DeliveryValues, renderJson, renderMessage, renderUrl } from './template.js';

// Where a unit's content comes from, except pools (claimed inside the database transaction).

export type HttpSource = Extract<DeliverySource, { type: 'http' }>;

export class SourceError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'SourceError';
  }
}

/**
 * GET/POST the user's URL with the order's placeholders; the answer (or one field of a JSON
 * answer) is the unit's content. Timeouts, network errors, 429 and 5xx are retried with
 * doubling pauses up to `retries` times; other 4xx answers and empty content are not.
 */
export async function fetchHttpSource(
  src: HttpSource,
  values: DeliveryValues,
  deps: { fetch?: typeof fetch; sleep?: (ms: number) => Promise<unknown> } = {},
): Promise<{ value: string; attempts: number }> {
  const doFetch = deps.fetch ?? fetch;
  const pause = deps.sleep ?? ((ms: number) => sleep(ms));
  const url = renderUrl(src.url, values);
  let last: SourceError | undefined;
  for (let attempt = 0; attempt <= src.retries; attempt++) {
    if (attempt > 0) await pause(src.retryDelayMs * 2 ** (attempt - 1));
    try {
      const res = await doFetch(url, {
        method: src.method,
        headers: { ...(src.body ? { 'content-type': 'application/json' } : {}), ...src.headers },
        ...(src.method === 'POST' && src.body ? { body: renderJson(src.body, values) } : {}),
        signal: AbortSignal.timeout(src.timeoutMs),
      });
      const text = await res.text();
      if (!res.ok) {
        const retryable = res.status >= 500 || res.status === 429;
        last = new SourceError(`http source answered ${res.status}`, retryable);
        if (!retryable) throw last;
        continue;
      }
      const value = pick(text, src.field);
      if (!value) throw new SourceError('http source answered without content', false);
      return { value, attempts: attempt + 1 };
    } catch (err) {
      if (err instanceof SourceError && !err.retryable) throw err;
      if (err instanceof SourceError) {
        last = err;
        continue;
      }
      const e = err as Error;
      last = new SourceError(
        e.name === 'TimeoutError'
          ? `http source timed out after ${src.timeoutMs} ms`
          : `http source: ${e.message}`,
        true,
      );
    }
  }
  throw new SourceError(`${last?.message ?? 'http source failed'} (after ${src.retries + 1} attempts)`, true);
}

function pick(text: string, field: string | undefined): string {
  if (!field) return text.trim();
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new SourceError('http source: answer is not JSON but a field was configured', false);
  }
  for (const k of field.split('.'))
    v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v === undefined || v === null ? '' : String(v).trim();
}

/** The fixed text of a `text` source, with the order's placeholders. */
export function textSourceValue(text: string, values: DeliveryValues): string {
  return renderMessage(text, values);
}
