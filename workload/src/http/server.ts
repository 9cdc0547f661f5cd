import type { Server } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import express from 'express';
import type { Metrics } from '../metrics.js';
import type { SessionStatus } from '../session/types.js';

// /health (liveness), /ready (readiness), /metrics (Prometheus), /status (JSON, no secrets).

export interface Probes {
  accountId: string;
  session: () => SessionStatus;
  /** Rejects when the database does not answer. */
  pingDatabase: () => Promise<void>;
  metrics: Metrics;
  extraStatus?: () => Record<string, unknown>;
  /** A reason this process is not ready regardless of the session (e.g. `standby`), or undefined. */
  notReady?: () => string | undefined;
}

/** Above this event-loop delay the process counts as wedged and /health fails. */
const MAX_LOOP_DELAY_MS = 5_000;

export function createHttpApp(p: Probes) {
  const app = express();
  app.disable('x-powered-by');
  const loop = monitorEventLoopDelay({ resolution: 50 });
  loop.enable();
  let lastTick = performance.now();
  const tick = setInterval(() => {
    lastTick = performance.now();
  }, 500);
  tick.unref();

  app.get('/health', (_req, res) => {
    const stalledMs = performance.now() - lastTick;
    const maxDelayMs = loop.max / 1e6;
    loop.reset();
    if (stalledMs > MAX_LOOP_DELAY_MS || maxDelayMs > MAX_LOOP_DELAY_MS) {
      res
        .status(503)
        .json({ status: 'unhealthy', reason: 'event_loop_blocked', maxDelayMs: Math.round(maxDelayMs) });
      return;
    }
    res.json({ status: 'ok' });
  });

  app.get('/ready', async (_req, res) => {
    const held = p.notReady?.();
    if (held) {
      res.status(503).json({ ready: false, reason: held });
      return;
    }
    const s = p.session();
    if (s.state !== 'registered') {
      res.status(503).json({
        ready: false,
        reason: readinessReason(s),
        state: s.state,
        ...(s.nextRetryAt ? { nextRetryAt: s.nextRetryAt.toISOString() } : {}),
      });
      return;
    }
    try {
      await withTimeout(p.pingDatabase(), 2_000);
    } catch (err) {
      res.status(503).json({ ready: false, reason: 'database', message: (err as Error).message });
      return;
    }
    res.json({ ready: true });
  });

  app.get('/metrics', async (_req, res) => {
    res.set('content-type', p.metrics.registry.contentType);
    res.send(await p.metrics.registry.metrics());
  });

  app.get('/status', (_req, res) => {
    const s = p.session();
    res.json({
      account: p.accountId,
      session: {
        state: s.state,
        reason: s.reason ?? null,
        punishUrl: s.punishUrl ?? null,
        connectedSince: s.connectedSince?.toISOString() ?? null,
        lastMessageAt: s.lastMessageAt?.toISOString() ?? null,
        nextRetryAt: s.nextRetryAt?.toISOString() ?? null,
        reconnects: s.reconnects,
      },
      uptimeSeconds: Math.round(process.uptime()),
      ...(p.extraStatus?.() ?? {}),
    });
  });

  return {
    app,
    listen(port: number, host: string): Promise<Server> {
      return new Promise((resolve, reject) => {
        const server = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(server)));
        server.on('close', () => {
          clearInterval(tick);
          loop.disable();
        });
      });
    },
  };
}

export function readinessReason(s: SessionStatus): string {
  switch (s.state) {
    case 'risk_control':
      return 'risk_control';
    case 'login_expired':
      return 'login_expired';
    case 'stopped':
      return 'stopping';
    default:
      return 'not_connected';
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`database did not answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
