// Starts and stops a real local Kubernetes control plane: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok (fake nodes whose pods reach Running),
// built from Go modules by build.sh. One implementation serves `make cluster-up/down`
// (cli.ts) and the test helper (harness.ts).
//
// Every process is recorded in <dir>/state.json as soon as it is spawned, so a stop (even one
// from another process, like `make cluster-down`) kills exactly the processes started here, by
// pid, after checking that the pid still runs the binary we started.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type CertPaths, createPki, type Pki, writeKubeconfig } from './pki.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, '..', '..');
export const DEFAULT_DIR = join(REPO_ROOT, '.cluster');

/** Annotation kwok selects the nodes it manages by (`--manage-nodes-with-annotation-selector`). */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';

const CONTROLLERS = [
  'garbage-collector-controller',
  'deployment-controller',
  'replicaset-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'namespace-controller',
  'root-ca-certificate-publisher-controller',
  'endpointslice-controller',
  'clusterrole-aggregation-controller',
  'service-cidr-controller',
  'pod-garbage-collector-controller',
  'job-controller',
];

export interface StartOptions {
  /** State folder (certificates, kubeconfigs, etcd data, logs). Wiped unless reused. */
  dir?: string;
  /** Reuse the control plane already running from `dir` when it is healthy. */
  reuse?: boolean;
  /** Folder with the binaries; default: $XIANYU_K8S_BIN or build.sh's cached folder. */
  binDir?: string;
  /** Number of kwok nodes (default 1). */
  nodes?: number;
  /**
   * Let the processes outlive this Node.js process (`make cluster-up`). Otherwise they are
   * killed when this process exits, even on a crash, as a safety net behind stop().
   */
  detached?: boolean;
  /** Extra kube-apiserver flags (e.g. feature gates), after the defaults. */
  apiserverArgs?: string[];
  /** How long to wait for Ready after the binaries are found (default 120 s). */
  readyTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface ControlPlane {
  dir: string;
  /** Admin kubeconfig (system:masters), with certificates embedded. */
  kubeconfigPath: string;
  server: string;
  /** etcd's client URL (plain HTTP on loopback), e.g. for tests that compact it. */
  etcdUrl: string;
  binDir: string;
  nodeNames: string[];
  /** True when an already running control plane was reused; stop() then leaves it running. */
  reused: boolean;
  /** Stops every process started here and removes the state folder (no-op when reused). */
  stop(): Promise<void>;
}

interface ProcessRecord {
  name: string;
  pid: number;
  bin: string;
}

interface State {
  server: string;
  etcdUrl: string;
  kubeconfig: string;
  binDir: string;
  nodeNames: string[];
  processes: ProcessRecord[];
  ready: boolean;
  /** Hash of this file: a control plane started by other code (other flags) is not reused. */
  layout?: string;
}

const STATE_FILE = 'state.json';
const LAYOUT = createHash('sha256')
  .update(readFileSync(fileURLToPath(import.meta.url)))
  .digest('hex')
  .slice(0, 16);

export async function findBinaries(log: (line: string) => void = () => {}): Promise<string> {
  const fromEnv = process.env.XIANYU_K8S_BIN;
  const script = join(HERE, 'build.sh');
  return await new Promise<string>((ok, fail) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      for (const line of d.toString().split('\n')) if (line.trim()) log(line);
    });
    child.on('error', fail);
    child.on('exit', (code) => {
      if (code === 0 && out.trim()) ok(out.trim());
      else
        fail(
          new Error(
            `build.sh failed (exit ${code})${fromEnv ? ` with XIANYU_K8S_BIN=${fromEnv}` : ''}: ${err}`,
          ),
        );
    });
  });
}

async function freePort(): Promise<number> {
  return await new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? ok(addr.port) : fail(new Error('no port'))));
    });
  });
}

