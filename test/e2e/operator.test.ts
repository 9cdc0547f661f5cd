// The operator against a real control plane (test/cluster): etcd, kube-apiserver,
// kube-controller-manager (garbage collection, Deployments), kube-scheduler and kwok nodes.
// The operator runs as a child process, one per test, watching only that test's namespace.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiError, KubeClient } from '../../operator/src/kube/client.js';
import { pathFor, RESOURCES } from '../../operator/src/kube/resources.js';
import { CONFIG_HASH_ANNOTATION } from '../../operator/src/manifests/children.js';
import {
  type OperatorProcess,
  REPO,
  startOperatorProcess,
} from '../../operator/test/support/operator-process.js';
import { CLUSTER_START_TIMEOUT_MS, startTestCluster, type TestCluster, waitFor } from '../cluster/harness.js';

let cluster: TestCluster;
let api: KubeClient;
const operators: OperatorProcess[] = [];
const CRD_FILE = join(REPO, 'crds/xianyu.io_xianyuaccounts.yaml');

before(
  async () => {
    // Private: one test restarts kube-apiserver, which a shared control plane must not see.
    cluster = await startTestCluster({ private: true });
    api = new KubeClient(cluster.kc);
    await cluster.installCrd(CRD_FILE, 'xianyuaccounts.xianyu.io');
    // Discovery may lag the Established condition by a moment.
    await waitFor('xianyuaccounts served', () => api.get('/apis/xianyu.io/v1alpha1/xianyuaccounts'));
  },
  { timeout: CLUSTER_START_TIMEOUT_MS },
);

let respawnedApiserver: ChildProcess | undefined;

after(async () => {
  await Promise.allSettled(operators.map((o) => o.stop('SIGKILL')));
  api?.close();
  // Stop the kube-apiserver the restart test started (stop() below knows only the first one).
  if (respawnedApiserver?.pid && respawnedApiserver.exitCode === null) {
    const exited = new Promise((r) => respawnedApiserver!.once('exit', r));
    respawnedApiserver.kill('SIGKILL');
    await exited;
  }
  await cluster?.stop();
});

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary API objects
type Any = any;

async function operator(
  ns: string | string[],
  extra: string[] = [],
  identity?: string,
): Promise<OperatorProcess> {
  const op = await startOperatorProcess({
    kubeconfig: cluster.kubeconfigPath,
    identity,
    args: [
      '--watch-namespaces',
      [ns].flat().join(','),
      '--workload-image',
      'registry.local/xianyu-workload:test',
      ...extra,
    ],
  });
  operators.push(op);
  return op;
}

const accountPath = (ns: string, name?: string, sub?: string) =>
  pathFor(RESOURCES.XianyuAccount, ns, name, sub);
const getAccount = (ns: string, name: string) => api.get<Any>(accountPath(ns, name));

async function createSecret(ns: string, name: string, data: Record<string, string>): Promise<void> {
  await api.create(pathFor(RESOURCES.Secret, ns), {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name },
    stringData: data,
  });
}

async function applyAccount(
  ns: string,
  name: string,
  spec: Record<string, unknown>,
  annotations?: Record<string, string>,
) {
  return await api.apply<Any>(
    accountPath(ns, name),
    {
      apiVersion: 'xianyu.io/v1alpha1',
      kind: 'XianyuAccount',
      metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) },
      spec,
    },
    { fieldManager: 'e2e-test' },
  );
}

const baseSpec = {
  credentials: { cookiesSecretRef: { name: 'cookies' } },
  reply: { default: { text: '您好' }, keywords: [{ match: ['发货'], reply: '自动发货' }] },
};

const cond = (obj: Any, type: string) => obj?.status?.conditions?.find((c: Any) => c.type === type);

async function waitForCondition(ns: string, name: string, type: string, status: string, timeoutMs = 60_000) {
  return await waitFor(
    `${ns}/${name} ${type}=${status}`,
    async () => {
      const a = await getAccount(ns, name);
      return cond(a, type)?.status === status ? a : undefined;
    },
    timeoutMs,
  );
}

async function waitRunning(ns: string, name: string, timeoutMs = 60_000): Promise<Any> {
  return await waitFor(
    `${ns}/${name} Running and current`,
    async () => {
      const a = await getAccount(ns, name);
      return a.status?.phase === 'Running' && a.status.observedGeneration === a.metadata.generation
        ? a
        : undefined;
    },
    timeoutMs,
  );
}

const deploymentOf = (ns: string, name: string) =>
  api.get<Any>(pathFor(RESOURCES.Deployment, ns, `xianyu-${name}`));

