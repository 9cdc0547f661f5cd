// Behaviour of the local control plane (test/cluster): one control plane per file, a fresh
// namespace per test, every wait a polled condition with a deadline.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type V1ConfigMap,
  type V1Pod,
  Watch,
} from '@kubernetes/client-node';
import { runTool } from './controlplane.js';
import {
  CLUSTER_START_TIMEOUT_MS,
  startTestCluster,
  statusOf,
  type TestCluster,
  waitFor,
} from './harness.js';

let cluster: TestCluster;

before(
  async () => {
    cluster = await startTestCluster();
  },
  { timeout: CLUSTER_START_TIMEOUT_MS },
);

after(async () => {
  await cluster?.stop();
});

const rand = () => Math.random().toString(36).slice(2, 8);

/** Resolves with the HTTP status a call fails with; fails the test if it succeeds. */
async function rejection(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call;
  } catch (err) {
    const code = statusOf(err);
    if (code === undefined) throw err;
    const body = (err as { body?: unknown }).body;
    return { code, message: typeof body === 'string' ? body : JSON.stringify(body) };
  }
  assert.fail('expected the API server to refuse the request');
}

test('a CRD installs, its schema rejects a bad object and its status subresource works', async () => {
  const ns = await cluster.namespace('crd');
  const ext = cluster.kc.makeApiClient(ApiextensionsV1Api);
  const custom = cluster.kc.makeApiClient(CustomObjectsApi);
  const group = `t${rand()}.xianyu.test`;
  const plural = 'widgets';
  const crdName = `${plural}.${group}`;
  await ext.createCustomResourceDefinition({
    body: {
      metadata: { name: crdName },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural, singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            subresources: { status: {} },
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: {
                    type: 'object',
                    required: ['size'],
                    properties: {
                      size: { type: 'integer', minimum: 1 },
                      color: { type: 'string', _enum: ['red', 'blue'] },
                    },
                  },
                  status: { type: 'object', properties: { phase: { type: 'string' } } },
                },
              },
            },
          },
        ],
      },
    },
  });
  try {
    await waitFor('the CRD to be Established', async () => {
      const crd = await ext.readCustomResourceDefinition({ name: crdName });
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    });
    const version = 'v1';
    // The handler for a just-established CRD can lag its condition by a moment: retry on 404 only.
    const created = (await waitFor('the first Widget to be accepted', async () => {
      try {
        return await custom.createNamespacedCustomObject({
          group,
          version,
          namespace: ns,
          plural,
          body: {
            apiVersion: `${group}/v1`,
            kind: 'Widget',
            metadata: { name: 'good' },
            spec: { size: 2, color: 'red' },
          },
        });
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    })) as { metadata: { generation: number }; spec: { size: number } };
    assert.equal(created.spec.size, 2);

    const bad = await rejection(
      custom.createNamespacedCustomObject({
        group,
        version,
        namespace: ns,
        plural,
        body: {
          apiVersion: `${group}/v1`,
          kind: 'Widget',
          metadata: { name: 'bad' },
          spec: { size: 0, color: 'green' },
        },
      }),
    );
    assert.equal(bad.code, 422);
    assert.match(bad.message, /spec\.size/);
    assert.match(bad.message, /spec\.color/);
    const missing = await rejection(
      custom.createNamespacedCustomObject({
        group,
        version,
        namespace: ns,
        plural,
        body: { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'empty' }, spec: {} },
      }),
    );
    assert.equal(missing.code, 422);
    assert.match(missing.message, /spec\.size: Required value/);

    // Status goes through its own subresource and does not bump the generation.
    const withStatus = (await custom.patchNamespacedCustomObjectStatus(
      {
        group,
        version,
        namespace: ns,
        plural,
        name: 'good',
        body: [{ op: 'add', path: '/status', value: { phase: 'Ready' } }],
      },
      undefined,
    )) as { metadata: { generation: number }; status: { phase: string } };
    assert.equal(withStatus.status.phase, 'Ready');
    assert.equal(withStatus.metadata.generation, created.metadata.generation);
  } finally {
    await ext.deleteCustomResourceDefinition({ name: crdName });
  }
});

