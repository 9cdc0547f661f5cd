// The chart installed into the local control plane (test/cluster: real kube-apiserver,
// controller-manager, scheduler; kwok fake nodes, so pods are scheduled and reported Running
// and Ready but no container runs).
//
// Because the operator pod's container does not really run on a kwok node, the test runs the
// operator as a local process exactly as the chart's Deployment describes it: the container args
// read back from the installed Deployment, POD_NAMESPACE/POD_NAME like the downward API, and a
// kubeconfig holding a token of the chart's ServiceAccount (TokenRequest), so every API call is
// checked against the RBAC the chart installed. (test/images runs the operator image itself.)
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { type OperatorProcess, startOperatorProcess } from '../../operator/test/support/operator-process.js';
import { CLUSTER_START_TIMEOUT_MS, startTestCluster, type TestCluster, waitFor } from '../cluster/harness.js';
import { CHART, type Obj, valuesArgs } from './support.js';

let cluster: TestCluster;
let releaseNs: string;
let shopNs: string;
let operator: OperatorProcess | undefined;
const tmp = mkdtempSync(join(tmpdir(), 'xianyu-chart-install-'));
const RELEASE = 'xy';
const FULL = 'xy-xianyu-operator';

before(
  async () => {
    // Private: the chart owns the cluster-scoped CRD, which other suites apply with kubectl
    // when they share `make cluster-up`'s control plane.
    cluster = await startTestCluster({ private: true });
    releaseNs = await cluster.namespace('xianyu-system');
    shopNs = await cluster.namespace('shop');
    // Pod Security admission refuses any pod that is not "restricted" in both namespaces: the
    // operator's pods (from the chart) and the workload pods (from the operator).
    for (const ns of [releaseNs, shopNs]) {
      await cluster.kubectl(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted']);
    }
  },
  { timeout: CLUSTER_START_TIMEOUT_MS },
);

after(async () => {
  await operator?.stop('SIGKILL');
  await cluster?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const kubectlJson = async (args: string[]): Promise<Obj> =>
  JSON.parse(await cluster.kubectl([...args, '-o', 'json']));

function values(over: Record<string, unknown> = {}) {
  return {
    watchNamespaces: [shopNs],
    workload: { image: { repository: 'registry.local/xianyu-workload', tag: 'v1' } },
    ...over,
  };
}

/** A kubeconfig that authenticates as the chart's ServiceAccount (a bound token from TokenRequest). */
async function serviceAccountKubeconfig(): Promise<string> {
  const token = (
    await cluster.kubectl(['create', 'token', FULL, '-n', releaseNs, '--duration', '1h'])
  ).trim();
  const admin = parse(readFileSync(cluster.kubeconfigPath, 'utf8')) as Obj;
  const clusterEntry = admin.clusters[0];
  const file = join(tmp, 'sa.kubeconfig');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [clusterEntry],
      users: [{ name: 'operator', user: { token } }],
      contexts: [{ name: 'operator', context: { cluster: clusterEntry.name, user: 'operator' } }],
      'current-context': 'operator',
    }),
  );
  return file;
}

/** Runs the operator the way the installed Deployment's pod would run it. */
async function runOperatorFromDeployment(): Promise<{ op: OperatorProcess; args: string[] }> {
  const dep = await kubectlJson(['get', 'deployment', FULL, '-n', releaseNs]);
  const container = dep.spec.template.spec.containers[0];
  // The pod listens on the metrics port; the local process takes a free one (the harness adds it).
  const args = (container.args as string[]).filter((a) => !a.startsWith('--metrics-port'));
  const op = await startOperatorProcess({
    kubeconfig: await serviceAccountKubeconfig(),
    args,
    identity: `${FULL}-local`,
    env: { POD_NAMESPACE: releaseNs, POD_NAME: `${FULL}-local` },
  });
  return { op, args: container.args };
}

async function waitReady(op: OperatorProcess) {
  await waitFor('operator /readyz', async () => (await op.get('/readyz')).status === 200, 60_000);
}

