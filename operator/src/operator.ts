import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { PLURAL } from './api/group.js';
import type { SecretKeyRef } from './api/schema.js';
import { PHASES } from './api/schema.js';
import { startProbeServer } from './http/server.js';
import { ApiError, KubeClient } from './kube/client.js';
import { loadConnection } from './kube/config.js';
import { Informer, type KObject } from './kube/informer.js';
import { CHILD_KINDS, RESOURCES, resourceByKind } from './kube/resources.js';
import { LeaderElector } from './leader/lease.js';
import { DEFAULT_MANIFEST_OPTIONS, type ManifestOptions, type Resources } from './manifests/children.js';
import { CHILD_SELECTOR } from './manifests/names.js';
import { createMetrics, type Metrics } from './metrics/registry.js';
import { RateLimiter } from './queue/rate-limiter.js';
import { runWorkers, type Workers } from './queue/workers.js';
import { WorkQueue } from './queue/workqueue.js';
import { EventRecorder } from './reconcile/events.js';
import {
  type AccountObject,
  AccountReconciler,
  type Caches,
  type SecretView,
  secretView,
} from './reconcile/reconciler.js';

// Wires the parts together: informers → work queue → reconciler, leader election, probes.

export const CONTROLLER_NAME = 'xianyuaccount';

export interface OperatorOptions {
  /** Kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account. */
  kubeconfig?: string;
  /** Namespaces to watch; empty: all. */
  watchNamespaces: string[];
  metricsPort: number;
  metricsHost: string;
  concurrency: number;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  resyncPeriodMs: number;
  watchIdleTimeoutMs: number;
  watchStaleAfterMs: number;
  workloadImage: string;
  imagePullPolicy: ManifestOptions['imagePullPolicy'];
  workloadResources: Resources;
  workloadBrowserResources: Resources;
  defaultDatabaseSecret?: SecretKeyRef;
  /** Detect the ServiceMonitor CRD (true) or force it off (false). */
  serviceMonitor: boolean;
}

export const DEFAULT_OPTIONS: OperatorOptions = {
  watchNamespaces: [],
  metricsPort: 8080,
  metricsHost: '0.0.0.0',
  concurrency: 4,
  leaderElect: false,
  leaderElectionNamespace: 'default',
  leaderElectionId: 'xianyu-operator',
  identity: `${hostname()}_${process.pid}`,
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
  resyncPeriodMs: 10 * 60_000,
  watchIdleTimeoutMs: 5 * 60_000,
  watchStaleAfterMs: 60_000,
  workloadImage: DEFAULT_MANIFEST_OPTIONS.workloadImage,
  imagePullPolicy: DEFAULT_MANIFEST_OPTIONS.imagePullPolicy,
  workloadResources: DEFAULT_MANIFEST_OPTIONS.resources,
  workloadBrowserResources: DEFAULT_MANIFEST_OPTIONS.browserResources,
  serviceMonitor: true,
};

export interface Operator {
  metrics: Metrics;
  port: number;
  client: KubeClient;
  /** Resolves when leadership is lost (the process should exit non-zero). */
  lostLeadership: Promise<void>;
  isLeader(): boolean;
  ready(): string[];
  stop(): Promise<void>;
}

async function serviceMonitorAvailable(client: KubeClient): Promise<boolean> {
  try {
    const list = await client.get<{ resources?: { name: string }[] }>('/apis/monitoring.coreos.com/v1');
    return list.resources?.some((r) => r.name === 'servicemonitors') ?? false;
  } catch (err) {
    if (err instanceof ApiError && err.code === 404) return false;
    throw err;
  }
}