async function events(ns: string, name: string): Promise<Any[]> {
  const list = await api.get<Any>(pathFor(RESOURCES.Event, ns), {
    query: { fieldSelector: `regarding.name=${name},regarding.kind=XianyuAccount` },
  });
  return list.items;
}

/** Waits until the operator has been idle (no queued work) and returns its write count. */
async function settledWrites(op: OperatorProcess, quietMs = 1500): Promise<number> {
  let last = -1;
  for (;;) {
    const text = await op.metricsText();
    const { sumMetric } = await import('../../operator/test/support/operator-process.js');
    // Lease renewals are leader election, not reconcile writes.
    const writes =
      sumMetric(text, 'xianyu_operator_api_writes_total') -
      sumMetric(text, 'xianyu_operator_api_writes_total', { resource: 'leases' });
    const depth = sumMetric(text, 'workqueue_depth');
    if (writes === last && depth === 0) return writes;
    last = writes;
    await new Promise((r) => setTimeout(r, quietMs));
  }
}

test('an account becomes children with owner references, a Running pod on a kwok node, status and printer columns', async () => {
  const ns = await cluster.namespace('op-basic');
  const op = await operator(ns);
  await createSecret(ns, 'cookies', { cookies: 'unb=2200000001; _m_h5_tk=abc_123' });
  const started = Date.now();
  const created = await applyAccount(ns, 'shop', baseSpec);
  const account = await waitRunning(ns, 'shop');
  const readyAfterMs = Date.now() - started;

  const kinds: [keyof typeof RESOURCES, string][] = [
    ['ConfigMap', 'configmaps'],
    ['Deployment', 'deployments'],
    ['Service', 'services'],
    ['ServiceAccount', 'serviceaccounts'],
    ['Role', 'roles'],
    ['RoleBinding', 'rolebindings'],
  ];
  for (const [kind] of kinds) {
    const child = await api.get<Any>(pathFor(RESOURCES[kind], ns, 'xianyu-shop'));
    assert.deepEqual(
      child.metadata.ownerReferences.map((o: Any) => [o.kind, o.name, o.uid, o.controller]),
      [['XianyuAccount', 'shop', created.metadata.uid, true]],
      kind,
    );
    assert.ok(
      child.metadata.managedFields.some(
        (m: Any) => m.manager === 'xianyu-operator' && m.operation === 'Apply',
      ),
      `${kind} applied by the xianyu-operator field manager`,
    );
  }
  const d = await deploymentOf(ns, 'shop');
  assert.equal(d.spec.replicas, 1);
  assert.equal(d.spec.strategy.type, 'Recreate');
  const pods = await api.get<Any>(
    pathFor(RESOURCES.Deployment, ns).replace('/apis/apps/v1', '/api/v1').replace('deployments', 'pods'),
    {
      query: { labelSelector: 'app.kubernetes.io/instance=shop' },
    },
  );
  assert.equal(pods.items.length, 1);
  assert.equal(pods.items[0].status.phase, 'Running');
  assert.ok(cluster.nodeNames.includes(pods.items[0].spec.nodeName), 'scheduled on a kwok node');

  assert.equal(account.status.deploymentName, 'xianyu-shop');
  assert.equal(cond(account, 'Ready').status, 'True');
  assert.equal(cond(account, 'ConfigValid').status, 'True');
  assert.equal(cond(account, 'Paused').status, 'False');
  const table = await cluster.kubectl(['get', 'xya', '-n', ns]);
  assert.match(table, /^NAME\s+PHASE\s+READY\s+CONNECTED\s+LOGIN\s+AGE/);
  assert.match(table, /\nshop\s+Running\s+True\s+/);
  await cluster.kubectl(['wait', '-n', ns, '--for=condition=Ready', '--timeout=10s', 'xya/shop']);
  const evs = await events(ns, 'shop');
  assert.ok(evs.some((e) => e.reason === 'Created' && e.type === 'Normal'));
  assert.ok(evs.some((e) => e.reason === 'Ready'));
  const writes = await settledWrites(op);
  process.stderr.write(
    `# account Ready after ${readyAfterMs} ms; ${writes} API writes for one new account\n`,
  );
});