test('helm install: operator Deployment, RBAC, CRD; NOTES explain the first account', async () => {
  const out = await cluster.helm([
    'install',
    RELEASE,
    CHART,
    '--namespace',
    releaseNs,
    '--wait',
    '--timeout',
    '120s',
    ...valuesArgs(values()),
  ]);
  assert.match(out, /STATUS: deployed/);
  assert.match(out, /create secret generic my-shop-cookies/);
  assert.match(out, /kind: XianyuAccount/);
  assert.match(out, new RegExp(`manages XianyuAccounts in: ${shopNs}`));

  const crd = await kubectlJson(['get', 'crd', 'xianyuaccounts.xianyu.io']);
  assert.equal(crd.metadata.annotations['helm.sh/resource-policy'], 'keep');
  assert.ok(crd.status.conditions.some((c: Obj) => c.type === 'Established' && c.status === 'True'));
  const dep = await kubectlJson(['get', 'deployment', FULL, '-n', releaseNs]);
  assert.equal(dep.status.readyReplicas, 1, 'kwok reports the operator pod Ready');
  // The namespace really enforces "restricted" (so the operator pod above passed it).
  await assert.rejects(
    cluster.kubectl(['run', 'privileged', '-n', releaseNs, '--image=x', '--privileged']),
    /violates PodSecurity "restricted/,
  );
  // Namespaced mode: the operator's Role lives in the shop namespace; no ClusterRole.
  await cluster.kubectl(['get', 'role', FULL, '-n', shopNs]);
  await assert.rejects(cluster.kubectl(['get', 'clusterrole', FULL]), /NotFound/);
  const can = async (verb: string, resource: string, ns: string, ...extra: string[]) =>
    (
      await cluster
        .kubectl([
          'auth',
          'can-i',
          verb,
          resource,
          '-n',
          ns,
          `--as=system:serviceaccount:${releaseNs}:${FULL}`,
          ...extra,
        ])
        .catch((e: Error) => e.message)
    ).trim();
  assert.match(await can('patch', 'xianyuaccounts.xianyu.io', shopNs, '--subresource=status'), /^yes/);
  assert.match(await can('create', 'deployments.apps', shopNs), /^yes/);
  assert.match(await can('create', 'leases.coordination.k8s.io', releaseNs), /^yes/);
  assert.match(await can('create', 'deployments.apps', 'default'), /no$/);
  assert.match(await can('list', 'secrets', 'default'), /no$/);
});

test('a sample account is reconciled by the operator with the chart’s RBAC and settings', async () => {
  const started = await runOperatorFromDeployment();
  operator = started.op;
  assert.ok(started.args.includes('--leader-elect'));
  await waitReady(operator);

  await cluster.kubectl([
    'create',
    'secret',
    'generic',
    'my-shop-cookies',
    '-n',
    shopNs,
    '--from-literal=cookies=unb=2200000001; cookie2=abc; _m_h5_tk=t_1',
  ]);
  // The example's code pool, as its header says.
  await cluster.kubectl([
    'create',
    'secret',
    'generic',
    'my-shop-codes',
    '-n',
    shopNs,
    '--from-literal=codes=CODE-1',
  ]);
  await cluster.kubectl(['apply', '-n', shopNs, '-f', join(CHART, 'examples/account.yaml')]);

  const account = await waitFor(
    'my-shop reconciled',
    async () => {
      const a = await kubectlJson(['get', 'xianyuaccount', 'my-shop', '-n', shopNs]);
      const valid = a.status?.conditions?.find((c: Obj) => c.type === 'ConfigValid');
      return a.status?.observedGeneration === a.metadata.generation && valid?.status === 'True'
        ? a
        : undefined;
    },
    60_000,
  );
  assert.ok(['Pending', 'Running'].includes(account.status.phase), account.status.phase);
  const child = await kubectlJson(['get', 'deployment', 'xianyu-my-shop', '-n', shopNs]);
  const c = child.spec.template.spec.containers[0];
  assert.equal(
    c.image,
    'registry.local/xianyu-workload:v1',
    'the workload image comes from the chart values',
  );
  assert.deepEqual(c.resources.limits, { memory: '384Mi' });
  const pool = child.spec.template.spec.volumes.find((v: Obj) => v.secret?.secretName === 'my-shop-codes');
  assert.ok(pool, 'the example code pool Secret is mounted into the workload');
  // Admitted under the restricted Pod Security Standard: the workload pod exists.
  await waitFor(
    'workload pod admitted',
    async () =>
      JSON.parse(
        await cluster.kubectl([
          'get',
          'pods',
          '-n',
          shopNs,
          '-l',
          'app.kubernetes.io/instance=my-shop',
          '-o',
          'json',
        ]),
      ).items.length === 1,
    60_000,
  );
  // The Lease is held in the release namespace.
  const lease = await kubectlJson(['get', 'lease', FULL, '-n', releaseNs]);
  assert.equal(lease.spec.holderIdentity, `${FULL}-local`);
});

