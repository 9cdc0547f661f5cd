import type { IncomingMessage } from 'node:http';
import { request as httpRequest } from 'node:http';
import { Agent, type RequestOptions, request } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Metrics } from '../metrics/registry.js';
import { type Connection, connectionFromKubeConfig } from './config.js';

// The thin layer that talks to the API server: JSON over HTTPS with the kubeconfig's
// credentials (kube/config.ts), server-side apply, and streaming
// watches. Every write is counted in xianyu_operator_api_writes_total.

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && err.code === 404;
}
export function isConflict(err: unknown): boolean {
  return err instanceof ApiError && err.code === 409;
}
export function isGone(err: unknown): boolean {
  return err instanceof ApiError && err.code === 410;
}

export interface RequestOpts {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  /** Metric label: the resource this request is about (e.g. deployments). */
  resource?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const VERB_NAMES: Record<string, string> = {
  POST: 'create',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

export const FIELD_MANAGER = 'xianyu-operator';

export class KubeClient {
  readonly server: string;
  private agent?: Agent;

  private readonly conn: Connection;

  constructor(
    conn: Connection | KubeConfig,
    private readonly metrics?: Metrics,
    private readonly userAgent = 'xianyu-operator',
  ) {
    this.conn = 'getCurrentCluster' in conn ? connectionFromKubeConfig(conn) : conn;
    this.server = this.conn.server.replace(/\/$/, '');
  }

  private async options(method: string, url: URL, headers: Record<string, string>): Promise<RequestOptions> {
    const opts: RequestOptions = { method, headers: { ...headers } };
    await this.conn.apply(opts);
    // One keep-alive agent for every request.
    this.agent ??= new Agent({
      keepAlive: true,
      maxSockets: 64,
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      rejectUnauthorized: opts.rejectUnauthorized,
    });
    opts.agent = url.protocol === 'https:' ? this.agent : undefined;
    opts.headers = { ...(opts.headers as Record<string, string>), 'user-agent': this.userAgent };
    return opts;
  }

  private url(path: string, query?: RequestOpts['query']): URL {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  private async open(
    method: string,
    path: string,
    o: RequestOpts,
    accept = 'application/json',
  ): Promise<IncomingMessage> {
    const url = this.url(path, o.query);
    const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
    const headers: Record<string, string> = { accept };
    if (payload !== undefined) headers['content-type'] = o.contentType ?? 'application/json';
    const opts = await this.options(method, url, headers);
    if (WRITE_VERBS.has(method)) {
      const verb = o.contentType === 'application/apply-patch+yaml' ? 'apply' : VERB_NAMES[method]!;
      this.metrics?.apiWrites.inc({ verb, resource: o.resource ?? resourceOf(path) });
    }
    return await new Promise<IncomingMessage>((resolve, reject) => {
      const send = url.protocol === 'http:' ? httpRequest : request;
      const req = send(url, { ...opts, signal: o.signal }, resolve);
      if (o.timeoutMs) {
        req.setTimeout(o.timeoutMs, () =>
          req.destroy(new Error(`${method} ${path}: timed out after ${o.timeoutMs} ms`)),
        );
      }
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** One request; resolves with the parsed JSON body, rejects with ApiError on a non-2xx status. */
  async request<T = unknown>(method: string, path: string, o: RequestOpts = {}): Promise<T> {
    let res: IncomingMessage;
    try {
      res = await this.open(method, path, { timeoutMs: 30_000, ...o });
    } catch (err) {
      this.metrics?.apiErrors.inc({
        verb: method.toLowerCase(),
        resource: o.resource ?? resourceOf(path),
        code: '0',
      });
      throw err;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const status = res.statusCode ?? 0;
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    if (status < 200 || status >= 300) {
      this.metrics?.apiErrors.inc({
        verb: method.toLowerCase(),
        resource: o.resource ?? resourceOf(path),
        code: String(status),
      });
      const s = body as { reason?: string; message?: string } | undefined;
      throw new ApiError(
        status,
        s?.reason ?? '',
        `${method} ${path}: HTTP ${status}: ${s?.message ?? text.slice(0, 300)}`,
        body,
      );
    }
    return body as T;
  }

  get<T = unknown>(path: string, o: RequestOpts = {}): Promise<T> {
    return this.request<T>('GET', path, o);
  }

  /** Server-side apply with the operator's field manager, taking over conflicting fields. */
  apply<T = unknown>(
    path: string,
    obj: unknown,
    o: { force?: boolean; fieldManager?: string } = {},
  ): Promise<T> {
    return this.request<T>('PATCH', path, {
      body: obj,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: o.fieldManager ?? FIELD_MANAGER, force: o.force ?? true },
    });
  }

  create<T = unknown>(path: string, obj: unknown): Promise<T> {
    return this.request<T>('POST', path, { body: obj, query: { fieldManager: FIELD_MANAGER } });
  }

  update<T = unknown>(path: string, obj: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body: obj, query: { fieldManager: FIELD_MANAGER } });
  }

  delete(path: string): Promise<unknown> {
    return this.request('DELETE', path);
  }

  /**
   * Opens a watch and calls `onEvent` for every event line; resolves when the server ends the
   * stream, rejects on a connection error or a non-2xx status. Abort with `signal`.
   */
  async watch(
    path: string,
    query: RequestOpts['query'],
    onEvent: (ev: { type: string; object: Record<string, unknown> }) => void,
    signal: AbortSignal,
    onOpen?: () => void,
  ): Promise<void> {
    const res = await this.open('GET', path, { query: { ...query, watch: true }, signal });
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      let reason = '';
      try {
        reason = (JSON.parse(text) as { reason?: string }).reason ?? '';
      } catch {}
      throw new ApiError(status, reason, `watch ${path}: HTTP ${status}: ${text.slice(0, 300)}`);
    }
    onOpen?.();
    res.setEncoding('utf8');
    let buffer = '';
    for await (const chunk of res) {
      buffer += chunk as string;
      let nl = buffer.indexOf('\n');
      while (nl >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line) onEvent(JSON.parse(line) as { type: string; object: Record<string, unknown> });
        nl = buffer.indexOf('\n');
      }
    }
  }

  close(): void {
    this.agent?.destroy();
  }
}

/** The resource segment of an API path (…/namespaces/ns/deployments/name/status → deployments). */
export function resourceOf(path: string): string {
  const parts = path.split('?')[0]!.split('/').filter(Boolean);
  const ns = parts.indexOf('namespaces');
  if (ns >= 0 && parts.length > ns + 2) {
    const sub = parts[ns + 4];
    return sub ? `${parts[ns + 2]}/${sub}` : parts[ns + 2]!;
  }
  // cluster-scoped: /api/v1/<res>[/name] or /apis/<g>/<v>/<res>[/name]
  const start = parts[0] === 'api' ? 2 : 3;
  return parts[start] ?? 'unknown';
}