test('the workload ServiceAccount token may patch its own account status and nothing else', async () => {
  const ns = await cluster.namespace('op-rbac');
  await operator(ns);
  await createSecret(ns, 'cookies', { cookies: 'unb=2200000002' });
  await applyAccount(ns, 'shop', baseSpec);
  await applyAccount(ns, 'other', baseSpec);
  await waitRunning(ns, 'shop');
  await waitRunning(ns, 'other');

  const tr = await api.request<Any>('POST', `${pathFor(RESOURCES.ServiceAccount, ns, 'xianyu-shop')}/token`, {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600 } },
  });
  const c = cluster.kc.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'local', server: c.server, caData: c.caData }],
    users: [{ name: 'workload', token: tr.status.token }],
    contexts: [{ name: 'workload', cluster: 'local', user: 'workload' }],
    currentContext: 'workload',
  });
  const asWorkload = new KubeClient(kc);
  try {
    // What the workload does: server-side apply of its own conditions with its own field manager.
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const report = (name: string) => ({
      apiVersion: 'xianyu.io/v1alpha1',
      kind: 'XianyuAccount',
      metadata: { name, namespace: ns },
      status: {
        connectedSince: now,
        conditions: [
          {
            type: 'Connected',
            status: 'True',
            reason: 'Connected',
            message: 'IM connected',
            lastTransitionTime: now,
          },
          {
            type: 'LoginValid',
            status: 'True',
            reason: 'TokenRefreshed',
            message: '',
            lastTransitionTime: now,
          },
        ],
      },
    });
    await asWorkload.apply(accountPath(ns, 'shop', 'status'), report('shop'), {
      fieldManager: 'xianyu-workload',
    });
    const shop = await waitForCondition(ns, 'shop', 'Connected', 'True');
    assert.equal(cond(shop, 'Ready').status, 'True', "the operator's conditions stay");
    assert.match(
      await cluster.kubectl(['get', 'xya', '-n', ns, 'shop']),
      /\nshop\s+Running\s+True\s+True\s+True\s+/,
    );

    const denied: [string, () => Promise<unknown>][] = [
      [
        'patch another account status',
        () =>
          asWorkload.apply(accountPath(ns, 'other', 'status'), report('other'), {
            fieldManager: 'xianyu-workload',
          }),
      ],
      [
        'patch its own spec',
        () =>
          asWorkload.apply(
            accountPath(ns, 'shop'),
            {
              apiVersion: 'xianyu.io/v1alpha1',
              kind: 'XianyuAccount',
              metadata: { name: 'shop', namespace: ns },
              spec: { paused: true },
            },
            { fieldManager: 'xianyu-workload' },
          ),
      ],
      ['read Secrets', () => asWorkload.get(pathFor(RESOURCES.Secret, ns, 'cookies'))],
      ['list accounts', () => asWorkload.get(accountPath(ns))],
      ['delete its account', () => asWorkload.delete(accountPath(ns, 'shop'))],
    ];
    for (const [what, call] of denied) {
      await assert.rejects(call, (err: unknown) => err instanceof ApiError && err.code === 403, what);
    }
    // The operator reconciling again (a spec change) keeps the workload's conditions.
    await applyAccount(ns, 'shop', { ...baseSpec, reply: { default: { text: '在的' } } });
    const after = await waitRunning(ns, 'shop');
    assert.equal(cond(after, 'Connected')?.status, 'True');
  } finally {
    asWorkload.close();
  }
});

