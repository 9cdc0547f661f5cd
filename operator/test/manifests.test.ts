import assert from 'node:assert/strict';
import { test } from 'node:test';
// The workload's own schema (a test may cross the workspace boundary; the operator may not).
import { configSchema } from '../../workload/src/config/schema.js';
import { XianyuAccountSpec, type XianyuAccountSpecInput } from '../src/api/schema.js';
import {
  CONFIG_HASH_ANNOTATION,
  DEFAULT_MANIFEST_OPTIONS,
  type DesiredInput,
  deployment,
  desiredChildren,
  type KubeObject,
  type ManifestOptions,
  referencedSecrets,
  role,
  roleBinding,
} from '../src/manifests/children.js';
import { childName } from '../src/manifests/names.js';
import {
  CONFIG_PATH,
  renderConfigFile,
  renderWorkloadConfig,
  workloadConfigProblems,
} from '../src/manifests/workload-config.js';

const account = { name: 'shop-a', namespace: 'sellers', uid: '1111-2222' };
const opts: ManifestOptions = {
  ...DEFAULT_MANIFEST_OPTIONS,
  workloadImage: 'registry.local/xianyu-workload:1',
};

function input(spec: XianyuAccountSpecInput, extra: Partial<DesiredInput> = {}): DesiredInput {
  return {
    account,
    spec: XianyuAccountSpec.parse(spec),
    paused: false,
    secretVersions: { cookies: '10', ai: '11', db: '12' },
    ...extra,
  };
}

const minimal: XianyuAccountSpecInput = { credentials: { cookiesSecretRef: { name: 'cookies' } } };
const full: XianyuAccountSpecInput = {
  accountId: 'shop-a-main',
  credentials: { cookiesSecretRef: { name: 'cookies', key: 'cookie-string' } },
  endpoints: { api: 'http://sim:8080', im: 'ws://sim:8080/ws', passport: 'http://sim:8080' },
  reply: {
    default: { text: '您好 {buyer_name}', oncePerConversation: true },
    itemDefaults: [{ itemId: '123', text: '这个还在' }],
    keywords: [
      { match: ['发货'], reply: '自动发货' },
      { match: ['^价格?$'], mode: 'regex', reply: '看标价', itemIds: ['123'], name: 'price' },
    ],
    ai: {
      enabled: true,
      scope: 'bargaining',
      baseURL: 'http://ai.local/v1',
      model: 'qwen',
      apiKeySecretRef: { name: 'ai' },
      bargaining: { maxDiscountPercent: 5, maxRounds: 2 },
    },
    manualTakeoverMinutes: 30,
    delay: { minMs: 100, maxMs: 500 },
    debounceMs: 0,
    rateLimit: { perMinute: 20 },
  },
  session: { heartbeatIntervalMs: 10_000, riskControlBackoffMs: 120_000 },
  database: { urlSecretRef: { name: 'db' } },
  log: { level: 'debug' },
  workload: {
    resources: { requests: { cpu: '0.1' }, limits: { memory: '512Mi' } },
    nodeSelector: { pool: 'sellers' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'xianyu', effect: 'NoSchedule' }],
  },
};

test('the rendered config is valid for the workload and holds no secret values', () => {
  for (const spec of [minimal, full]) {
    const rendered = renderWorkloadConfig(account, XianyuAccountSpec.parse(spec));
    const parsed = configSchema.safeParse(rendered);
    assert.equal(parsed.success, true, JSON.stringify(parsed.error?.issues));
  }
  const cfg = configSchema.parse(renderWorkloadConfig(account, XianyuAccountSpec.parse(full)));
  assert.equal(cfg.account.id, 'shop-a-main');
  assert.equal(cfg.account.cookiesFile, '/var/run/secrets/xianyu/cookies/cookies');
  assert.equal(cfg.account.cookies, undefined);
  assert.equal(cfg.reply.ai.apiKey, undefined);
  assert.equal(cfg.reply.ai.apiKeyFile, '/var/run/secrets/xianyu/ai/apiKey');
  assert.equal(cfg.reply.ai.scope, 'bargaining');
  assert.equal(cfg.reply.ai.bargaining.maxDiscountPercent, 5);
  assert.equal(cfg.reply.keywords[1]?.mode, 'regex');
  assert.deepEqual(cfg.reply.keywords[1]?.itemIds, ['123']);
  assert.equal(cfg.reply.rateLimit.perMinute, 20);
  assert.equal(cfg.endpoints.api, 'http://sim:8080');
  assert.equal(cfg.session.riskControlBackoffMs, 120_000);
  assert.equal(cfg.server.port, 8080);
  assert.equal(cfg.log.level, 'debug');
  assert.equal(cfg.database.url, undefined, 'the database URL comes from the DATABASE_URL env var');
  const minimalCfg = configSchema.parse(renderWorkloadConfig(account, XianyuAccountSpec.parse(minimal)));
  assert.equal(minimalCfg.account.id, 'sellers/shop-a');
  assert.equal(minimalCfg.reply.ai.enabled, false);
});

