// The Helm chart, offline: helm lint --strict, rendering with default and non-default values,
// kubeconform against the schemas kept in charts/schemas (Kubernetes 1.36 kinds, the Prometheus
// Operator's ServiceMonitor/PrometheusRule, our XianyuAccount CRD), drift of the generated chart
// files, values.schema.json, and assertions on the rendered objects.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { drifted } from '../../charts/sync.js';
import { OPERATOR_RULES } from '../../operator/src/rbac.js';
import {
  CHART,
  find,
  kubeconform,
  type Obj,
  one,
  REPO,
  render,
  renderText,
  tool,
  valuesArgs,
} from './support.js';

const NS = 'xianyu-system';
const FULL = 'xy-xianyu-operator';

/** Every feature on, namespaced RBAC, two replicas. */
const EVERYTHING = {
  replicaCount: 2,
  watchNamespaces: ['shop-a', 'shop-b'],
  image: { repository: 'registry.example/xianyu/operator', tag: '1.2.3' },
  workload: {
    image: {
      repository: 'registry.example/xianyu/workload',
      digest: `sha256:${'a'.repeat(64)}`,
      pullPolicy: 'Always',
    },
    resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } },
    serviceMonitors: false,
  },
  resources: { requests: { cpu: '200m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
  probes: { liveness: { periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 6 } },
  postgresql: { enabled: true, auth: { password: 'p@ss/word' } },
  serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
  prometheusRule: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
  grafanaDashboard: { enabled: true },
  networkPolicy: { enabled: true, apiServerCIDRs: ['10.0.0.1/32'] },
  nodeSelector: { 'kubernetes.io/os': 'linux' },
  tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'xianyu', effect: 'NoSchedule' }],
  podAnnotations: { 'example.com/team': 'shop' },
  logLevel: 'debug',
};

const VALUE_SETS: [string, Record<string, unknown> | undefined][] = [
  ['defaults', undefined],
  ['everything on, namespaced', EVERYTHING],
  [
    'external database, no CRD, cluster-wide',
    {
      database: { url: 'postgres://u:p@db:5432/x' },
      crds: { install: false },
      leaderElection: { enabled: false },
    },
  ],
  ['existing database Secret, single namespace', { database: { secretName: 'pg' }, watchNamespaces: [NS] }],
];

const operatorDeployment = (objs: Obj[]) => one(objs, 'Deployment', FULL);
const operatorContainer = (objs: Obj[]) => operatorDeployment(objs).spec.template.spec.containers[0];
const args = (objs: Obj[]): string[] => operatorContainer(objs).args;

describe('generated files', () => {
  test('the chart copy of the CRD, the RBAC rules, the dashboard and the CRD schema match their sources', () => {
    assert.deepEqual(drifted(), [], 'run make chart-sync');
  });
});

describe('helm lint --strict', () => {
  for (const [name, values] of VALUE_SETS) {
    test(name, async () => {
      const out = await tool('helm', ['lint', '--strict', CHART, '--namespace', NS, ...valuesArgs(values)]);
      assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    });
  }
});

describe('kubeconform (offline, strict)', () => {
  for (const [name, values] of VALUE_SETS) {
    test(name, async () => {
      const text = await renderText(values, NS);
      const summary = await kubeconform(text);
      const m = /(\d+) resources? found .* Valid: (\d+), Invalid: 0, Errors: 0, Skipped: 0/.exec(summary);
      assert.ok(m, summary);
      assert.equal(m[1], m[2], summary);
    });
  }
  test('the example account and the kinds the workload sees are valid; a bad object is caught', async () => {
    const example = readFileSync(join(CHART, 'examples/account.yaml'), 'utf8');
    assert.match(await kubeconform(example), /Valid: 1, Invalid: 0/);
    const bad = example.replace('credentials:', 'credentialz:');
    await assert.rejects(kubeconform(bad), /additional properties 'credentialz' not allowed/);
    const text = await renderText(undefined, NS);
    await assert.rejects(
      kubeconform(text.replace('revisionHistoryLimit: 5', 'revisionHistoryLimit: "five"')),
      /revisionHistoryLimit/,
    );
  });
});

