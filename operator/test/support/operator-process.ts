import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Runs the operator as a real child process (`node --import tsx operator/src/main.ts`), the
// way it runs in a pod, and reads its logs and /metrics.

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(HERE, '../../..');
export const OPERATOR_MAIN = resolve(REPO, 'operator/src/main.ts');
/** The built operator (`npx tsc -b operator`): what the image runs, without tsx's overhead. */
export const OPERATOR_DIST = resolve(REPO, 'operator/dist/main.js');

export interface OperatorProcess {
  child: ChildProcess;
  port: number;
  identity: string;
  logs(): Record<string, unknown>[];
  waitForLog(
    pred: (l: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  metricsText(): Promise<string>;
  /** Sum of a metric's samples whose labels contain every given label. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  get(path: string): Promise<{ status: number; body: string }>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export async function startOperatorProcess(o: {
  kubeconfig: string;
  args?: string[];
  identity?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Run operator/dist/main.js instead of the TypeScript source. */
  built?: boolean;
}): Promise<OperatorProcess> {
  const identity = o.identity ?? `op-${Math.random().toString(36).slice(2, 8)}`;
  const child = spawn(
    process.execPath,
    [
      ...(o.built ? [OPERATOR_DIST] : ['--import', 'tsx', OPERATOR_MAIN]),
      '--kubeconfig',
      o.kubeconfig,
      '--metrics-port',
      '0',
      '--metrics-host',
      '127.0.0.1',
      '--identity',
      identity,
      ...(o.args ?? []),
    ],
    { cwd: REPO, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const parsed: Record<string, unknown>[] = [];
  const waiters: {
    pred: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  let buffer = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buffer += chunk;
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      nl = buffer.indexOf('\n');
      try {
        const l = JSON.parse(line) as Record<string, unknown>;
        parsed.push(l);
        for (const w of [...waiters]) {
          if (w.pred(l)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(l);
          }
        }
      } catch {}
    }
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

  const waitForLog = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 30_000) => {
    const found = parsed.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, unknown>>((resolveLog, reject) => {
      const t = setTimeout(
        () =>
          reject(
            new Error(`operator ${identity}: no matching log line in ${timeoutMs} ms; stderr: ${stderr}`),
          ),
        timeoutMs,
      );
      const w = {
        pred,
        resolve: (l: Record<string, unknown>) => {
          clearTimeout(t);
          resolveLog(l);
        },
      };
      waiters.push(w);
      void exited.then((code) => {
        clearTimeout(t);
        reject(new Error(`operator ${identity} exited (${code}): ${stderr}`));
      });
    });
  };
  const serving = await waitForLog(
    (l) => typeof l.port === 'number' && String(l.msg).startsWith('serving'),
    o.timeoutMs ?? 30_000,
  );
  const port = serving.port as number;
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, body: await res.text() };
  };
  return {
    child,
    port,
    identity,
    logs: () => parsed,
    waitForLog,
    get,
    metricsText: async () => (await get('/metrics')).body,
    metric: async (name, labels) => sumMetric((await get('/metrics')).body, name, labels),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return await exited;
    },
  };
}