function isRunningAndReady(pod: V1Pod): boolean {
  return (
    pod.status?.phase === 'Running' &&
    (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

test('a Deployment becomes a ReplicaSet and a Pod scheduled on a kwok node that reports Running', async () => {
  const ns = await cluster.namespace('deploy');
  const apps = cluster.kc.makeApiClient(AppsV1Api);
  const core = cluster.kc.makeApiClient(CoreV1Api);
  const deployment = await apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name: 'web' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { containers: [{ name: 'web', image: 'registry.invalid/web:1' }] },
        },
      },
    },
  });
  const rs = await waitFor('a ReplicaSet owned by the Deployment', async () => {
    const list = await apps.listNamespacedReplicaSet({ namespace: ns });
    return list.items.find((r) =>
      r.metadata?.ownerReferences?.some((o) => o.uid === deployment.metadata?.uid),
    );
  });
  const pod = await waitFor('a Pod of the ReplicaSet that is Running and Ready', async () => {
    const list = await core.listNamespacedPod({ namespace: ns });
    const owned = list.items.find((p) =>
      p.metadata?.ownerReferences?.some((o) => o.uid === rs.metadata?.uid),
    );
    return owned && isRunningAndReady(owned) ? owned : undefined;
  });
  assert.ok(cluster.nodeNames.includes(pod.spec?.nodeName ?? ''), `pod scheduled on ${pod.spec?.nodeName}`);
  assert.ok(pod.status?.podIP, 'kwok gives the pod an IP');
  await waitFor('the Deployment to report one available replica', async () => {
    const d = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    return d.status?.availableReplicas === 1 && d.status.observedGeneration === d.metadata?.generation;
  });
});

test('deleting an owner garbage-collects what it owns (and orphans only when asked)', async () => {
  const ns = await cluster.namespace('gc');
  const core = cluster.kc.makeApiClient(CoreV1Api);
  const apps = cluster.kc.makeApiClient(AppsV1Api);
  const owner = await core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: 'owner' } },
  });
  const ownerRef = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    name: 'owner',
    uid: owner.metadata!.uid!,
  };
  await core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: 'child', ownerReferences: [ownerRef] }, data: { a: '1' } },
  });
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'child-secret', ownerReferences: [ownerRef] }, stringData: { b: '2' } },
  });
  await core.deleteNamespacedConfigMap({ name: 'owner', namespace: ns, propagationPolicy: 'Background' });
  await waitFor('the owned ConfigMap and Secret to be collected', async () => {
    const gone = async (read: Promise<unknown>) =>
      read.then(
        () => false,
        (err: unknown) => statusOf(err) === 404,
      );
    return (
      (await gone(core.readNamespacedConfigMap({ name: 'child', namespace: ns }))) &&
      (await gone(core.readNamespacedSecret({ name: 'child-secret', namespace: ns })))
    );
  });

  // A Deployment deleted in the foreground takes its ReplicaSet and Pods with it; kwok plays
  // the kubelet's part in finishing the pods' graceful deletion.
  const labels = { app: 'gc' };
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name: 'gc' },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: { containers: [{ name: 'c', image: 'registry.invalid/c:1' }] },
        },
      },
    },
  });
  await waitFor('two Running pods', async () => {
    const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=gc' });
    return pods.items.filter(isRunningAndReady).length === 2;
  });
  await apps.deleteNamespacedDeployment({ name: 'gc', namespace: ns, propagationPolicy: 'Foreground' });
  await waitFor('the Deployment, its ReplicaSet and its Pods to be gone', async () => {
    const [d, rs, pods] = await Promise.all([
      apps.listNamespacedDeployment({ namespace: ns }),
      apps.listNamespacedReplicaSet({ namespace: ns }),
      core.listNamespacedPod({ namespace: ns }),
    ]);
    return d.items.length === 0 && rs.items.length === 0 && pods.items.length === 0;
  });

  // Orphan propagation leaves the dependent with its owner reference removed.
  const owner2 = await core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: 'owner2' } },
  });
  await core.createNamespacedConfigMap({
    namespace: ns,
    body: {
      metadata: {
        name: 'orphan',
        ownerReferences: [
          { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner2', uid: owner2.metadata!.uid! },
        ],
      },
    },
  });
  await core.deleteNamespacedConfigMap({ name: 'owner2', namespace: ns, propagationPolicy: 'Orphan' });
  const orphan = await waitFor('the dependent to be orphaned', async () => {
    const cm = await core.readNamespacedConfigMap({ name: 'orphan', namespace: ns });
    const ownerGone = await core.readNamespacedConfigMap({ name: 'owner2', namespace: ns }).then(
      () => false,
      (err: unknown) => statusOf(err) === 404,
    );
    return ownerGone && !cm.metadata?.ownerReferences?.length ? cm : undefined;
  });
  assert.equal(orphan.metadata?.name, 'orphan');
});

