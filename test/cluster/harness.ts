// Test helper: a real control plane for a test suite.
//
//   let cluster: TestCluster;
//   before(async () => { cluster = await startTestCluster(); }, { timeout: CLUSTER_START_TIMEOUT_MS });
//   after(() => cluster?.stop());
//   test('...', async () => { const ns = await cluster.namespace('demo'); ... });
//
// It reuses a running control plane when one is healthy in $XIANYU_CLUSTER_DIR or in the
// repo's .cluster/ (`make cluster-up`), unless XIANYU_K8S_FRESH=1; otherwise it starts a private
// one in a temporary folder and stop() tears it down (node:test runs `after` hooks even when a
// test fails; a crash is covered by the exit handler in controlplane.ts). Each test gets a fresh
// namespace; on a reused control plane stop() deletes the namespaces it created.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import {
  attachControlPlane,
  type ControlPlane,
  DEFAULT_DIR,
  runTool,
  startControlPlane,
} from './controlplane.js';

/** Generous: a cold machine builds the binaries first (`make test` builds them beforehand). */
export const CLUSTER_START_TIMEOUT_MS = 60 * 60_000;

export interface TestCluster {
  kubeconfigPath: string;
  binDir: string;
  nodeNames: string[];
  reused: boolean;
  /** A KubeConfig for the admin (system:masters) user. */
  kc: KubeConfig;
  /** Creates a fresh namespace (name derived from `prefix`) and waits for its default service account. */
  namespace(prefix?: string): Promise<string>;
  /**
   * Compacts etcd up to its current revision, so any older resourceVersion is gone: a watch
   * or exact list from before now answers 410 Gone, as on a long-running cluster.
   */
  compactEtcd(): Promise<void>;
  kubectl(args: string[]): Promise<string>;
  /** Server-side applies a CRD file and waits until the API server serves it (Established). */
  installCrd(file: string, name: string): Promise<void>;
  helm(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export interface TestClusterOptions {
  nodes?: number;
  /** Always a private control plane (a suite that restarts components or installs cluster-wide objects). */
  private?: boolean;
  log?: (line: string) => void;
}

/** Polls `check` until it returns something other than undefined/false, or fails after the deadline. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err instanceof ApiException ? `HTTP ${err.code}: ${JSON.stringify(err.body)}` : String(err);
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${last})` : ''}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** The HTTP status of a failed client-node call (undefined for other errors). */
export function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

export async function startTestCluster(opts: TestClusterOptions = {}): Promise<TestCluster> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`# cluster: ${line}\n`));
  let cp: ControlPlane | undefined;
  let privateDir: string | undefined;
  if (process.env.XIANYU_K8S_FRESH !== '1' && !opts.private) {
    cp = await attachControlPlane(process.env.XIANYU_CLUSTER_DIR ?? DEFAULT_DIR);
    if (cp) log(`reusing ${cp.server} from ${cp.dir}`);
  }
  if (!cp) {
    privateDir = await mkdtemp(join(tmpdir(), 'xianyu-cp-'));
    cp = await startControlPlane({ dir: privateDir, nodes: opts.nodes, log }).catch(async (err: unknown) => {
      await rm(privateDir!, { recursive: true, force: true });
      throw err;
    });
  }
  const plane = cp;
  const kc = new KubeConfig();
  kc.loadFromFile(plane.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const helmHome = await mkdtemp(join(tmpdir(), 'xianyu-helm-'));
  const created: string[] = [];
  const toolEnv = {
    KUBECONFIG: plane.kubeconfigPath,
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_DATA_HOME: join(helmHome, 'data'),
  };

  return {
    kubeconfigPath: plane.kubeconfigPath,
    binDir: plane.binDir,
    nodeNames: plane.nodeNames,
    reused: plane.reused,
    kc,
    async namespace(prefix = 'test') {
      const name = `${prefix}-${Math.random().toString(36).slice(2, 8)}`.toLowerCase().slice(0, 63);
      await core.createNamespace({ body: { metadata: { name, labels: { 'xianyu.io/test': 'true' } } } });
      created.push(name);
      // The API refuses pods until the serviceaccount controller has made "default".
      await waitFor(`service account default in ${name}`, () =>
        core.readNamespacedServiceAccount({ name: 'default', namespace: name }),
      );
      return name;
    },
    async compactEtcd() {
      // etcd's JSON gateway: read the current revision, then compact (physically) up to it.
      const post = async (path: string, body: unknown) => {
        const res = await fetch(`${plane.etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
        if (!res.ok) throw new Error(`etcd ${path}: HTTP ${res.status} ${await res.text()}`);
        return (await res.json()) as { header?: { revision?: string } };
      };
      const range = await post('/v3/kv/range', { key: Buffer.from('/').toString('base64') });
      const revision = range.header?.revision;
      if (!revision) throw new Error('etcd did not report its revision');
      await post('/v3/kv/compaction', { revision, physical: true });
    },
    kubectl: (args) => runTool(plane.binDir, 'kubectl', args, { env: toolEnv }),
    async installCrd(file, name) {
      const kubectl = (args: string[]) => runTool(plane.binDir, 'kubectl', args, { env: toolEnv });
      await kubectl(['apply', '--server-side', '--force-conflicts', '-f', file]);
      await kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/${name}`]);
    },
    helm: (args) => runTool(plane.binDir, 'helm', args, { env: toolEnv }),
    async stop() {
      try {
        if (plane.reused) {
          await Promise.allSettled(created.map((name) => core.deleteNamespace({ name })));
        }
        await plane.stop();
      } finally {
        await rm(helmHome, { recursive: true, force: true });
        if (privateDir) await rm(privateDir, { recursive: true, force: true });
      }
    },
  };
}
