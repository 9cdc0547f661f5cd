import http from 'node:http';
import https from 'node:https';

// One POST over node:http(s) with kept-alive connections. The h5api is called for every
// delivery (consign) and every token refresh; `fetch` (undici's WHATWG layer: streams, abort
// signals, Headers objects) cost about a fifth of a workload's CPU per delivery, this a
// fraction of it.

export interface PostResult {
  status: number;
  /** Set-Cookie headers, one entry each. */
  setCookies: string[];
  body: string;
}

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 16 }),
};

export class PostError extends Error {
  constructor(
    readonly kind: 'TIMEOUT' | 'NETWORK',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = kind === 'TIMEOUT' ? 'TimeoutError' : 'NetworkError';
  }
}

export function httpPost(
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<PostResult> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  const payload = Buffer.from(body);
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(
      u,
      {
        method: 'POST',
        agent: secure ? agents.https : agents.http,
        headers: { ...headers, 'content-length': String(payload.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            setCookies: res.headers['set-cookie'] ?? [],
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('error', (err) => fail(new PostError('NETWORK', err.message, { cause: err })));
      },
    );
    // One deadline for the whole exchange (connect, send, answer), like fetch's AbortSignal.timeout.
    const timer = setTimeout(
      () => fail(new PostError('TIMEOUT', `no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const fail = (err: PostError) => {
      clearTimeout(timer);
      req.destroy();
      reject(err);
    };
    req.on('error', (err) => fail(new PostError('NETWORK', err.message, { cause: err })));
    req.end(payload);
  });
}