test('the API server rejects invalid accounts with messages naming the field', async () => {
  const ns = await cluster.namespace('op-invalid');
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['no credentials', { reply: {} }, /spec\.credentials: Required value/],
    [
      'AI without a key',
      { ...baseSpec, reply: { ai: { enabled: true } } },
      /spec\.reply\.ai\.apiKeySecretRef: Required value: apiKeySecretRef is required when enabled is true/,
    ],
    [
      'delay range',
      { ...baseSpec, reply: { delay: { minMs: 10, maxMs: 1 } } },
      /spec\.reply\.delay\.maxMs: Invalid value/,
    ],
    [
      'match mode',
      { ...baseSpec, reply: { keywords: [{ match: ['a'], mode: 'fuzzy', reply: 'x' }] } },
      /spec\.reply\.keywords\[0\]\.mode: Unsupported value: "fuzzy"/,
    ],
    [
      'quantity',
      { ...baseSpec, workload: { resources: { limits: { cpu: 'lots' } } } },
      /spec\.workload\.resources\.limits\.cpu/,
    ],
    [
      'risk backoff',
      { ...baseSpec, session: { riskControlBackoffMs: 1000 } },
      /spec\.session\.riskControlBackoffMs: Invalid value: 1000: .*greater than or equal to 60000/,
    ],
    [
      'delivery source without its field',
      { ...baseSpec, delivery: { rules: [{ name: 'r', itemIds: ['1'], source: { type: 'text' } }] } },
      /spec\.delivery\.rules\[0\]\.source: Invalid value: .*pool needs pool, text needs text/,
    ],
    [
      'delivery rule with both itemIds and keywords',
      {
        ...baseSpec,
        delivery: {
          rules: [{ name: 'r', itemIds: ['1'], keywords: ['k'], source: { type: 'text', text: 'x' } }],
        },
      },
      /spec\.delivery\.rules\[0\]\.itemIds: .*give either itemIds or keywords/,
    ],
  ];
  for (const [what, spec, message] of cases) {
    await assert.rejects(
      applyAccount(ns, 'bad', spec),
      (err: unknown) => err instanceof ApiError && err.code === 422 && message.test(err.message),
      what,
    );
  }
  // Pools are a list keyed by name: a second pool of one name is refused (server-side apply
  // answers 500 "duplicate entries", a plain create 422 "Duplicate value").
  await assert.rejects(
    applyAccount(ns, 'bad', {
      ...baseSpec,
      delivery: {
        pools: [
          { name: 'a', secretRef: { name: 'codes' } },
          { name: 'a', secretRef: { name: 'other' } },
        ],
      },
    }),
    (err: unknown) =>
      err instanceof ApiError &&
      /spec\.delivery\.pools: duplicate entries for key \[name="a"\]/.test(err.message),
  );
  // The whole delivery section, as the README shows it, is accepted.
  await applyAccount(ns, 'with-delivery', {
    ...baseSpec,
    delivery: {
      pools: [{ name: 'vip', secretRef: { name: 'vip-codes' }, lowStock: 3 }],
      rules: [
        {
          name: 'vip',
          itemIds: ['1'],
          spec: { name: '版本', value: 'A' },
          source: { type: 'pool', pool: 'vip' },
        },
        {
          name: 'api',
          keywords: ['会员'],
          source: { type: 'http', url: 'http://x/{order_id}', headers: { a: 'b' } },
        },
        { name: 'img', itemIds: ['2'], source: { type: 'image', url: 'https://img.alicdn.com/x.jpg' } },
      ],
    },
  });
  await assert.rejects(
    applyAccount(ns, '1-starts-with-digit', baseSpec),
    (err: unknown) => err instanceof ApiError && err.code === 422 && /metadata\.name/.test(err.message),
  );
});

test('a missing Secret gives ConfigValid=False and a Warning Event, and recovers when the Secret appears', async () => {
  const ns = await cluster.namespace('op-secret');
  await operator(ns);
  await applyAccount(ns, 'shop', {
    ...baseSpec,
    reply: { ai: { enabled: true, apiKeySecretRef: { name: 'ai' } } },
  });
  const failed = await waitForCondition(ns, 'shop', 'ConfigValid', 'False');
  assert.equal(failed.status.phase, 'Failed');
  assert.equal(cond(failed, 'ConfigValid').reason, 'SecretNotFound');
  assert.match(
    cond(failed, 'ConfigValid').message,
    /Secret "cookies" \(spec\.credentials\.cookiesSecretRef\) not found/,
  );
  await waitFor('a Warning event', async () =>
    (await events(ns, 'shop')).find((e) => e.type === 'Warning' && e.reason === 'SecretNotFound'),
  );
  await assert.rejects(
    deploymentOf(ns, 'shop'),
    (err: unknown) => err instanceof ApiError && err.code === 404,
  );

  await createSecret(ns, 'cookies', { cookies: 'unb=2200000003' });
  const next = await waitFor('AI key Secret reported', async () => {
    const a = await getAccount(ns, 'shop');
    return /Secret "ai"/.test(cond(a, 'ConfigValid')?.message ?? '') ? a : undefined;
  });
  assert.equal(cond(next, 'ConfigValid').reason, 'SecretNotFound');
  await createSecret(ns, 'ai', { wrongKey: 'sk-test' });
  await waitFor('missing key reported', async () => {
    const a = await getAccount(ns, 'shop');
    return cond(a, 'ConfigValid')?.reason === 'SecretKeyNotFound' ? a : undefined;
  });
  await api.request('PATCH', pathFor(RESOURCES.Secret, ns, 'ai'), {
    body: { stringData: { apiKey: 'sk-test' } },
    contentType: 'application/merge-patch+json',
  });
  const ok = await waitRunning(ns, 'shop');
  assert.equal(cond(ok, 'ConfigValid').status, 'True');
  assert.ok((await events(ns, 'shop')).some((e) => e.reason === 'ConfigValid' && e.type === 'Normal'));
  const all = JSON.stringify(await events(ns, 'shop'));
  assert.ok(!all.includes('sk-test') && !all.includes('2200000003'), 'no secret value in events');
});