describe('values.schema.json rejects bad values with a clear message', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['unknown key', { replicas: 2 }, /additional properties 'replicas' not allowed/],
    ['replicaCount as text', { replicaCount: 'two' }, /replicaCount.*got string, want integer/s],
    ['bad memory quantity', { resources: { limits: { memory: 'lots' } } }, /resources\/limits\/memory/],
    ['bad pull policy', { workload: { image: { repository: 'x', pullPolicy: 'Sometimes' } } }, /pullPolicy/],
    ['bad namespace name', { watchNamespaces: ['Shop_A'] }, /watchNamespaces\/0/],
    ['bad database URL', { database: { url: 'mysql://x' } }, /database\/url/],
    ['bad log level', { logLevel: 'loud' }, /logLevel/],
  ];
  for (const [name, values, re] of cases) {
    test(name, async () => {
      await assert.rejects(renderText(values), re);
    });
  }
});

describe('the operator Deployment (defaults)', async () => {
  const objs = await render(undefined, NS);
  const dep = operatorDeployment(objs);
  const pod = dep.spec.template.spec;
  const c = operatorContainer(objs);

  test('resources: requests and a memory limit', () => {
    assert.ok(c.resources.requests.cpu && c.resources.requests.memory);
    assert.ok(c.resources.limits.memory);
  });
  test('probes: startup and liveness on /healthz, readiness on /readyz, on the metrics port', () => {
    assert.equal(c.startupProbe.httpGet.path, '/healthz');
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    for (const p of [c.startupProbe, c.livenessProbe, c.readinessProbe]) {
      assert.equal(p.httpGet.port, 'metrics');
      assert.ok(p.periodSeconds > 0 && p.timeoutSeconds > 0 && p.failureThreshold > 0);
    }
    assert.deepEqual(c.ports, [{ name: 'metrics', containerPort: 8080, protocol: 'TCP' }]);
    assert.ok(args(objs).includes('--metrics-port=8080'));
  });
  test('restricted security context (Pod Security Standard "restricted")', () => {
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.ok(pod.securityContext.runAsUser > 0);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.runAsNonRoot, true);
    assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
    assert.equal(pod.hostNetwork ?? false, false);
    assert.ok(pod.volumes.every((v: Obj) => !v.hostPath));
    // /tmp is the only writable path.
    assert.deepEqual(
      c.volumeMounts.map((m: Obj) => m.mountPath),
      ['/tmp'],
    );
  });
  test('one replica, leader election on, rolling update that never drops below one ready operator', () => {
    assert.equal(dep.spec.replicas, 1);
    assert.ok(args(objs).includes('--leader-elect'));
    assert.ok(args(objs).includes(`--leader-election-id=${FULL}`));
    assert.equal(dep.spec.strategy.rollingUpdate.maxUnavailable, 0);
    assert.deepEqual(
      c.env.map((e: Obj) => e.name),
      ['POD_NAME', 'POD_NAMESPACE'],
    );
    assert.equal(find(objs, 'PodDisruptionBudget').length, 0);
  });
  test('workload defaults: image follows appVersion, resources as JSON, no database Secret', () => {
    const chart = readFileSync(join(CHART, 'Chart.yaml'), 'utf8');
    const appVersion = /appVersion: "?([^"\n]+)"?/.exec(chart)?.[1];
    assert.ok(args(objs).includes(`--workload-image=ghcr.io/xianyu-platform/workload:${appVersion}`));
    assert.equal(c.image, `ghcr.io/xianyu-platform/operator:${appVersion}`);
    const res = args(objs).find((a) => a.startsWith('--workload-resources='))!;
    assert.deepEqual(JSON.parse(res.slice('--workload-resources='.length)), {
      requests: { cpu: '50m', memory: '128Mi' },
      limits: { memory: '384Mi' },
    });
    const browser = args(objs).find((a) => a.startsWith('--workload-browser-resources='))!;
    assert.deepEqual(JSON.parse(browser.slice('--workload-browser-resources='.length)), {
      requests: { cpu: '100m', memory: '512Mi' },
      limits: { memory: '1Gi' },
    });
    assert.ok(!args(objs).some((a) => a.startsWith('--default-database-secret')));
    assert.equal(find(objs, 'Secret').length, 0);
  });
  test('cluster-wide RBAC: a ClusterRole with exactly the operator rules, bound to its ServiceAccount', () => {
    const cr = one(objs, 'ClusterRole', FULL);
    assert.deepEqual(cr.rules, JSON.parse(JSON.stringify(OPERATOR_RULES)));
    const crb = one(objs, 'ClusterRoleBinding', FULL);
    assert.deepEqual(crb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: FULL });
    assert.deepEqual(crb.subjects, [{ kind: 'ServiceAccount', name: FULL, namespace: NS }]);
    assert.equal(one(objs, 'ServiceAccount', FULL).metadata.namespace, NS);
    assert.equal(pod.serviceAccountName, FULL);
    assert.equal(find(objs, 'Role').length, 0);
    assert.equal(find(objs, 'RoleBinding').length, 0);
    assert.ok(!args(objs).some((a) => a.startsWith('--watch-namespaces')));
  });
  test('the CRD: the generated one, kept on uninstall', () => {
    const crd = one(objs, 'CustomResourceDefinition', 'xianyuaccounts.xianyu.io');
    assert.equal(crd.metadata.annotations['helm.sh/resource-policy'], 'keep');
    const source = parseYaml(readFileSync(join(REPO, 'crds/xianyu.io_xianyuaccounts.yaml'), 'utf8'));
    assert.deepEqual(crd.spec, source.spec);
  });
  test('metrics Service selects the operator pods and names the port', () => {
    const svc = one(objs, 'Service', `${FULL}-metrics`);
    for (const [k, v] of Object.entries(svc.spec.selector))
      assert.equal(dep.spec.template.metadata.labels[k], v);
    assert.deepEqual(svc.spec.ports[0], {
      name: 'metrics',
      port: 8080,
      targetPort: 'metrics',
      protocol: 'TCP',
    });
  });
  test('monitoring, NetworkPolicy and PostgreSQL are off by default', () => {
    for (const kind of ['ServiceMonitor', 'PrometheusRule', 'ConfigMap', 'NetworkPolicy', 'StatefulSet'])
      assert.equal(find(objs, kind).length, 0, kind);
  });
});