async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** True when `pid` is alive (not a zombie) and still runs `bin`. */
export function isRunning(rec: ProcessRecord): boolean {
  try {
    const stat = readFileSync(`/proc/${rec.pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    const argv0 = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0')[0];
    return argv0 === rec.bin;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function killAll(records: ProcessRecord[], graceMs = 10_000): Promise<void> {
  const stopOne = async (recs: ProcessRecord[]) => {
    const live = recs.filter(isRunning);
    for (const rec of live) {
      try {
        process.kill(rec.pid, 'SIGTERM');
      } catch {}
    }
    const deadline = Date.now() + graceMs;
    while (live.some(isRunning) && Date.now() < deadline) await sleep(25);
    for (const rec of live.filter(isRunning)) {
      try {
        process.kill(rec.pid, 'SIGKILL');
      } catch {}
    }
    const hardDeadline = Date.now() + 5_000;
    while (live.some(isRunning) && Date.now() < hardDeadline) await sleep(25);
  };
  // Clients first (together), then the API server, then etcd: an API server whose etcd is
  // already gone takes its full shutdown timeout to give up.
  const servers = new Set(['kube-apiserver', 'etcd']);
  await stopOne(records.filter((r) => !servers.has(r.name)));
  await stopOne(records.filter((r) => r.name === 'kube-apiserver'));
  await stopOne(records.filter((r) => r.name === 'etcd'));
}

async function readState(dir: string): Promise<State | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')) as State;
  } catch {
    return undefined;
  }
}

/**
 * Stops the control plane recorded in `dir` (by pid) and removes the folder.
 * Returns false when there was no state to stop.
 */
export async function stopControlPlane(dir: string = DEFAULT_DIR): Promise<boolean> {
  const state = await readState(dir);
  if (state) await killAll(state.processes);
  if (state || existsSync(dir)) await rm(dir, { recursive: true, force: true });
  return state !== undefined;
}

interface TlsClient {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

interface HttpResult {
  status: number;
  body: string;
}

async function call(
  url: string,
  opts: { tls?: TlsClient; insecure?: boolean; method?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<HttpResult> {
  const u = new URL(url);
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return await new Promise((ok, fail) => {
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      u,
      {
        method: opts.method ?? 'GET',
        headers: payload ? { 'content-type': 'application/json', accept: 'application/json' } : {},
        ...(opts.tls ?? {}),
        rejectUnauthorized: !opts.insecure,
        timeout: opts.timeoutMs ?? 5_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout calling ${url}`)));
    req.on('error', fail);
    req.end(payload);
  });
}

