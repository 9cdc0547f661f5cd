import { GROUP, PLURAL } from '../api/group.js';
import type { SecretKeyRef, XianyuAccountSpec } from '../api/schema.js';
import { contentHash } from './hash.js';
import { type AccountRef, childMetadata, childName, selectorLabels } from './names.js';
import {
  AI_KEY_DIR,
  CONFIG_DIR,
  CONFIG_KEY,
  CONFIG_PATH,
  COOKIES_DIR,
  DATA_DIR,
  POOL_FILE_NAME,
  poolDir,
  renderConfigFile,
  WORKLOAD_PORT,
} from './workload-config.js';

// account → its children, as pure functions. Objects carry only the fields the operator owns
// (server-side apply merges the rest); empty lists are left out because the API server drops them.

export const CONFIG_HASH_ANNOTATION = 'xianyu.io/config-hash';

export interface Resources {
  requests?: Record<string, string | number>;
  limits?: Record<string, string | number>;
}

/** Operator-wide settings that shape every account's children. */
export interface ManifestOptions {
  workloadImage: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  resources: Resources;
  /** Extra resources when the headless browser is enabled. */
  browserResources: Resources;
  /** Operator-wide database Secret (looked up in the account's namespace) when the spec names none. */
  defaultDatabaseSecret?: SecretKeyRef;
  /** True when the monitoring.coreos.com ServiceMonitor CRD exists. */
  serviceMonitor: boolean;
}

export const DEFAULT_MANIFEST_OPTIONS: ManifestOptions = {
  workloadImage: 'ghcr.io/xianyu-platform/workload:latest',
  imagePullPolicy: 'IfNotPresent',
  resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '384Mi' } },
  browserResources: { requests: { cpu: '100m', memory: '512Mi' }, limits: { memory: '1Gi' } },
  serviceMonitor: false,
};

export interface DesiredInput {
  account: AccountRef;
  spec: XianyuAccountSpec;
  /** spec.paused or the xianyu.io/paused annotation. */
  paused: boolean;
  /** resourceVersion of every referenced Secret (part of the config hash, so a Secret change rolls the pod). */
  secretVersions: Record<string, string>;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** The Secrets an account needs, with the key each must hold. */
export function referencedSecrets(
  spec: XianyuAccountSpec,
  opts: Pick<ManifestOptions, 'defaultDatabaseSecret'>,
) {
  // inPlace: mounted as a file the workload watches (a code pool): a change needs no restart.
  const refs: { field: string; ref: SecretKeyRef; inPlace?: boolean }[] = [
    { field: 'spec.credentials.cookiesSecretRef', ref: spec.credentials.cookiesSecretRef },
  ];
  const ai = spec.reply?.ai?.apiKeySecretRef;
  if (ai) refs.push({ field: 'spec.reply.ai.apiKeySecretRef', ref: ai });
  const db = databaseSecret(spec, opts);
  if (db) refs.push({ field: db.field, ref: db.ref });
  spec.delivery?.pools?.forEach((pool, i) => {
    refs.push({ field: `spec.delivery.pools[${i}].secretRef`, ref: pool.secretRef, inPlace: true });
  });
  return refs;
}

function databaseSecret(spec: XianyuAccountSpec, opts: Pick<ManifestOptions, 'defaultDatabaseSecret'>) {
  if (spec.database?.urlSecretRef)
    return { field: 'spec.database.urlSecretRef', ref: spec.database.urlSecretRef };
  if (opts.defaultDatabaseSecret)
    return { field: '--default-database-secret', ref: opts.defaultDatabaseSecret };
  return undefined;
}

export function configMap(input: DesiredInput): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: childMetadata(input.account),
    data: { [CONFIG_KEY]: renderConfigFile(input.account, input.spec) },
  };
}

/** Hash of everything the pod reads at start: the config file and the Secrets it mounts. */
export function configHash(input: DesiredInput, opts: ManifestOptions): string {
  return contentHash({
    config: renderConfigFile(input.account, input.spec),
    secrets: referencedSecrets(input.spec, opts)
      .filter((s) => !s.inPlace)
      .map(({ ref }) => ({ ...ref, rv: input.secretVersions[ref.name] })),
  });
}

function mergeResources(base: Resources, override: Resources | undefined): Resources {
  const requests = { ...base.requests, ...override?.requests };
  const limits = { ...base.limits, ...override?.limits };
  return {
    ...(Object.keys(requests).length ? { requests } : {}),
    ...(Object.keys(limits).length ? { limits } : {}),
  };
}