describe('non-default values (everything on, namespaced)', async () => {
  const objs = await render(EVERYTHING, NS);
  const dep = operatorDeployment(objs);
  const c = operatorContainer(objs);
  const a = args(objs);

  test('namespaced RBAC: a Role per watched namespace, nothing cluster-wide, Lease Role in the release namespace', () => {
    assert.equal(find(objs, 'ClusterRole').length, 0);
    assert.equal(find(objs, 'ClusterRoleBinding').length, 0);
    const roles = find(objs, 'Role', FULL);
    assert.deepEqual(roles.map((r: Obj) => r.metadata.namespace).sort(), ['shop-a', 'shop-b']);
    for (const r of roles) assert.deepEqual(r.rules, JSON.parse(JSON.stringify(OPERATOR_RULES)));
    for (const rb of find(objs, 'RoleBinding', FULL))
      assert.deepEqual(rb.subjects, [{ kind: 'ServiceAccount', name: FULL, namespace: NS }]);
    const lease = one(objs, 'Role', `${FULL}-leader-election`);
    assert.equal(lease.metadata.namespace, NS);
    assert.deepEqual(lease.rules[0], {
      apiGroups: ['coordination.k8s.io'],
      resources: ['leases'],
      verbs: ['get', 'create', 'update'],
    });
    assert.ok(a.includes('--watch-namespaces=shop-a,shop-b'));
  });
  test('two replicas: leader election, a PodDisruptionBudget, spread over nodes', () => {
    assert.equal(dep.spec.replicas, 2);
    assert.ok(a.includes('--leader-elect'));
    assert.equal(one(objs, 'PodDisruptionBudget').spec.minAvailable, 1);
    assert.ok(dep.spec.template.spec.affinity.podAntiAffinity);
  });
  test('images, resources, probe timings and scheduling from values', () => {
    assert.equal(c.image, 'registry.example/xianyu/operator:1.2.3');
    assert.ok(a.includes(`--workload-image=registry.example/xianyu/workload@sha256:${'a'.repeat(64)}`));
    assert.ok(a.includes('--workload-image-pull-policy=Always'));
    assert.ok(a.includes('--no-service-monitor'));
    assert.ok(a.includes('--log-level=debug'));
    assert.deepEqual(c.resources.limits, { cpu: '1', memory: '512Mi' });
    assert.equal(c.livenessProbe.periodSeconds, 20);
    assert.equal(c.livenessProbe.failureThreshold, 6);
    assert.equal(dep.spec.template.spec.nodeSelector['kubernetes.io/os'], 'linux');
    assert.equal(dep.spec.template.spec.tolerations[0].key, 'dedicated');
    assert.equal(dep.spec.template.metadata.annotations['example.com/team'], 'shop');
  });
  test('evaluation PostgreSQL: StatefulSet, Service, and the database Secret in every watched namespace', () => {
    const sts = one(objs, 'StatefulSet', `${FULL}-postgresql`);
    const pg = sts.spec.template.spec;
    assert.equal(pg.securityContext.runAsNonRoot, true);
    assert.equal(pg.containers[0].securityContext.allowPrivilegeEscalation, false);
    assert.ok(pg.containers[0].readinessProbe.exec.command.includes('pg_isready'));
    assert.equal(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage, '8Gi');
    one(objs, 'Service', `${FULL}-postgresql`);
    const secrets = find(objs, 'Secret', `${FULL}-database`);
    assert.deepEqual(secrets.map((s: Obj) => s.metadata.namespace).sort(), [NS, 'shop-a', 'shop-b'].sort());
    const url = Buffer.from(secrets[0].data.url, 'base64').toString();
    assert.equal(url, `postgres://xianyu:p%40ss%2Fword@${FULL}-postgresql.${NS}.svc:5432/xianyu`);
    assert.ok(a.includes(`--default-database-secret=${FULL}-database:url`));
  });
  test('ServiceMonitor scrapes the metrics port of the metrics Service', () => {
    const sm = one(objs, 'ServiceMonitor', FULL);
    const svc = one(objs, 'Service', `${FULL}-metrics`);
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels))
      assert.equal(svc.metadata.labels[k], v, k);
    assert.equal(sm.spec.endpoints[0].port, svc.spec.ports[0].name);
    assert.equal(sm.metadata.labels.release, 'kube-prometheus-stack');
  });
  test('PrometheusRule: the promised alerts, each with a runbook line', () => {
    const rule = one(objs, 'PrometheusRule', FULL);
    const alerts = rule.spec.groups.flatMap((g: Obj) => g.rules);
    const names = alerts.map((r: Obj) => r.alert);
    for (const want of [
      'XianyuOperatorDown',
      'XianyuOperatorNoLeader',
      'XianyuAccountDisconnected',
      'XianyuLoginExpired',
      'XianyuRiskControl',
      'XianyuDeliveryFailing',
      'XianyuStockLow',
    ])
      assert.ok(names.includes(want), `${want} in ${names.join(', ')}`);
    for (const r of alerts) {
      assert.ok(r.annotations.runbook?.length > 20, `${r.alert} has a runbook line`);
      assert.ok(r.annotations.summary, `${r.alert} has a summary`);
      assert.ok(['critical', 'warning'].includes(r.labels.severity), `${r.alert} severity`);
    }
    assert.match(
      alerts.find((r: Obj) => r.alert === 'XianyuOperatorDown').expr,
      new RegExp(`job="${FULL}-metrics"`),
    );
    // Templated Prometheus annotations survive helm's own templating.
    assert.match(JSON.stringify(alerts), /\{\{ \$labels\.account \}\}/);
  });
  test('alerts and dashboard use only metric names the operator and workload export', () => {
    const rule = one(objs, 'PrometheusRule', FULL);
    const dash = one(objs, 'ConfigMap', `${FULL}-dashboard`);
    assert.equal(dash.metadata.labels.grafana_dashboard, '1');
    const json = JSON.parse(dash.data['xianyu-overview.json']);
    assert.equal(json.uid, 'xianyu-overview');
    const exprs = [
      ...rule.spec.groups.flatMap((g: Obj) => g.rules.map((r: Obj) => r.expr)),
      ...json.panels.flatMap((p: Obj) => (p.targets ?? []).map((t: Obj) => t.expr)),
      ...json.templating.list.map((v: Obj) => v.definition ?? ''),
    ].join('\n');
    const used = new Set(
      [...exprs.matchAll(/\b((?:xianyu|controller_runtime|workqueue|leader_election)_[a-z_]+)/g)].map((m) =>
        m[1]!.replace(/_(bucket|sum|count)$/, ''),
      ),
    );
    const known = exportedMetricNames();
    const unknown = [...used].filter((n) => !known.has(n));
    assert.deepEqual(unknown, [], `not exported by operator or workload: ${unknown.join(', ')}`);
    assert.ok(used.size >= 20, `dashboard and alerts cover ${used.size} metrics`);
  });
  test('NetworkPolicies: operator ingress only on metrics, egress DNS + API server; PostgreSQL only from workloads', () => {
    const np = one(objs, 'NetworkPolicy', FULL);
    assert.deepEqual(np.spec.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(np.spec.ingress[0].ports, [{ port: 'metrics', protocol: 'TCP' }]);
    assert.deepEqual(np.spec.egress[1].to, [{ ipBlock: { cidr: '10.0.0.1/32' } }]);
    const pg = one(objs, 'NetworkPolicy', `${FULL}-postgresql`);
    assert.equal(
      pg.spec.ingress[0].from[0].podSelector.matchLabels['app.kubernetes.io/name'],
      'xianyu-workload',
    );
  });
});

