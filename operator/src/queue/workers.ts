import type { Logger } from 'pino';
import type { Metrics } from '../metrics/registry.js';
import type { WorkQueue } from './workqueue.js';

// A bounded pool of workers draining one queue, with controller-runtime's reconcile metrics.

export interface ReconcileResult {
  /** Reconcile again after this many milliseconds (success, but time-based follow-up). */
  requeueAfterMs?: number;
}

export type Reconciler = (key: string) => Promise<ReconcileResult | undefined>;

export interface Workers {
  /** Resolves when every worker has stopped (after queue.shutDown()). */
  stopped: Promise<void>;
}

export function runWorkers(opts: {
  queue: WorkQueue;
  concurrency: number;
  reconcile: Reconciler;
  controller: string;
  metrics?: Metrics;
  log?: Logger;
}): Workers {
  const { queue, reconcile, metrics, log } = opts;
  const labels = { controller: opts.controller };
  metrics?.maxConcurrent.set(labels, opts.concurrency);
  metrics?.activeWorkers.set(labels, 0);
  let active = 0;

  const worker = async (): Promise<void> => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      active++;
      metrics?.activeWorkers.set(labels, active);
      const end = metrics?.reconcileTime.startTimer(labels);
      try {
        const result = await reconcile(key);
        queue.forget(key);
        if (result?.requeueAfterMs !== undefined) {
          queue.addAfter(key, result.requeueAfterMs);
          metrics?.reconcileTotal.inc({ ...labels, result: 'requeue_after' });
        } else {
          metrics?.reconcileTotal.inc({ ...labels, result: 'success' });
        }
      } catch (err) {
        const delay = queue.addRateLimited(key);
        metrics?.reconcileTotal.inc({ ...labels, result: 'error' });
        metrics?.reconcileErrors.inc(labels);
        log?.warn(
          { key, err: { message: (err as Error).message }, retryInMs: delay, retries: queue.retries(key) },
          'reconcile failed; retrying with backoff',
        );
      } finally {
        end?.();
        active--;
        metrics?.activeWorkers.set(labels, active);
        queue.done(key);
      }
    }
  };

  const stopped = Promise.all(Array.from({ length: opts.concurrency }, worker)).then(() => {});
  return { stopped };
}
