import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

// Every metric of the operator, in one registry per operator instance. Names and labels follow
// controller-runtime / client-go so existing dashboards work; product metrics use xianyu_operator_.

const QUEUE_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000];
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5,
  1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];

export function createMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const queueLabels = ['controller', 'name'] as const;
  const ctrl = ['controller'] as const;
  return {
    registry,
    // --- client-go workqueue ---
    queueDepth: new Gauge({
      name: 'workqueue_depth',
      help: 'Current depth of workqueue',
      labelNames: queueLabels,
      registers,
    }),
    queueAdds: new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue',
      labelNames: queueLabels,
      registers,
    }),
    queueLatency: new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: queueLabels,
      buckets: QUEUE_BUCKETS,
      registers,
    }),
    workDuration: new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes',
      labelNames: queueLabels,
      buckets: QUEUE_BUCKETS,
      registers,
    }),
    queueRetries: new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue',
      labelNames: queueLabels,
      registers,
    }),
    unfinishedWork: new Gauge({
      name: 'workqueue_unfinished_work_seconds',
      help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration",
      labelNames: queueLabels,
      registers,
    }),
    longestRunning: new Gauge({
      name: 'workqueue_longest_running_processor_seconds',
      help: 'How many seconds has the longest running processor for workqueue been running',
      labelNames: queueLabels,
      registers,
    }),
    // --- controller-runtime ---
    reconcileTotal: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'] as const,
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ctrl,
      registers,
    }),
    reconcileTime: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ctrl,
      buckets: RECONCILE_BUCKETS,
      registers,
    }),
    maxConcurrent: new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ctrl,
      registers,
    }),
    activeWorkers: new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ctrl,
      registers,
    }),
    leader: new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
      labelNames: ['name'] as const,
      registers,
    }),
    // --- product ---
    apiWrites: new Counter({
      name: 'xianyu_operator_api_writes_total',
      help: 'Writes the operator sent to the API server (apply, create, update, delete), by verb and resource',
      labelNames: ['verb', 'resource'] as const,
      registers,
    }),
    apiErrors: new Counter({
      name: 'xianyu_operator_api_errors_total',
      help: 'Failed API requests by verb, resource and HTTP status (0: no response)',
      labelNames: ['verb', 'resource', 'code'] as const,
      registers,
    }),
    accounts: new Gauge({
      name: 'xianyu_operator_accounts',
      help: 'XianyuAccounts by status.phase',
      labelNames: ['phase'] as const,
      registers,
    }),
    events: new Counter({
      name: 'xianyu_operator_events_total',
      help: 'Kubernetes Events emitted, by type and reason',
      labelNames: ['type', 'reason'] as const,
      registers,
    }),
    watchRestarts: new Counter({
      name: 'xianyu_operator_watch_restarts_total',
      help: 'Watches restarted, by resource and reason (closed, error, idle: the watchdog, gone: 410 relist)',
      labelNames: ['resource', 'reason'] as const,
      registers,
    }),
    cacheObjects: new Gauge({
      name: 'xianyu_operator_cache_objects',
      help: 'Objects in the informer caches, by resource',
      labelNames: ['resource'] as const,
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
