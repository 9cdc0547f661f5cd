import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

// /healthz (the process serves requests), /readyz (caches synced, watches fresh) and /metrics.

export interface ProbeServerOptions {
  port: number;
  host?: string;
  registry: Registry;
  /** Names of failing readiness checks; empty when ready. */
  readiness: () => string[];
  /** Called before /metrics is rendered (refresh gauges). */
  beforeMetrics?: () => void;
}

export async function startProbeServer(
  o: ProbeServerOptions,
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/healthz' || path === '/livez') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const failing = o.readiness();
      res
        .writeHead(failing.length ? 503 : 200, { 'content-type': 'text/plain' })
        .end(failing.length ? `not ready: ${failing.join(', ')}\n` : 'ok\n');
      return;
    }
    if (path === '/metrics') {
      o.beforeMetrics?.();
      o.registry
        .metrics()
        .then((text) => res.writeHead(200, { 'content-type': o.registry.contentType }).end(text))
        .catch((err: Error) => res.writeHead(500).end(err.message));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '0.0.0.0', resolve);
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