describe('other values', () => {
  test('crds.install=false renders no CRD; crds.keep=false drops the keep policy', async () => {
    assert.equal(
      find(await render({ crds: { install: false, keep: true } }), 'CustomResourceDefinition').length,
      0,
    );
    const crd = one(await render({ crds: { install: true, keep: false } }), 'CustomResourceDefinition');
    assert.equal(crd.metadata.annotations?.['helm.sh/resource-policy'], undefined);
  });
  test('database.url: a Secret in the release namespace and the flag', async () => {
    const objs = await render({ database: { url: 'postgres://u:p@db:5432/x', secretKey: 'dsn' } }, NS);
    const s = one(objs, 'Secret', `${FULL}-database`);
    assert.equal(Buffer.from(s.data.dsn, 'base64').toString(), 'postgres://u:p@db:5432/x');
    assert.ok(args(objs).includes(`--default-database-secret=${FULL}-database:dsn`));
  });
  test('database.secretName: the chart creates nothing and passes the name', async () => {
    const objs = await render({ database: { secretName: 'pg', url: 'postgres://ignored' } }, NS);
    assert.equal(find(objs, 'Secret').length, 0);
    assert.ok(args(objs).includes('--default-database-secret=pg:url'));
  });
  test('leader election off with one replica; the release namespace among watched ones needs no extra Role', async () => {
    const off = await render({ leaderElection: { enabled: false } }, NS);
    assert.ok(!args(off).includes('--leader-elect'));
    const inNs = await render({ watchNamespaces: [NS] }, NS);
    assert.equal(find(inNs, 'Role', `${FULL}-leader-election`).length, 0);
    assert.equal(find(inNs, 'Role', FULL).length, 1);
  });
  // NOTES.txt is rendered by helm install (test/chart/install.test.ts checks the output).
});

function exportedMetricNames(): Set<string> {
  const names = new Set<string>();
  for (const file of ['operator/src/metrics/registry.ts', 'workload/src/metrics.ts']) {
    for (const m of readFileSync(join(REPO, file), 'utf8').matchAll(/name: '([a-z_:]+)'/g)) names.add(m[1]!);
  }
  return names;
}