test('a spec the workload would refuse (two delivery rules, one order) is ConfigValid=False before any pod', async () => {
  const ns = await cluster.namespace('op-wlcfg');
  await operator(ns);
  await createSecret(ns, 'cookies', { cookies: 'unb=2200000004' });
  const rules = [
    { name: 'a', itemIds: ['1'], source: { type: 'text', text: 'x' } },
    { name: 'b', itemIds: ['1'], source: { type: 'text', text: 'y' } },
  ];
  await applyAccount(ns, 'shop', { ...baseSpec, delivery: { rules } });
  const failed = await waitForCondition(ns, 'shop', 'ConfigValid', 'False');
  assert.equal(cond(failed, 'ConfigValid').reason, 'WorkloadConfigInvalid');
  assert.match(
    cond(failed, 'ConfigValid').message,
    /spec\.delivery\.rules\[1\]: rules "a" and "b" both claim item 1 at priority item/,
  );
  await assert.rejects(
    deploymentOf(ns, 'shop'),
    (err: unknown) => err instanceof ApiError && err.code === 404,
  );
  // Told apart by a spec (规格), the rules are fine.
  await applyAccount(ns, 'shop', {
    ...baseSpec,
    delivery: { rules: [rules[0], { ...rules[1], spec: { name: '版本', value: 'B' } }] },
  });
  const ok = await waitRunning(ns, 'shop');
  assert.equal(cond(ok, 'ConfigValid').status, 'True');
});

test('a spec change rolls the Deployment; a resync of unchanged accounts writes nothing', async () => {
  const ns = await cluster.namespace('op-roll');
  const op = await operator(ns, ['--resync-period', '1']);
  await createSecret(ns, 'cookies', { cookies: 'unb=2200000004' });
  for (const name of ['a', 'b', 'c']) await applyAccount(ns, name, baseSpec);
  for (const name of ['a', 'b', 'c']) await waitRunning(ns, name);
  const before = await settledWrites(op);
  const reconciles = await op.metric('controller_runtime_reconcile_total');
  await new Promise((r) => setTimeout(r, 3500));
  assert.ok((await op.metric('controller_runtime_reconcile_total')) >= reconciles + 6, 'resyncs ran');
  assert.equal(await settledWrites(op), before, 'no writes while nothing changed');

  const d1 = await deploymentOf(ns, 'a');
  const hash1 = d1.spec.template.metadata.annotations[CONFIG_HASH_ANNOTATION];
  await applyAccount(ns, 'a', { ...baseSpec, reply: { default: { text: '新的问候' } } });
  const d2 = await waitFor('a new config hash', async () => {
    const d = await deploymentOf(ns, 'a');
    return d.spec.template.metadata.annotations[CONFIG_HASH_ANNOTATION] !== hash1 ? d : undefined;
  });
  assert.ok(d2.metadata.generation > d1.metadata.generation);
  const cm = await api.get<Any>(pathFor(RESOURCES.ConfigMap, ns, 'xianyu-a'));
  assert.match(cm.data['config.yaml'], /新的问候/);
  const a = await waitRunning(ns, 'a');
  assert.equal(a.status.observedGeneration, 2);
  assert.ok((await events(ns, 'a')).some((e) => e.reason === 'Updated'));

  // A Secret change rolls the pod too (the workload reads its files at start).
  const before2 = (await deploymentOf(ns, 'b')).spec.template.metadata.annotations[CONFIG_HASH_ANNOTATION];
  await api.request('PATCH', pathFor(RESOURCES.Secret, ns, 'cookies'), {
    body: { stringData: { cookies: 'unb=2200000005' } },
    contentType: 'application/merge-patch+json',
  });
  await waitFor('b rolled after the Secret changed', async () => {
    const d = await deploymentOf(ns, 'b');
    return d.spec.template.metadata.annotations[CONFIG_HASH_ANNOTATION] !== before2 ? d : undefined;
  });
});

