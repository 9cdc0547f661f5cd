import { parseArgs } from 'node:util';
import type { SecretKeyRef } from './api/schema.js';
import type { Resources } from './manifests/children.js';
import { DEFAULT_OPTIONS, type OperatorOptions } from './operator.js';

// Command-line flags, each with an environment variable fallback (flags win).

export const USAGE = `xianyu-operator: reconciles XianyuAccount resources (xianyu.io/v1alpha1) into reply workload pods.

Usage: xianyu-operator [flags]

Flags (environment variable in brackets):
  --kubeconfig FILE                  kubeconfig [KUBECONFIG]; default ~/.kube/config or in-cluster
  --watch-namespaces A,B             namespaces to watch; empty = all [WATCH_NAMESPACES]
  --metrics-port N                   port of /metrics, /healthz, /readyz (default 8080; 0 = any) [METRICS_PORT]
  --metrics-host HOST                address to listen on (default 0.0.0.0) [METRICS_HOST]
  --concurrency N                    concurrent reconciles (default 4) [MAX_CONCURRENT_RECONCILES]
  --leader-elect                     campaign for a Lease before reconciling [LEADER_ELECT=true]
  --leader-election-namespace NS     namespace of the Lease (default: POD_NAMESPACE or default) [LEADER_ELECTION_NAMESPACE]
  --leader-election-id NAME          name of the Lease (default xianyu-operator) [LEADER_ELECTION_ID]
  --identity ID                      leader identity (default: POD_NAME or host_pid) [POD_NAME]
  --lease-duration SECONDS           (default 15) --renew-deadline SECONDS (default 10) --retry-period SECONDS (default 2)
  --resync-period SECONDS            re-check every account this often (default 600) [RESYNC_PERIOD]
  --watch-idle-timeout SECONDS       restart a watch silent this long (default 300) [WATCH_IDLE_TIMEOUT]
  --workload-image IMAGE             default workload image [WORKLOAD_IMAGE]
  --workload-image-pull-policy P     Always | IfNotPresent | Never (default IfNotPresent) [WORKLOAD_IMAGE_PULL_POLICY]
  --workload-resources JSON          default resources, e.g. '{"requests":{"cpu":"50m"}}' [WORKLOAD_RESOURCES]
  --workload-browser-resources JSON  default resources of accounts with workload.browser.enabled [WORKLOAD_BROWSER_RESOURCES]
  --default-database-secret NAME[:KEY]  Secret (in each account's namespace) with a PostgreSQL URL
                                     for accounts without spec.database (key default url) [DEFAULT_DATABASE_SECRET]
  --no-service-monitor               never create ServiceMonitors (default: when the CRD exists)
  --log-level LEVEL                  fatal|error|warn|info|debug|trace (default info) [LOG_LEVEL]
  -h, --help                         this help
`;