test('a TokenRequest token authenticates with exactly the permissions its Role grants', async () => {
  const ns = await cluster.namespace('sa');
  const other = await cluster.namespace('sa-other');
  const core = cluster.kc.makeApiClient(CoreV1Api);
  const rbac = cluster.kc.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'reader' } } });
  await rbac.createNamespacedRole({
    namespace: ns,
    body: {
      metadata: { name: 'configmap-reader' },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: 'reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'configmap-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns }],
    },
  });
  await core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: 'visible' }, data: { k: 'v' } },
  });
  const tr = await core.createNamespacedServiceAccountToken({
    name: 'reader',
    namespace: ns,
    body: { spec: { audiences: [], expirationSeconds: 600 } },
  });
  const token = tr.status?.token;
  assert.ok(token, 'TokenRequest returns a token');

  const cluster0 = cluster.kc.getCurrentCluster()!;
  const asReader = new KubeConfig();
  asReader.loadFromOptions({
    clusters: [{ name: 'local', server: cluster0.server, caData: cluster0.caData }],
    users: [{ name: 'reader', token }],
    contexts: [{ name: 'reader', cluster: 'local', user: 'reader' }],
    currentContext: 'reader',
  });

  const review = await asReader.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
  assert.equal(review.status?.userInfo?.username, `system:serviceaccount:${ns}:reader`);

  // Real requests: what the Role grants works, anything else is 403.
  const readerCore = asReader.makeApiClient(CoreV1Api);
  const cm = await readerCore.readNamespacedConfigMap({ name: 'visible', namespace: ns });
  assert.equal(cm.data?.k, 'v');
  const listed = await readerCore.listNamespacedConfigMap({ namespace: ns });
  assert.ok(listed.items.some((c) => c.metadata?.name === 'visible'));
  const denied: [string, () => Promise<unknown>][] = [
    [
      'create configmaps',
      () => readerCore.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'no' } } }),
    ],
    ['delete configmaps', () => readerCore.deleteNamespacedConfigMap({ name: 'visible', namespace: ns })],
    ['list secrets', () => readerCore.listNamespacedSecret({ namespace: ns })],
    ['list pods', () => readerCore.listNamespacedPod({ namespace: ns })],
    ['list configmaps elsewhere', () => readerCore.listNamespacedConfigMap({ namespace: other })],
    ['list nodes', () => readerCore.listNode()],
  ];
  for (const [what, call] of denied) assert.equal((await rejection(call())).code, 403, what);

  // The whole matrix, as the authorizer sees it for this identity.
  const authz = asReader.makeApiClient(AuthorizationV1Api);
  const verbs = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
  const resources = ['configmaps', 'secrets', 'pods', 'serviceaccounts'];
  for (const namespace of [ns, other]) {
    for (const resource of resources) {
      for (const verb of verbs) {
        const res = await authz.createSelfSubjectAccessReview({
          body: { spec: { resourceAttributes: { namespace, resource, verb } } },
        });
        const expected = namespace === ns && resource === 'configmaps' && (verb === 'get' || verb === 'list');
        assert.equal(res.status?.allowed, expected, `${verb} ${resource} in ${namespace}`);
      }
    }
  }
});

test('the API server enforces resourceVersion conflicts, apply ownership and 410 Gone on stale watches', async () => {
  const ns = await cluster.namespace('api');
  const core = cluster.kc.makeApiClient(CoreV1Api);

  // Optimistic concurrency: an update carrying a stale resourceVersion is a 409 Conflict.
  const cm = await core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: 'occ' }, data: { k: '0' } },
  });
  await core.replaceNamespacedConfigMap({ name: 'occ', namespace: ns, body: { ...cm, data: { k: '1' } } });
  const stale = await rejection(
    core.replaceNamespacedConfigMap({ name: 'occ', namespace: ns, body: { ...cm, data: { k: '2' } } }),
  );
  assert.equal(stale.code, 409);

  // Server-side apply: a second manager changing an owned field conflicts unless it forces.
  const apply = (fieldManager: string, value: string, force?: boolean): Promise<V1ConfigMap> =>
    core.patchNamespacedConfigMap(
      {
        name: 'ssa',
        namespace: ns,
        fieldManager,
        force,
        body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ssa' }, data: { owner: value } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
  await apply('alpha', 'a');
  const conflict = await rejection(apply('beta', 'b'));
  assert.equal(conflict.code, 409);
  assert.match(conflict.message, /alpha/);
  const forced = await apply('beta', 'b', true);
  assert.equal(forced.data?.owner, 'b');
  const owners = (forced.metadata?.managedFields ?? [])
    .filter((f) => JSON.stringify(f.fieldsV1 ?? {}).includes('f:owner'))
    .map((f) => f.manager);
  assert.deepEqual(owners, ['beta']);

  // A watch from a resourceVersion that etcd has compacted away answers 410 Gone (Expired),
  // the signal informers answer with a fresh list. PodTemplates skip the watch cache (see
  // controlplane.ts), so this needs no waiting for cache eviction.
  const template = { spec: { containers: [{ name: 'c', image: 'registry.invalid/c:1' }] } };
  const pt = await core.createNamespacedPodTemplate({
    namespace: ns,
    body: { metadata: { name: 'pt' }, template },
  });
  const old = pt.metadata!.resourceVersion!;
  // Two later writes: a watch from `old` starts at old+1, which compaction up to now removes.
  for (const name of ['pt2', 'pt3']) {
    await core.createNamespacedPodTemplate({ namespace: ns, body: { metadata: { name }, template } });
  }
  await cluster.compactEtcd();
  const gone = await new Promise<number>((ok, fail) => {
    let controller: AbortController | undefined;
    new Watch(cluster.kc)
      .watch(
        `/api/v1/namespaces/${ns}/podtemplates`,
        { resourceVersion: old },
        (phase, obj: { code?: number }) => {
          if (phase === 'ERROR') {
            controller?.abort();
            ok(obj.code ?? 0);
          }
        },
        (err: unknown) => {
          const code = (err as { statusCode?: number; code?: number } | undefined)?.statusCode;
          if (code) ok(code);
          else if (err) fail(err);
        },
      )
      .then((c) => {
        controller = c;
      }, fail);
  });
  assert.equal(gone, 410);
});