test('deleted or hand-edited children are restored; deleting the account removes its children', async () => {
  const ns = await cluster.namespace('op-drift');
  await operator(ns);
  await createSecret(ns, 'cookies', { cookies: 'unb=2200000006' });
  await applyAccount(ns, 'shop', baseSpec);
  await waitRunning(ns, 'shop');

  const cmPath = pathFor(RESOURCES.ConfigMap, ns, 'xianyu-shop');
  const original = (await api.get<Any>(cmPath)).data['config.yaml'];
  await api.delete(cmPath);
  await waitFor('ConfigMap restored', async () => {
    const cm = await api.get<Any>(cmPath).catch(() => undefined);
    return cm?.data?.['config.yaml'] === original ? cm : undefined;
  });

  const dPath = pathFor(RESOURCES.Deployment, ns, 'xianyu-shop');
  await api.request('PATCH', dPath, {
    body: {
      spec: { replicas: 3, template: { spec: { containers: [{ name: 'workload', image: 'evil:latest' }] } } },
    },
    contentType: 'application/strategic-merge-patch+json',
  });
  await waitFor('Deployment restored', async () => {
    const d = await api.get<Any>(dPath);
    return d.spec.replicas === 1 &&
      d.spec.template.spec.containers[0].image === 'registry.local/xianyu-workload:test'
      ? d
      : undefined;
  });
  const rolePath = pathFor(RESOURCES.Role, ns, 'xianyu-shop');
  await api.request('PATCH', rolePath, {
    body: [{ op: 'replace', path: '/rules/0/resourceNames', value: [] }],
    contentType: 'application/json-patch+json',
  });
  await waitFor('Role restored', async () => {
    const r = await api.get<Any>(rolePath);
    return r.rules[0].resourceNames?.[0] === 'shop' ? r : undefined;
  });
  assert.ok((await events(ns, 'shop')).some((e) => e.reason === 'DriftCorrected'));

  await api.delete(accountPath(ns, 'shop'));
  for (const t of [
    RESOURCES.Deployment,
    RESOURCES.ConfigMap,
    RESOURCES.Service,
    RESOURCES.ServiceAccount,
    RESOURCES.Role,
    RESOURCES.RoleBinding,
  ]) {
    await waitFor(`${t.kind} garbage-collected`, async () =>
      api.get(pathFor(t, ns, 'xianyu-shop')).then(
        () => false,
        (err) => err instanceof ApiError && err.code === 404,
      ),
    );
  }
});

test('pause and resume, by spec.paused and by the xianyu.io/paused annotation', async () => {
  const ns = await cluster.namespace('op-pause');
  await operator(ns);
  await createSecret(ns, 'cookies', { cookies: 'unb=2200000007' });
  await applyAccount(ns, 'shop', baseSpec);
  await waitRunning(ns, 'shop');

  await applyAccount(ns, 'shop', { ...baseSpec, paused: true });
  const paused = await waitFor('Paused phase', async () => {
    const a = await getAccount(ns, 'shop');
    return a.status?.phase === 'Paused' ? a : undefined;
  });
  assert.equal(cond(paused, 'Paused').status, 'True');
  assert.equal(cond(paused, 'Paused').reason, 'PausedBySpec');
  assert.equal(cond(paused, 'Ready').status, 'False');
  assert.equal((await deploymentOf(ns, 'shop')).spec.replicas, 0);
  await waitFor('pod gone', async () => {
    const d = await deploymentOf(ns, 'shop');
    return (d.status?.replicas ?? 0) === 0 ? d : undefined;
  });

  await applyAccount(ns, 'shop', baseSpec);
  const resumed = await waitRunning(ns, 'shop');
  assert.equal(cond(resumed, 'Paused').status, 'False');
  assert.ok((await events(ns, 'shop')).some((e) => e.reason === 'Resumed'));

  await applyAccount(ns, 'shop', baseSpec, { 'xianyu.io/paused': 'true' });
  const byAnnotation = await waitFor('Paused by annotation', async () => {
    const a = await getAccount(ns, 'shop');
    return cond(a, 'Paused')?.reason === 'PausedByAnnotation' ? a : undefined;
  });
  assert.equal(byAnnotation.status.phase, 'Paused');
  assert.equal((await deploymentOf(ns, 'shop')).spec.replicas, 0);
  await applyAccount(ns, 'shop', baseSpec);
  await waitRunning(ns, 'shop');
});

test('two operators: one leads; killing it hands over within 20 s with no double writes', async () => {
  const ns = await cluster.namespace('op-leader');
  await createSecret(ns, 'cookies', { cookies: 'unb=2200000008' });
  const args = ['--leader-elect', '--leader-election-namespace', ns, '--resync-period', '2'];
  const first = await operator(ns, args, 'op-first');
  await first.waitForLog((l) => l.msg === 'became the leader', 30_000);
  const second = await operator(ns, args, 'op-second');
  await second.waitForLog((l) => l.msg === 'caches synced', 30_000);
  for (const name of ['a', 'b']) await applyAccount(ns, name, baseSpec);
  for (const name of ['a', 'b']) await waitRunning(ns, name);
  assert.equal(await first.metric('leader_election_master_status'), 1);
  assert.equal(await second.metric('leader_election_master_status'), 0);
  assert.equal(
    (await second.metric('xianyu_operator_api_writes_total')) -
      (await second.metric('xianyu_operator_api_writes_total', { resource: 'leases' })),
    0,
    'the standby writes nothing but its attempts on the lease',
  );
  assert.equal(await second.metric('controller_runtime_reconcile_total'), 0);
  const lease = await api.get<Any>(pathFor(RESOURCES.Lease, ns, 'xianyu-operator'));
  assert.equal(lease.spec.holderIdentity, 'op-first');

  const killedAt = Date.now();
  await first.stop('SIGKILL');
  await second.waitForLog((l) => l.msg === 'became the leader', 25_000);
  const handoverMs = Date.now() - killedAt;
  process.stderr.write(`# leader handover after SIGKILL: ${handoverMs} ms\n`);
  assert.ok(handoverMs <= 20_000, `handover took ${handoverMs} ms`);
  // The new leader looks at every account and writes nothing: they are up to date.
  await waitFor('the new leader reconciled both accounts', async () =>
    (await second.metric('controller_runtime_reconcile_total')) >= 2 ? true : undefined,
  );
  assert.equal(await settledWrites(second), 0, 'no writes after handover for unchanged accounts');
  await applyAccount(ns, 'a', { ...baseSpec, paused: true });
  await waitFor('the new leader acts', async () =>
    (await getAccount(ns, 'a')).status?.phase === 'Paused' ? true : undefined,
  );

  // Graceful shutdown releases the lease at once.
  const third = await operator(ns, args, 'op-third');
  await third.waitForLog((l) => l.msg === 'caches synced', 30_000);
  const stoppedAt = Date.now();
  assert.equal(await second.stop('SIGTERM'), 0);
  await third.waitForLog((l) => l.msg === 'became the leader', 20_000);
  process.stderr.write(`# leader handover after SIGTERM (lease released): ${Date.now() - stoppedAt} ms\n`);
});