test('the config file text parses as YAML and says where it comes from', async () => {
  const { parse } = await import('yaml');
  const text = renderConfigFile(account, XianyuAccountSpec.parse(full));
  assert.match(text, /^# Rendered by xianyu-operator from XianyuAccount sellers\/shop-a/);
  assert.deepEqual(parse(text), renderWorkloadConfig(account, XianyuAccountSpec.parse(full)));
});

function find(children: KubeObject[], kind: string): KubeObject {
  const c = children.find((o) => o.kind === kind);
  assert.ok(c, `no ${kind}`);
  return c;
}

// biome-ignore lint/suspicious/noExplicitAny: tests poke into manifests
type Any = any;

test('every child is named xianyu-<account>, labelled, and controlled by the account', () => {
  const children = desiredChildren(input(full), opts);
  assert.deepEqual(
    children.map((c) => c.kind),
    ['ServiceAccount', 'Role', 'RoleBinding', 'ConfigMap', 'Service', 'Deployment'],
  );
  for (const c of children) {
    const m = c.metadata as Any;
    assert.equal(m.name, 'xianyu-shop-a');
    assert.equal(m.namespace, 'sellers');
    assert.equal(m.labels['app.kubernetes.io/managed-by'], 'xianyu-operator');
    assert.equal(m.labels['xianyu.io/account'], 'shop-a');
    assert.deepEqual(m.ownerReferences, [
      {
        apiVersion: 'xianyu.io/v1alpha1',
        kind: 'XianyuAccount',
        name: 'shop-a',
        uid: '1111-2222',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  }
  const withMonitor = desiredChildren(input(full), { ...opts, serviceMonitor: true });
  const sm = find(withMonitor, 'ServiceMonitor') as Any;
  assert.equal(sm.apiVersion, 'monitoring.coreos.com/v1');
  assert.deepEqual(sm.spec.endpoints, [{ port: 'http', path: '/metrics', interval: '30s' }]);
});

test('the Deployment: one replica, Recreate, probes, restricted security, Secret mounts, resources', () => {
  const d = deployment(input(full), opts) as Any;
  assert.equal(d.spec.replicas, 1);
  assert.deepEqual(d.spec.strategy, { type: 'Recreate' });
  assert.deepEqual(d.spec.selector.matchLabels, d.spec.template.metadata.labels);
  const pod = d.spec.template.spec;
  assert.equal(pod.serviceAccountName, childName('shop-a'));
  assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.deepEqual(pod.nodeSelector, { pool: 'sellers' });
  assert.equal(pod.tolerations.length, 1);
  const c = pod.containers[0];
  assert.equal(c.image, 'registry.local/xianyu-workload:1');
  assert.deepEqual(c.args, ['--config', CONFIG_PATH]);
  assert.deepEqual(c.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  });
  assert.equal(c.livenessProbe.httpGet.path, '/health');
  assert.equal(c.readinessProbe.httpGet.path, '/ready');
  assert.deepEqual(c.resources, { requests: { cpu: '0.1', memory: '128Mi' }, limits: { memory: '512Mi' } });
  const db = c.env.find((e: Any) => e.name === 'DATABASE_URL');
  assert.deepEqual(db.valueFrom.secretKeyRef, { name: 'db', key: 'url' });
  const vols = Object.fromEntries(pod.volumes.map((v: Any) => [v.name, v]));
  assert.deepEqual(vols.cookies.secret.items, [{ key: 'cookie-string', path: 'cookies' }]);
  assert.equal(vols.cookies.secret.secretName, 'cookies');
  assert.equal(vols['ai-key'].secret.secretName, 'ai');
  assert.equal(vols.config.configMap.name, 'xianyu-shop-a');
  for (const m of c.volumeMounts) {
    if (['config', 'cookies', 'ai-key'].includes(m.name)) assert.equal(m.readOnly, true, m.name);
  }
  // Without optional parts there are no empty lists (the API server would drop them and every
  // comparison would see a difference).
  const plain = deployment(input(minimal), opts) as Any;
  const pc = plain.spec.template.spec.containers[0];
  assert.equal(plain.spec.template.spec.tolerations, undefined);
  assert.equal(
    pc.env.find((e: Any) => e.name === 'DATABASE_URL'),
    undefined,
  );
  assert.deepEqual(pc.resources, DEFAULT_MANIFEST_OPTIONS.resources);
});

test('paused scales to zero; the config hash follows the rendered config and the Secret versions', () => {
  const hash = (i: DesiredInput) =>
    (deployment(i, opts) as Any).spec.template.metadata.annotations[CONFIG_HASH_ANNOTATION];
  assert.equal((deployment(input(full, { paused: true }), opts) as Any).spec.replicas, 0);
  const base = hash(input(full));
  assert.match(base, /^[0-9a-f]{16}$/);
  assert.equal(hash(input(full)), base, 'deterministic');
  assert.equal(hash(input(full, { paused: true })), base, 'pausing does not change the config');
  assert.notEqual(hash(input({ ...full, log: { level: 'warn' } })), base);
  assert.notEqual(hash(input(full, { secretVersions: { cookies: '99', ai: '11', db: '12' } })), base);
  // The pod template does not change for Secret versions of Secrets the account does not use.
  assert.equal(
    hash(input(minimal, { secretVersions: { cookies: '10', other: '1' } })),
    hash(input(minimal, { secretVersions: { cookies: '10', other: '2' } })),
  );
});

test('the Role lets the workload patch only its own account status', () => {
  const r = role(input(minimal)) as Any;
  assert.deepEqual(r.rules, [
    {
      apiGroups: ['xianyu.io'],
      resources: ['xianyuaccounts/status'],
      resourceNames: ['shop-a'],
      verbs: ['get', 'patch'],
    },
    { apiGroups: ['xianyu.io'], resources: ['xianyuaccounts'], resourceNames: ['shop-a'], verbs: ['get'] },
  ]);
  const rb = roleBinding(input(minimal)) as Any;
  assert.deepEqual(rb.subjects, [{ kind: 'ServiceAccount', name: 'xianyu-shop-a', namespace: 'sellers' }]);
  assert.equal(rb.roleRef.name, 'xianyu-shop-a');
});

test('referenced Secrets list every Secret the pod needs with the spec field that names it', () => {
  const refs = referencedSecrets(
    XianyuAccountSpec.parse({
      ...full,
      database: undefined,
      delivery: {
        pools: [{ name: 'vip', secretRef: { name: 'pool' } }],
        rules: [{ name: 'r', itemIds: ['1'], source: { type: 'pool', pool: 'vip' } }],
      },
    }),
    { defaultDatabaseSecret: { name: 'shared-db', key: 'url' } },
  );
  assert.deepEqual(
    refs.map((r) => `${r.field}=${r.ref.name}/${r.ref.key}`),
    [
      'spec.credentials.cookiesSecretRef=cookies/cookie-string',
      'spec.reply.ai.apiKeySecretRef=ai/apiKey',
      '--default-database-secret=shared-db/url',
      'spec.delivery.pools[0].secretRef=pool/codes',
    ],
  );
});

const withDelivery: XianyuAccountSpecInput = {
  ...minimal,
  delivery: {
    unitIntervalMs: 0,
    orderDetails: { source: 'http' },
    pools: [
      { name: 'vip', secretRef: { name: 'vip-codes' }, lowStock: 2 },
      { name: '月卡 codes', secretRef: { name: 'month', key: 'list.txt' } },
    ],
    rules: [
      {
        name: 'vip',
        itemIds: ['123'],
        spec: { name: '版本', value: '标准版' },
        source: { type: 'pool', pool: 'vip' },
        message: '激活码 {code}',
        confirmShipment: false,
      },
      { name: 'month', itemIds: ['123'], source: { type: 'pool', pool: '月卡 codes' } },
      {
        name: 'api',
        keywords: ['会员'],
        source: { type: 'http', url: 'http://goods.local/{order_id}', method: 'POST', retries: 1 },
      },
    ],
  },
};

test('delivery: rules and pools become the workload delivery config; each pool Secret is a mounted file', () => {
  const cfg = configSchema.parse(renderWorkloadConfig(account, XianyuAccountSpec.parse(withDelivery)));
  assert.equal(cfg.delivery.unitIntervalMs, 0);
  assert.equal(cfg.delivery.orderDetails.source, 'http');
  assert.equal(cfg.delivery.confirmShipment, true, 'workload default');
  assert.deepEqual(cfg.delivery.pools, {
    vip: { file: '/var/run/secrets/xianyu/pools/0/codes', lowStock: 2 },
    '月卡 codes': { file: '/var/run/secrets/xianyu/pools/1/codes', lowStock: 5 },
  });
  assert.deepEqual(
    cfg.delivery.rules.map((r) => [r.name, r.source.type, r.message]),
    [
      ['vip', 'pool', '激活码 {code}'],
      ['month', 'pool', '{code}'],
      ['api', 'http', '{code}'],
    ],
  );
  assert.deepEqual(cfg.delivery.rules[0]?.spec, { name: '版本', value: '标准版' });
  assert.equal(cfg.delivery.rules[0]?.confirmShipment, false);
  const http = cfg.delivery.rules[2]?.source;
  assert.ok(http?.type === 'http');
  assert.equal(http.method, 'POST');
  assert.equal(http.retries, 1);

  const pod = (deployment(input(withDelivery), opts) as Any).spec.template.spec;
  const mounts = pod.containers[0].volumeMounts.filter((m: Any) => String(m.name).startsWith('pool-'));
  assert.deepEqual(mounts, [
    { name: 'pool-0', mountPath: '/var/run/secrets/xianyu/pools/0', readOnly: true },
    { name: 'pool-1', mountPath: '/var/run/secrets/xianyu/pools/1', readOnly: true },
  ]);
  assert.ok(
    mounts.every((m: Any) => m.subPath === undefined),
    'no subPath: the file follows the Secret',
  );
  const vols = pod.volumes.filter((v: Any) => String(v.name).startsWith('pool-'));
  assert.deepEqual(
    vols.map((v: Any) => [v.secret.secretName, v.secret.items]),
    [
      ['vip-codes', [{ key: 'codes', path: 'codes' }]],
      ['month', [{ key: 'list.txt', path: 'codes' }]],
    ],
  );
});

test('delivery: a code pool Secret changing does not restart the pod (the workload re-imports the file)', () => {
  const hash = (versions: Record<string, string>) =>
    (deployment(input(withDelivery, { secretVersions: versions }), opts) as Any).spec.template.metadata
      .annotations[CONFIG_HASH_ANNOTATION];
  const base = hash({ cookies: '1', 'vip-codes': '1', month: '1' });
  assert.equal(hash({ cookies: '1', 'vip-codes': '2', month: '7' }), base);
  assert.notEqual(hash({ cookies: '2', 'vip-codes': '1', month: '1' }), base);
});

test('delivery: rules the workload would refuse (same priority) are found by its own schema, named by spec path', () => {
  const spec = XianyuAccountSpec.parse({
    ...minimal,
    delivery: {
      pools: [{ name: 'p', secretRef: { name: 's' } }],
      rules: [
        { name: 'a', itemIds: ['1'], source: { type: 'pool', pool: 'p' } },
        { name: 'b', itemIds: ['1'], source: { type: 'text', text: 'x' } },
      ],
    },
  });
  assert.equal(
    workloadConfigProblems(account, spec),
    'spec.delivery.rules[1]: rules "a" and "b" both claim item 1 at priority item',
  );
  assert.equal(workloadConfigProblems(account, XianyuAccountSpec.parse(withDelivery)), undefined);
  assert.equal(workloadConfigProblems(account, XianyuAccountSpec.parse(full)), undefined);
});
