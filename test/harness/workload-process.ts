import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

// Runs the built workload (`node workload/dist/main.js --config FILE`) as a real child process,
// the way a seller or a pod runs it, and gives tests its output and HTTP endpoints.

export const WORKLOAD_MAIN = new URL('../../workload/dist/main.js', import.meta.url).pathname;

export interface WorkloadProcess {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Every stdout and stderr line so far. */
  output(): string[];
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  waitForLog(
    pred: (l: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  get(path: string): Promise<{ status: number; body: string; json: () => unknown }>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  return port;
}

export async function startWorkloadProcess(o: {
  config: Record<string, unknown>;
  env?: Record<string, string>;
  dir?: string;
  waitReady?: boolean;
  timeoutMs?: number;
}): Promise<WorkloadProcess> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'xianyu-wl-'));
  const port = await freePort();
  const config = { dataDir: join(dir, 'data'), ...o.config, server: { port, host: '127.0.0.1' } };
  const file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(config));
  const env: Record<string, string> = { ...(process.env as Record<string, string>), ...o.env };
  if (!o.env?.DATABASE_URL) delete env.DATABASE_URL;
  delete env.PORT;
  // WORKLOAD_NODE_ARGS: extra node flags for profiling runs (e.g. `--cpu-prof`, refused in NODE_OPTIONS).
  const nodeArgs = (process.env.WORKLOAD_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, WORKLOAD_MAIN, '--config', file], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const parsed: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  const onData = (buf: Buffer, acc: { rest: string }) => {
    acc.rest += buf.toString('utf8');
    const parts = acc.rest.split('\n');
    acc.rest = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      try {
        parsed.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a JSON log line
      }
    }
    for (const w of waiters) w();
  };
  const outAcc = { rest: '' };
  const errAcc = { rest: '' };
  child.stdout!.on('data', (b: Buffer) => onData(b, outAcc));
  child.stderr!.on('data', (b: Buffer) => onData(b, errAcc));
  const exited = once(child, 'exit').then(([code]) => code as number | null);

  const url = `http://127.0.0.1:${port}`;
  const proc: WorkloadProcess = {
    url,
    port,
    child,
    output: () => [...lines],
    logs: () => [...parsed],
    waitForLog(pred, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = parsed.find(pred);
          if (hit) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(hit);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `no matching log line within ${timeoutMs} ms; last lines:\n${lines.slice(-15).join('\n')}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async get(path) {
      const res = await fetch(url + path);
      const body = await res.text();
      return { status: res.status, body, json: () => JSON.parse(body) };
    },
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  // Wait for the HTTP server, then (optionally) for readiness.
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `workload exited with ${child.exitCode ?? child.signalCode}:\n${lines.slice(-20).join('\n')}`,
      );
    }
    try {
      const r = await proc.get(o.waitReady === false ? '/health' : '/ready');
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await proc.stop('SIGKILL');
      throw new Error(
        `workload not ${o.waitReady === false ? 'up' : 'ready'} in time:\n${lines.slice(-20).join('\n')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return proc;
}

/** Polls an async condition until it returns a truthy value, or fails after the deadline. */
export async function pollUntil<T>(
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The environment that points a workload at the simulator as `seller` (endpoints + cookies). */
export function simEnv(
  sim: { url: string; imUrl: string },
  seller: { cookies: string },
): Record<string, string> {
  return {
    XIANYU_COOKIES: seller.cookies,
    XIANYU_API_URL: sim.url,
    XIANYU_IM_URL: sim.imUrl,
    XIANYU_PASSPORT_URL: sim.url,
  };
}