test('kubectl works with the kubeconfig', async () => {
  const ns = await cluster.namespace('kubectl');
  const version = JSON.parse(await cluster.kubectl(['version', '-o', 'json'])) as {
    clientVersion: { gitVersion: string };
    serverVersion: { gitVersion: string };
  };
  assert.match(version.serverVersion.gitVersion, /^v1\.\d+\.\d+$/);
  assert.equal(version.clientVersion.gitVersion, version.serverVersion.gitVersion);

  const nodes = JSON.parse(await cluster.kubectl(['get', 'nodes', '-o', 'json'])) as {
    items: { metadata: { name: string } }[];
  };
  for (const name of cluster.nodeNames) assert.ok(nodes.items.some((n) => n.metadata.name === name));

  const dir = await mkdtemp(join(tmpdir(), 'kubectl-'));
  try {
    const file = join(dir, 'cm.yaml');
    await writeFile(
      file,
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-kubectl\ndata:\n  greeting: hello\n',
    );
    await cluster.kubectl(['apply', '--server-side', '--field-manager=test', '-n', ns, '-f', file]);
    assert.equal(
      await cluster.kubectl([
        'get',
        'configmap',
        'from-kubectl',
        '-n',
        ns,
        '-o',
        'jsonpath={.data.greeting}',
      ]),
      'hello',
    );
    assert.equal((await cluster.kubectl(['auth', 'can-i', 'create', 'deployments', '-n', ns])).trim(), 'yes');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('helm installs, lists and uninstalls a chart with the kubeconfig', async () => {
  const ns = await cluster.namespace('helm');
  const dir = await mkdtemp(join(tmpdir(), 'helm-chart-'));
  try {
    const chart = join(dir, 'demo');
    await cluster.helm(['create', chart]);
    await cluster.helm(['lint', chart]);
    // --wait needs the chart's Deployment available: kwok makes its pod Running and Ready.
    await cluster.helm(['install', 'demo', chart, '-n', ns, '--wait', '--timeout', '120s']);
    const releases = JSON.parse(await cluster.helm(['list', '-n', ns, '-o', 'json'])) as {
      name: string;
      status: string;
    }[];
    assert.deepEqual(
      releases.map((r) => [r.name, r.status]),
      [['demo', 'deployed']],
    );
    await cluster.helm(['uninstall', 'demo', '-n', ns, '--wait']);
    assert.deepEqual(JSON.parse(await cluster.helm(['list', '-n', ns, '-o', 'json'])), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('kubeconform validates offline against a local schema location', async () => {
  // No cluster needed, but the binary comes from the same cache. kubeconform's default schema
  // location is on the internet; our manifests are checked against schemas kept locally.
  const dir = await mkdtemp(join(tmpdir(), 'kubeconform-'));
  try {
    await writeFile(
      join(dir, 'configmap.json'),
      JSON.stringify({
        type: 'object',
        required: ['apiVersion', 'kind', 'metadata'],
        properties: { data: { type: 'object', additionalProperties: { type: 'string' } } },
      }),
    );
    const good = join(dir, 'good.yaml');
    const bad = join(dir, 'bad.yaml');
    await writeFile(good, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n');
    await writeFile(bad, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  k: 1\n');
    const location = ['-schema-location', `${dir}/{{ .ResourceKind }}.json`, '-summary'];
    const ok = await runTool(cluster.binDir, 'kubeconform', [...location, good]);
    assert.match(ok, /Valid: 1, Invalid: 0/);
    await assert.rejects(
      runTool(cluster.binDir, 'kubeconform', [...location, bad]),
      /Invalid: 1|expected string/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