test('/healthz, /readyz and the controller-runtime metric names', async () => {
  const ns = await cluster.namespace('op-probes');
  const op = await operator(ns);
  await waitFor('ready', async () => ((await op.get('/readyz')).status === 200 ? true : undefined));
  assert.equal((await op.get('/healthz')).status, 200);
  const text = await op.metricsText();
  for (const name of [
    'controller_runtime_reconcile_total',
    'controller_runtime_reconcile_errors_total',
    'controller_runtime_reconcile_time_seconds',
    'workqueue_depth',
    'workqueue_adds_total',
    'workqueue_queue_duration_seconds',
    'workqueue_work_duration_seconds',
    'workqueue_retries_total',
    'leader_election_master_status',
    'xianyu_operator_api_writes_total',
    'xianyu_operator_accounts',
  ]) {
    assert.match(text, new RegExp(`# TYPE ${name} `), name);
  }
});

/** The kube-apiserver process serving this cluster (found by its --secure-port). */
function apiserverPid(port: string): number | undefined {
  const out = execFileSync('pgrep', ['-x', 'kube-apiserver'], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .filter(Boolean);
  return out
    .map(Number)
    .find((pid) =>
      readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(`--secure-port=${port}`),
    );
}

test('kube-apiserver restarts mid-test: the operator recovers without a restart', async () => {
  const ns = await cluster.namespace('op-restart');
  const op = await operator(ns, ['--watch-idle-timeout', '30']);
  await createSecret(ns, 'cookies', { cookies: 'unb=2200000009' });
  await applyAccount(ns, 'before', baseSpec);
  await waitRunning(ns, 'before');

  const port = new URL(cluster.kc.getCurrentCluster()!.server).port;
  const pid = apiserverPid(port);
  assert.ok(pid, 'kube-apiserver found');
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const { readlinkSync } = await import('node:fs');
  const cwd = readlinkSync(`/proc/${pid}/cwd`);
  // SIGTERM, then SIGKILL when its graceful shutdown (open watches) takes longer than 10 s.
  process.kill(pid, 'SIGTERM');
  const gone = async () => (apiserverPid(port) === undefined ? true : undefined);
  await waitFor('kube-apiserver stopped', gone, 10_000).catch(() => process.kill(pid, 'SIGKILL'));
  await waitFor('kube-apiserver killed', gone, 10_000);
  await new Promise((r) => setTimeout(r, 3000));
  const log = join(cwd, 'logs', 'kube-apiserver.log');
  writeFileSync(log, '\n--- restarted by operator.test.ts ---\n', { flag: 'a' });
  const { openSync } = await import('node:fs');
  const fd = openSync(log, 'a');
  const child = spawn(argv[0]!, argv.slice(1), { cwd, detached: true, stdio: ['ignore', fd, fd] });
  child.unref();
  // The control plane's stop() kills the processes it recorded; this one is killed by after().
  respawnedApiserver = child;
  await waitFor('kube-apiserver back', () => api.get('/readyz'), 90_000);
  await applyAccount(ns, 'after', baseSpec);
  await waitRunning(ns, 'after', 90_000);
  await applyAccount(ns, 'before', { ...baseSpec, paused: true });
  await waitFor(
    'before paused',
    async () => ((await getAccount(ns, 'before')).status?.phase === 'Paused' ? true : undefined),
    60_000,
  );
  assert.equal(op.child.exitCode, null, 'the operator kept running');
  await waitFor(
    'ready again',
    async () => ((await op.get('/readyz')).status === 200 ? true : undefined),
    60_000,
  );
});

test('the operator works with only its documented RBAC (operator/src/rbac.ts), as a ServiceAccount', async () => {
  const { OPERATOR_RULES } = await import('../../operator/src/rbac.js');
  const system = await cluster.namespace('op-system');
  const ns = await cluster.namespace('op-sa');
  const name = `xianyu-operator-${system}`;
  const rbacApi = '/apis/rbac.authorization.k8s.io/v1';
  await api.create(pathFor(RESOURCES.ServiceAccount, system), {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'xianyu-operator' },
  });
  await api.create(`${rbacApi}/clusterroles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name },
    rules: OPERATOR_RULES,
  });
  await api.create(`${rbacApi}/clusterrolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
    subjects: [{ kind: 'ServiceAccount', name: 'xianyu-operator', namespace: system }],
  });
  try {
    const tr = await api.request<Any>(
      'POST',
      `${pathFor(RESOURCES.ServiceAccount, system, 'xianyu-operator')}/token`,
      {
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: 3600 },
        },
      },
    );
    const c = cluster.kc.getCurrentCluster()!;
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const kubeconfig = join(mkdtempSync(join(tmpdir(), 'xianyu-op-')), 'kubeconfig');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'local', cluster: { server: c.server, 'certificate-authority-data': c.caData } }],
        users: [{ name: 'operator', user: { token: tr.status.token } }],
        contexts: [{ name: 'operator', context: { cluster: 'local', user: 'operator' } }],
        'current-context': 'operator',
      }),
    );
    const op = await startOperatorProcess({
      kubeconfig,
      args: [
        '--watch-namespaces',
        ns,
        '--leader-elect',
        '--leader-election-namespace',
        system,
        '--workload-image',
        'x/y:1',
      ],
    });
    operators.push(op);
    await op.waitForLog((l) => l.msg === 'became the leader', 30_000);
    await createSecret(ns, 'cookies', { cookies: 'unb=2200000010' });
    await applyAccount(ns, 'shop', baseSpec);
    await waitRunning(ns, 'shop');
    assert.ok(
      (await events(ns, 'shop')).some((e) => e.reason === 'Created'),
      'events recorded',
    );
    assert.equal(
      await op.metric('xianyu_operator_api_errors_total', { code: '403' }),
      0,
      'no forbidden requests',
    );
    await op.stop();
  } finally {
    await api.delete(`${rbacApi}/clusterrolebindings/${name}`).catch(() => {});
    await api.delete(`${rbacApi}/clusterroles/${name}`).catch(() => {});
  }
});