export function deployment(input: DesiredInput, opts: ManifestOptions): KubeObject {
  const { account, spec } = input;
  const name = childName(account.name);
  const w = spec.workload;
  const browser = w?.browser?.enabled === true;
  const db = databaseSecret(spec, opts);
  const aiKey = spec.reply?.ai?.apiKeySecretRef;
  const cookies = spec.credentials.cookiesSecretRef;

  const env: Record<string, unknown>[] = [
    { name: 'XIANYU_ACCOUNT_NAME', value: account.name },
    { name: 'XIANYU_ACCOUNT_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  ];
  if (db)
    env.push({ name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: db.ref.name, key: db.ref.key } } });
  if (browser) env.push({ name: 'XIANYU_BROWSER', value: 'true' });

  const volumeMounts: Record<string, unknown>[] = [
    { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
    { name: 'cookies', mountPath: COOKIES_DIR, readOnly: true },
    { name: 'data', mountPath: DATA_DIR },
    { name: 'tmp', mountPath: '/tmp' },
  ];
  const volumes: Record<string, unknown>[] = [
    { name: 'config', configMap: { name, items: [{ key: CONFIG_KEY, path: CONFIG_KEY }] } },
    {
      name: 'cookies',
      secret: {
        secretName: cookies.name,
        items: [{ key: cookies.key, path: 'cookies' }],
        defaultMode: 0o440,
      },
    },
    { name: 'data', emptyDir: {} },
    { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
  ];
  if (aiKey) {
    volumeMounts.push({ name: 'ai-key', mountPath: AI_KEY_DIR, readOnly: true });
    volumes.push({
      name: 'ai-key',
      secret: { secretName: aiKey.name, items: [{ key: aiKey.key, path: 'apiKey' }], defaultMode: 0o440 },
    });
  }
  spec.delivery?.pools?.forEach((pool, i) => {
    // A whole-volume mount (not subPath): the kubelet updates the file when the Secret changes.
    volumeMounts.push({ name: `pool-${i}`, mountPath: poolDir(i), readOnly: true });
    volumes.push({
      name: `pool-${i}`,
      secret: {
        secretName: pool.secretRef.name,
        items: [{ key: pool.secretRef.key, path: POOL_FILE_NAME }],
        defaultMode: 0o440,
      },
    });
  });
  if (browser) {
    volumeMounts.push({ name: 'dshm', mountPath: '/dev/shm' });
    volumes.push({ name: 'dshm', emptyDir: { medium: 'Memory', sizeLimit: '256Mi' } });
  }

  const container = {
    name: 'workload',
    image: w?.image ?? opts.workloadImage,
    imagePullPolicy: w?.imagePullPolicy ?? opts.imagePullPolicy,
    args: ['--config', CONFIG_PATH],
    ports: [{ name: 'http', containerPort: WORKLOAD_PORT, protocol: 'TCP' }],
    env,
    resources: mergeResources(browser ? opts.browserResources : opts.resources, w?.resources),
    livenessProbe: {
      httpGet: { path: '/health', port: 'http' },
      initialDelaySeconds: 10,
      periodSeconds: 10,
      timeoutSeconds: 3,
      failureThreshold: 3,
    },
    readinessProbe: {
      httpGet: { path: '/ready', port: 'http' },
      periodSeconds: 5,
      timeoutSeconds: 3,
      failureThreshold: 3,
    },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts,
  };

  const podSpec: Record<string, unknown> = {
    serviceAccountName: name,
    automountServiceAccountToken: true,
    enableServiceLinks: false,
    terminationGracePeriodSeconds: 30,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      fsGroup: 10001,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [container],
    volumes,
  };
  if (w?.nodeSelector && Object.keys(w.nodeSelector).length) podSpec.nodeSelector = w.nodeSelector;
  if (w?.tolerations?.length) podSpec.tolerations = w.tolerations;

  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: childMetadata(account),
    spec: {
      // Never two sessions for one account: one replica, and Recreate stops it before the next starts.
      replicas: input.paused ? 0 : 1,
      revisionHistoryLimit: 3,
      strategy: { type: 'Recreate' },
      selector: { matchLabels: selectorLabels(account.name) },
      template: {
        metadata: {
          labels: selectorLabels(account.name),
          annotations: { [CONFIG_HASH_ANNOTATION]: configHash(input, opts) },
        },
        spec: podSpec,
      },
    },
  };
}

export function service(input: DesiredInput): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMetadata(input.account),
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(input.account.name),
      ports: [{ name: 'http', port: WORKLOAD_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

export function serviceAccount(input: DesiredInput): KubeObject {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: childMetadata(input.account) };
}

/** The workload may read its own account and patch its status, nothing else (resourceNames). */
export function role(input: DesiredInput): KubeObject {
  const names = [input.account.name];
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: childMetadata(input.account),
    rules: [
      { apiGroups: [GROUP], resources: [`${PLURAL}/status`], resourceNames: names, verbs: ['get', 'patch'] },
      { apiGroups: [GROUP], resources: [PLURAL], resourceNames: names, verbs: ['get'] },
    ],
  };
}

export function roleBinding(input: DesiredInput): KubeObject {
  const name = childName(input.account.name);
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: childMetadata(input.account),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ kind: 'ServiceAccount', name, namespace: input.account.namespace }],
  };
}

export function serviceMonitor(input: DesiredInput): KubeObject {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: childMetadata(input.account),
    spec: {
      selector: { matchLabels: selectorLabels(input.account.name) },
      endpoints: [{ port: 'http', path: '/metrics', interval: '30s' }],
    },
  };
}

/** Every child, in apply order (the pod's ServiceAccount, Role and ConfigMap before the Deployment). */
export function desiredChildren(input: DesiredInput, opts: ManifestOptions): KubeObject[] {
  const children = [
    serviceAccount(input),
    role(input),
    roleBinding(input),
    configMap(input),
    service(input),
    deployment(input, opts),
  ];
  if (opts.serviceMonitor) children.push(serviceMonitor(input));
  return children;
}