test('helm upgrade with changed values rolls the operator and the new settings reach the accounts', async () => {
  const before = await kubectlJson(['get', 'deployment', FULL, '-n', releaseNs]);
  await cluster.helm([
    'upgrade',
    RELEASE,
    CHART,
    '--namespace',
    releaseNs,
    '--wait',
    '--timeout',
    '120s',
    ...valuesArgs(
      values({
        workload: {
          image: { repository: 'registry.local/xianyu-workload', tag: 'v2' },
          resources: { requests: { cpu: '100m', memory: '192Mi' }, limits: { memory: '512Mi' } },
        },
        resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
        logLevel: 'debug',
      }),
    ),
  ]);
  const after = await waitFor(
    'operator rollout',
    async () => {
      const d = await kubectlJson(['get', 'deployment', FULL, '-n', releaseNs]);
      return d.metadata.generation > before.metadata.generation &&
        d.status.observedGeneration === d.metadata.generation &&
        d.status.updatedReplicas === 1 &&
        d.status.readyReplicas === 1 &&
        (d.status.replicas ?? 0) === 1
        ? d
        : undefined;
    },
    120_000,
  );
  await cluster.kubectl(['rollout', 'status', `deployment/${FULL}`, '-n', releaseNs, '--timeout=60s']);
  assert.equal(after.spec.template.spec.containers[0].resources.limits.memory, '512Mi');
  const rs = await kubectlJson([
    'get',
    'replicasets',
    '-n',
    releaseNs,
    '-l',
    'app.kubernetes.io/instance=xy',
  ]);
  assert.ok(rs.items.length >= 2, 'a new ReplicaSet replaced the old one');

  // The "pod" restarts with the new flags: the running operator stops, the new one takes the Lease.
  await operator?.stop('SIGTERM');
  const restarted = await runOperatorFromDeployment();
  operator = restarted.op;
  assert.ok(restarted.args.includes('--log-level=debug'));
  await waitReady(operator);
  const child = await waitFor(
    'workload Deployment on the new image',
    async () => {
      const d = await kubectlJson(['get', 'deployment', 'xianyu-my-shop', '-n', shopNs]);
      return d.spec.template.spec.containers[0].image === 'registry.local/xianyu-workload:v2' ? d : undefined;
    },
    60_000,
  );
  assert.deepEqual(child.spec.template.spec.containers[0].resources.limits, { memory: '512Mi' });
});

test('helm uninstall removes the operator but leaves the CRD and the accounts', async () => {
  await operator?.stop('SIGTERM');
  operator = undefined;
  const out = await cluster.helm([
    'uninstall',
    RELEASE,
    '--namespace',
    releaseNs,
    '--wait',
    '--timeout',
    '120s',
  ]);
  assert.match(out, /kept due to the resource policy|uninstalled/);
  await assert.rejects(cluster.kubectl(['get', 'deployment', FULL, '-n', releaseNs]), /NotFound/);
  await assert.rejects(cluster.kubectl(['get', 'role', FULL, '-n', shopNs]), /NotFound/);
  const crd = await kubectlJson(['get', 'crd', 'xianyuaccounts.xianyu.io']);
  assert.equal(crd.metadata.deletionTimestamp, undefined);
  const account = await kubectlJson(['get', 'xianyuaccount', 'my-shop', '-n', shopNs]);
  assert.equal(account.metadata.deletionTimestamp, undefined);
  // The account's own children stay too (they belong to the account, not to the release).
  await cluster.kubectl(['get', 'deployment', 'xianyu-my-shop', '-n', shopNs]);
});