export interface ParsedOptions {
  help: boolean;
  logLevel: string;
  options: OperatorOptions;
}

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: not a non-negative number: ${v}`);
  return n;
}

function bool(v: string | boolean | undefined): boolean | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v === 'boolean') return v;
  return ['1', 'true', 'yes', 'on'].includes(v.toLowerCase());
}

export function parseSecretRef(v: string): SecretKeyRef {
  const [name, key] = v.split(':');
  if (!name) throw new Error(`--default-database-secret: expected NAME[:KEY], got ${v}`);
  return { name, key: key || 'url' };
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): ParsedOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      kubeconfig: { type: 'string' },
      'watch-namespaces': { type: 'string' },
      'metrics-port': { type: 'string' },
      'metrics-host': { type: 'string' },
      concurrency: { type: 'string' },
      'leader-elect': { type: 'boolean' },
      'leader-election-namespace': { type: 'string' },
      'leader-election-id': { type: 'string' },
      identity: { type: 'string' },
      'lease-duration': { type: 'string' },
      'renew-deadline': { type: 'string' },
      'retry-period': { type: 'string' },
      'resync-period': { type: 'string' },
      'watch-idle-timeout': { type: 'string' },
      'workload-image': { type: 'string' },
      'workload-image-pull-policy': { type: 'string' },
      'workload-resources': { type: 'string' },
      'workload-browser-resources': { type: 'string' },
      'default-database-secret': { type: 'string' },
      'no-service-monitor': { type: 'boolean' },
      'log-level': { type: 'string' },
    },
  });
  const d = DEFAULT_OPTIONS;
  const sec = (flag: string | undefined, envName: string, def: number) =>
    (num(flag ?? env[envName], envName) ?? def / 1000) * 1000;
  const nsList = (values['watch-namespaces'] ?? env.WATCH_NAMESPACES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const pullPolicy =
    values['workload-image-pull-policy'] ?? env.WORKLOAD_IMAGE_PULL_POLICY ?? d.imagePullPolicy;
  if (!['Always', 'IfNotPresent', 'Never'].includes(pullPolicy)) {
    throw new Error(
      `--workload-image-pull-policy: expected Always, IfNotPresent or Never, got ${pullPolicy}`,
    );
  }
  const resourcesFlag = (flag: string, text: string | undefined, fallback: Resources): Resources => {
    if (!text) return fallback;
    try {
      return JSON.parse(text) as Resources;
    } catch {
      throw new Error(`--${flag}: not valid JSON`);
    }
  };
  const resources = resourcesFlag(
    'workload-resources',
    values['workload-resources'] ?? env.WORKLOAD_RESOURCES,
    d.workloadResources,
  );
  const browserResources = resourcesFlag(
    'workload-browser-resources',
    values['workload-browser-resources'] ?? env.WORKLOAD_BROWSER_RESOURCES,
    d.workloadBrowserResources,
  );
  const dbSecret = values['default-database-secret'] ?? env.DEFAULT_DATABASE_SECRET;
  const options: OperatorOptions = {
    ...d,
    kubeconfig: values.kubeconfig ?? (env.KUBECONFIG || undefined),
    watchNamespaces: nsList,
    metricsPort: num(values['metrics-port'] ?? env.METRICS_PORT, 'metrics-port') ?? d.metricsPort,
    metricsHost: values['metrics-host'] ?? env.METRICS_HOST ?? d.metricsHost,
    concurrency: Math.max(
      1,
      num(values.concurrency ?? env.MAX_CONCURRENT_RECONCILES, 'concurrency') ?? d.concurrency,
    ),
    leaderElect: bool(values['leader-elect']) ?? bool(env.LEADER_ELECT) ?? d.leaderElect,
    leaderElectionNamespace:
      values['leader-election-namespace'] ??
      env.LEADER_ELECTION_NAMESPACE ??
      env.POD_NAMESPACE ??
      d.leaderElectionNamespace,
    leaderElectionId: values['leader-election-id'] ?? env.LEADER_ELECTION_ID ?? d.leaderElectionId,
    identity: values.identity ?? env.POD_NAME ?? d.identity,
    leaseDurationMs: sec(values['lease-duration'], 'LEASE_DURATION', d.leaseDurationMs),
    renewDeadlineMs: sec(values['renew-deadline'], 'RENEW_DEADLINE', d.renewDeadlineMs),
    retryPeriodMs: sec(values['retry-period'], 'RETRY_PERIOD', d.retryPeriodMs),
    resyncPeriodMs: sec(values['resync-period'], 'RESYNC_PERIOD', d.resyncPeriodMs),
    watchIdleTimeoutMs: sec(values['watch-idle-timeout'], 'WATCH_IDLE_TIMEOUT', d.watchIdleTimeoutMs),
    workloadImage: values['workload-image'] ?? env.WORKLOAD_IMAGE ?? d.workloadImage,
    imagePullPolicy: pullPolicy as OperatorOptions['imagePullPolicy'],
    workloadResources: resources,
    workloadBrowserResources: browserResources,
    defaultDatabaseSecret: dbSecret ? parseSecretRef(dbSecret) : undefined,
    serviceMonitor: !values['no-service-monitor'],
  };
  if (options.renewDeadlineMs >= options.leaseDurationMs)
    throw new Error('--renew-deadline must be shorter than --lease-duration');
  return { help: values.help === true, logLevel: values['log-level'] ?? env.LOG_LEVEL ?? 'info', options };
}