test('a ServiceMonitor is created only when the monitoring.coreos.com CRD exists', async () => {
  const ns = await cluster.namespace('op-monitor');
  await createSecret(ns, 'cookies', { cookies: 'unb=2200000011' });
  const before = await operator(ns);
  await applyAccount(ns, 'shop', baseSpec);
  await waitRunning(ns, 'shop');
  await before.stop();
  const smPath = pathFor(RESOURCES.ServiceMonitor, ns, 'xianyu-shop');
  const crdPath = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
  const crdName = 'servicemonitors.monitoring.coreos.com';
  const existed = await api.get(`${crdPath}/${crdName}`).then(
    () => true,
    () => false,
  );
  if (!existed) {
    // A minimal stand-in for the Prometheus Operator's CRD.
    await api.create(crdPath, {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: crdName },
      spec: {
        group: 'monitoring.coreos.com',
        scope: 'Namespaced',
        names: {
          plural: 'servicemonitors',
          singular: 'servicemonitor',
          kind: 'ServiceMonitor',
          listKind: 'ServiceMonitorList',
        },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
          },
        ],
      },
    });
  }
  try {
    await waitFor('servicemonitors served', () => api.get('/apis/monitoring.coreos.com/v1/servicemonitors'));
    const op = await operator(ns);
    await op.waitForLog((l) => l.serviceMonitor === true);
    const sm = await waitFor('ServiceMonitor created', () => api.get<Any>(smPath).catch(() => undefined));
    assert.equal(sm.metadata.ownerReferences[0].name, 'shop');
    assert.deepEqual(sm.spec.endpoints, [{ port: 'http', path: '/metrics', interval: '30s' }]);
    assert.equal(sm.spec.selector.matchLabels['app.kubernetes.io/instance'], 'shop');
    await op.stop();
  } finally {
    if (!existed) await api.delete(`${crdPath}/${crdName}`).catch(() => {});
  }
});