export async function startOperator(opts: OperatorOptions, log: Logger): Promise<Operator> {
  const metrics = createMetrics();
  const client = new KubeClient(await loadConnection(opts.kubeconfig), metrics);
  const withMonitor = opts.serviceMonitor && (await serviceMonitorAvailable(client));
  const manifestOptions: ManifestOptions = {
    ...DEFAULT_MANIFEST_OPTIONS,
    workloadImage: opts.workloadImage,
    imagePullPolicy: opts.imagePullPolicy,
    resources: opts.workloadResources,
    browserResources: opts.workloadBrowserResources,
    defaultDatabaseSecret: opts.defaultDatabaseSecret,
    serviceMonitor: withMonitor,
  };
  log.info(
    { serviceMonitor: withMonitor, namespaces: opts.watchNamespaces.length ? opts.watchNamespaces : 'all' },
    'starting',
  );

  const common = {
    client,
    namespaces: opts.watchNamespaces,
    idleTimeoutMs: opts.watchIdleTimeoutMs,
    staleAfterMs: opts.watchStaleAfterMs,
    log,
    metrics,
  };
  const caches: Caches = {
    accounts: new Informer<AccountObject>({ ...common, resource: RESOURCES.XianyuAccount }),
    secrets: new Informer<SecretView>({ ...common, resource: RESOURCES.Secret, transform: secretView }),
    children: new Map(),
  };
  const childKinds: string[] = [...CHILD_KINDS, ...(withMonitor ? ['ServiceMonitor'] : [])];
  for (const kind of childKinds) {
    caches.children.set(
      kind,
      new Informer<KObject>({ ...common, resource: resourceByKind(kind), labelSelector: CHILD_SELECTOR }),
    );
  }

  const queue = new WorkQueue(new RateLimiter(), metrics, {
    controller: CONTROLLER_NAME,
    name: CONTROLLER_NAME,
  });
  const recorder = new EventRecorder(client, opts.identity, log, metrics);
  const reconciler = new AccountReconciler(client, caches, () => manifestOptions, recorder, log);

  caches.accounts.on((type, obj) => {
    reconciler.observe('XianyuAccount', type, obj);
    if (type !== 'delete') queue.add(`${obj.metadata.namespace}/${obj.metadata.name}`);
  });
  for (const [kind, informer] of caches.children) {
    informer.on((type, obj) => {
      reconciler.observe(kind, type, obj);
      const owner = obj.metadata.ownerReferences?.find((o) => o.controller && o.kind === 'XianyuAccount');
      if (owner) queue.add(`${obj.metadata.namespace}/${owner.name}`);
    });
  }
  caches.secrets.on((_type, obj) => {
    const ns = obj.metadata.namespace ?? '';
    for (const key of reconciler.accountsUsingSecret(ns, obj.metadata.name, manifestOptions)) queue.add(key);
  });

  const informers: Pick<Informer<KObject>, 'start' | 'stop' | 'synced' | 'hasSynced' | 'stale' | 'name'>[] = [
    caches.accounts,
    caches.secrets,
    ...caches.children.values(),
  ];
  for (const i of informers) i.start();

  let leading = !opts.leaderElect;
  const ready = () => {
    const failing: string[] = [];
    for (const i of informers) {
      if (!i.hasSynced) failing.push(`cache ${i.name} not synced`);
      else if (i.stale) failing.push(`watch ${i.name} stale`);
    }
    return failing;
  };
  const refreshGauges = () => {
    const counts = new Map<string, number>(PHASES.map((p) => [p, 0]));
    counts.set('Unknown', 0);
    for (const a of caches.accounts.list()) {
      const p = a.status?.phase ?? 'Unknown';
      counts.set(p, (counts.get(p) ?? 0) + 1);
    }
    for (const [phase, n] of counts) metrics.accounts.set({ phase }, n);
    queue.collectInProgress();
  };
  const probes = await startProbeServer({
    port: opts.metricsPort,
    host: opts.metricsHost,
    registry: metrics.registry,
    readiness: ready,
    beforeMetrics: refreshGauges,
  });
  log.info({ port: probes.port }, 'serving /healthz, /readyz and /metrics');

  let workers: Workers | undefined;
  let resync: NodeJS.Timeout | undefined;
  const startWorking = () => {
    log.info({ accounts: caches.accounts.size, concurrency: opts.concurrency }, 'starting reconcile workers');
    for (const a of caches.accounts.list()) queue.add(`${a.metadata.namespace}/${a.metadata.name}`);
    workers = runWorkers({
      queue,
      concurrency: opts.concurrency,
      controller: CONTROLLER_NAME,
      metrics,
      log,
      reconcile: (key) => reconciler.reconcile(key),
    });
    // Level-triggered safety net: every account is looked at again now and then (no writes
    // when nothing changed).
    resync = setInterval(() => {
      for (const a of caches.accounts.list()) queue.add(`${a.metadata.namespace}/${a.metadata.name}`);
    }, opts.resyncPeriodMs);
    resync.unref();
  };

  let stopping = false;
  let signalLost: () => void = () => {};
  const lostLeadership = new Promise<void>((resolve) => {
    signalLost = resolve;
  });
  const elector = opts.leaderElect
    ? new LeaderElector({
        client,
        namespace: opts.leaderElectionNamespace,
        name: opts.leaderElectionId,
        identity: opts.identity,
        leaseDurationMs: opts.leaseDurationMs,
        renewDeadlineMs: opts.renewDeadlineMs,
        retryPeriodMs: opts.retryPeriodMs,
        log,
        metrics,
      })
    : undefined;

  const synced = Promise.all(informers.map((i) => i.synced)).then(() => {
    log.info({ accounts: caches.accounts.size, secrets: caches.secrets.size }, 'caches synced');
  });

  if (elector) {
    void synced.then(() =>
      elector.run({
        onStartedLeading: () => {
          leading = true;
          if (!stopping) startWorking();
        },
        onStoppedLeading: () => {
          leading = false;
          queue.shutDown();
          signalLost();
        },
      }),
    );
  } else {
    void synced.then(() => {
      if (!stopping) startWorking();
    });
  }

  return {
    metrics,
    port: probes.port,
    client,
    lostLeadership,
    isLeader: () => leading,
    ready,
    async stop() {
      if (stopping) return;
      stopping = true;
      log.info('shutting down: draining reconciles');
      if (resync) clearInterval(resync);
      queue.shutDown();
      await workers?.stopped;
      await elector?.release();
      await Promise.all(informers.map((i) => i.stop()));
      await probes.close();
      client.close();
      log.info('stopped');
    },
  };
}

export { PLURAL };