async function tlsFor(pki: { caCert: string; client: CertPaths }): Promise<TlsClient> {
  return {
    ca: await readFile(pki.caCert),
    cert: await readFile(pki.client.cert),
    key: await readFile(pki.client.key),
  };
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
async function until<T>(
  what: string,
  deadline: number,
  check: () => Promise<T | undefined>,
  failFast?: () => string | undefined,
): Promise<T> {
  let last = '';
  for (let delay = 25; ; delay = Math.min(delay * 2, 250)) {
    const failed = failFast?.();
    if (failed) throw new Error(`${what}: ${failed}`);
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
    await sleep(delay);
  }
}

function logTail(path: string, lines = 25): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function healthy(state: State, dir: string): Promise<boolean> {
  if (!state.ready || state.layout !== LAYOUT || !state.processes.every(isRunning)) return false;
  try {
    const tls = await tlsFor({ caCert: join(dir, 'pki', 'ca.crt'), client: pkiClient(dir, 'admin') });
    const res = await call(`${state.server}/readyz`, { tls, timeoutMs: 2_000 });
    return res.status === 200;
  } catch {
    return false;
  }
}

function pkiClient(dir: string, name: string): CertPaths {
  return { cert: join(dir, 'pki', `${name}.crt`), key: join(dir, 'pki', `${name}.key`) };
}

/**
 * The control plane running from `dir` when it is healthy (Ready, every process alive,
 * /readyz answering), else undefined. Its stop() leaves it running: it belongs to whoever
 * started it.
 */
export async function attachControlPlane(dir: string = DEFAULT_DIR): Promise<ControlPlane | undefined> {
  const state = await readState(resolve(dir));
  if (!state || !(await healthy(state, resolve(dir)))) return undefined;
  return {
    dir: resolve(dir),
    kubeconfigPath: state.kubeconfig,
    server: state.server,
    etcdUrl: state.etcdUrl,
    binDir: state.binDir,
    nodeNames: state.nodeNames,
    reused: true,
    stop: async () => {},
  };
}

/** Starts (or reuses) a control plane and resolves once its nodes are Ready. */
export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlane> {
  const dir = resolve(opts.dir ?? DEFAULT_DIR);
  const log = opts.log ?? (() => {});
  const nodeCount = opts.nodes ?? 1;

  if (opts.reuse) {
    const running = await attachControlPlane(dir);
    if (running) {
      log(`reusing the control plane running from ${dir} (${running.server})`);
      return running;
    }
  }
  if (await readState(dir)) log(`stopping the stale control plane recorded in ${dir}`);
  await stopControlPlane(dir);

  const binDir = opts.binDir ?? (await findBinaries(log));
  const started = Date.now();
  const deadline = started + (opts.readyTimeoutMs ?? 120_000);
  await mkdir(join(dir, 'pki'), { recursive: true });
  await mkdir(join(dir, 'logs'), { recursive: true });

  const state: State = {
    server: '',
    etcdUrl: '',
    kubeconfig: join(dir, 'kubeconfig'),
    binDir,
    nodeNames: Array.from({ length: nodeCount }, (_, i) => `kwok-node-${i}`),
    processes: [],
    ready: false,
    layout: LAYOUT,
  };
  const saveState = () => writeFile(join(dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
  const exited = new Map<string, string>();
  const killOnExit = () => {
    for (const rec of state.processes) {
      try {
        if (isRunning(rec)) process.kill(rec.pid, 'SIGKILL');
      } catch {}
    }
    rmSync(dir, { recursive: true, force: true });
  };
  if (!opts.detached) process.once('exit', killOnExit);

  const stop = async () => {
    process.removeListener('exit', killOnExit);
    await killAll(state.processes);
    await rm(dir, { recursive: true, force: true });
  };

  const launch = async (name: string, args: string[]) => {
    const bin = join(binDir, name);
    const logPath = join(dir, 'logs', `${name}.log`);
    const fd = openSync(logPath, 'a');
    // Detached (own process group) only for `make cluster-up`, so the processes outlive it;
    // otherwise they share our process group and a Ctrl-C reaches them too.
    const child = spawn(bin, args, { detached: !!opts.detached, stdio: ['ignore', fd, fd], cwd: dir });
    child.unref();
    try {
      await new Promise<void>((ok, fail) => {
        child.once('spawn', ok);
        child.once('error', fail);
      });
    } finally {
      closeSync(fd);
    }
    child.once('exit', (code, signal) => {
      exited.set(name, `${name} exited (${signal ?? code}); last lines of ${logPath}:\n${logTail(logPath)}`);
    });
    state.processes.push({ name, pid: child.pid!, bin });
    await saveState();
  };
  const anyExited = () => (exited.size ? [...exited.values()].join('\n') : undefined);

  try {
    const [etcdClient, etcdPeer, apiPort, kcmPort, schedPort] = (await freePorts(5)) as [
      number,
      number,
      number,
      number,
      number,
    ];
    const pki: Pki = await createPki(join(dir, 'pki'));
    const server = `https://127.0.0.1:${apiPort}`;
    state.server = server;
    log(`certificates ready in ${Date.now() - started} ms; starting etcd`);

    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    state.etcdUrl = etcdUrl;
    await launch('etcd', [
      '--name=local',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=local=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);

    await writeKubeconfig(state.kubeconfig, { server, caCert: pki.caCert, client: pki.admin, user: 'admin' });
    const kcmKubeconfig = join(dir, 'controller-manager.kubeconfig');
    const schedKubeconfig = join(dir, 'scheduler.kubeconfig');
    await writeKubeconfig(kcmKubeconfig, {
      server,
      caCert: pki.caCert,
      client: pki.controllerManager,
      user: 'system:kube-controller-manager',
    });
    await writeKubeconfig(schedKubeconfig, {
      server,
      caCert: pki.caCert,
      client: pki.scheduler,
      user: 'system:kube-scheduler',
    });

    await until(
      'etcd health',
      deadline,
      async () => ((await call(`${etcdUrl}/health`)).body.includes('"true"') ? true : undefined),
      anyExited,
    );
    log(`etcd healthy after ${Date.now() - started} ms; starting kube-apiserver`);

    await launch('kube-apiserver', [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'apiserver')}`,
      `--tls-cert-file=${pki.apiserver.cert}`,
      `--tls-private-key-file=${pki.apiserver.key}`,
      `--client-ca-file=${pki.caCert}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      // Front-proxy (request header) authentication, as kubeadm sets it up: aggregated API
      // servers and the controllers' delegated authentication read this CA.
      `--requestheader-client-ca-file=${pki.frontProxyCaCert}`,
      '--requestheader-allowed-names=front-proxy-client',
      '--requestheader-username-headers=X-Remote-User',
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      `--proxy-client-cert-file=${pki.frontProxyClient.cert}`,
      `--proxy-client-key-file=${pki.frontProxyClient.key}`,
      // New nodes are otherwise tainted not-ready until the node-lifecycle controller (not run
      // here: kwok nodes have no real health to watch) clears the taint.
      '--disable-admission-plugins=TaintNodesByCondition',
      // PodTemplates bypass the watch cache, so a watch from a resourceVersion older than
      // etcd's last compaction answers 410 Gone at once (see harness compactEtcd()); every other
      // resource keeps the production default, where 410 comes after cache eviction.
      '--watch-cache-sizes=podtemplates#0',
      '--allow-privileged=true',
      '--profiling=false',
      '--v=1',
      ...(opts.apiserverArgs ?? []),
    ]);
    const admin = await tlsFor({ caCert: pki.caCert, client: pki.admin });
    await until(
      'kube-apiserver /readyz',
      deadline,
      async () => ((await call(`${server}/readyz`, { tls: admin })).status === 200 ? true : undefined),
      anyExited,
    );
    log(`kube-apiserver ready after ${Date.now() - started} ms; starting controllers, scheduler, kwok`);

    await Promise.all([
      launch('kube-controller-manager', [
        `--kubeconfig=${kcmKubeconfig}`,
        `--authentication-kubeconfig=${kcmKubeconfig}`,
        `--authorization-kubeconfig=${kcmKubeconfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${kcmPort}`,
        `--cert-dir=${join(dir, 'controller-manager')}`,
        '--leader-elect=false',
        `--controllers=${CONTROLLERS.join(',')}`,
        '--use-service-account-credentials=true',
        `--service-account-private-key-file=${pki.serviceAccountKey}`,
        `--root-ca-file=${pki.caCert}`,
        '--concurrent-gc-syncs=10',
        '--v=1',
      ]),
      launch('kube-scheduler', [
        `--kubeconfig=${schedKubeconfig}`,
        `--authentication-kubeconfig=${schedKubeconfig}`,
        `--authorization-kubeconfig=${schedKubeconfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${schedPort}`,
        `--cert-dir=${join(dir, 'scheduler')}`,
        '--leader-elect=false',
        '--v=1',
      ]),
      launch('kwok', [
        `--kubeconfig=${state.kubeconfig}`,
        `--config=${join(binDir, 'kwok-stages.yaml')}`,
        '--manage-all-nodes=false',
        `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
        '--cidr=10.244.0.0/16',
        '--node-ip=127.0.0.1',
        '--node-lease-duration-seconds=40',
      ]),
    ]);

    for (const name of state.nodeNames) {
      const res = await call(`${server}/api/v1/nodes`, {
        tls: admin,
        method: 'POST',
        body: {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: {
            name,
            annotations: { [KWOK_NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
            labels: {
              'kubernetes.io/hostname': name,
              'kubernetes.io/os': 'linux',
              'kubernetes.io/arch': 'amd64',
              type: 'kwok',
            },
          },
          // kwok keeps allocatable/capacity when given; a node's status may be set on create.
          status: {
            allocatable: { cpu: '32', memory: '256Gi', pods: '110' },
            capacity: { cpu: '32', memory: '256Gi', pods: '110' },
          },
        },
      });
      if (res.status !== 201) throw new Error(`creating node ${name}: HTTP ${res.status} ${res.body}`);
    }

    const insecureHealth = (port: number) => async () =>
      (await call(`https://127.0.0.1:${port}/healthz`, { insecure: true })).status === 200 ? true : undefined;
    await Promise.all([
      ...state.nodeNames.map((name) =>
        until(
          `node ${name} Ready and untainted`,
          deadline,
          async () => {
            const res = await call(`${server}/api/v1/nodes/${name}`, { tls: admin });
            const node = JSON.parse(res.body) as {
              spec?: { taints?: { effect: string }[] };
              status?: { conditions?: { type: string; status: string }[] };
            };
            const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
            const schedulable = !node.spec?.taints?.some((t) => t.effect !== 'PreferNoSchedule');
            return ready && schedulable ? true : undefined;
          },
          anyExited,
        ),
      ),
      until('kube-controller-manager /healthz', deadline, insecureHealth(kcmPort), anyExited),
      until('kube-scheduler /healthz', deadline, insecureHealth(schedPort), anyExited),
      // The serviceaccount controller creating "default" shows the controllers are working;
      // pods cannot be created in a namespace before its default service account exists.
      until(
        'the default service account',
        deadline,
        async () =>
          (await call(`${server}/api/v1/namespaces/default/serviceaccounts/default`, { tls: admin }))
            .status === 200
            ? true
            : undefined,
        anyExited,
      ),
    ]);
    state.ready = true;
    await saveState();
    log(`control plane Ready after ${Date.now() - started} ms (${server})`);
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }

  return {
    dir,
    kubeconfigPath: state.kubeconfig,
    server: state.server,
    etcdUrl: state.etcdUrl,
    binDir,
    nodeNames: state.nodeNames,
    reused: false,
    stop,
  };
}

/** Runs one of the built CLIs (kubectl, helm, kubeconform) and returns its stdout. */
export async function runTool(
  binDir: string,
  tool: 'kubectl' | 'helm' | 'kubeconform',
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<string> {
  const run = promisify(execFile);
  try {
    const { stdout } = await run(join(binDir, tool), args, {
      env: { ...process.env, ...opts.env },
      timeout: opts.timeoutMs ?? 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string; stdout?: string };
    throw new Error(`${tool} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}
