import type { Metrics } from '../metrics/registry.js';
import { RateLimiter } from './rate-limiter.js';

// client-go's work queue semantics: a key is queued at most once (de-duplication), is never
// processed by two workers at once (a key added while it is processed runs again after done()),
// and can be re-added after a delay or after a rate-limited (backed-off) delay.

export interface QueueMetricsLabels {
  controller: string;
  name: string;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Map<string, number>();
  private readonly addedAt = new Map<string, number>();
  private readonly waiting = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;

  constructor(
    private readonly limiter: RateLimiter = new RateLimiter(),
    private readonly metrics?: Metrics,
    private readonly labels: QueueMetricsLabels = { controller: 'xianyuaccount', name: 'xianyuaccount' },
  ) {
    metrics?.queueDepth.set(labels, 0);
  }

  get length(): number {
    return this.queue.length;
  }

  /** Keys queued, being processed, or waiting for a delayed add. */
  get pending(): number {
    return this.dirty.size + this.processing.size + this.waiting.size;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.metrics?.queueAdds.inc(this.labels);
    this.dirty.add(key);
    this.addedAt.set(key, performance.now());
    if (this.processing.has(key)) return;
    this.push(key);
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.start(key);
      waiter(key);
      return;
    }
    this.queue.push(key);
    this.metrics?.queueDepth.set(this.labels, this.queue.length);
  }

  private start(key: string): void {
    this.dirty.delete(key);
    const added = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (added !== undefined)
      this.metrics?.queueLatency.observe(this.labels, (performance.now() - added) / 1000);
    this.processing.set(key, performance.now());
  }

  /** The next key to process (waits for one); undefined once the queue shuts down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.metrics?.queueDepth.set(this.labels, this.queue.length);
      this.start(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Processing of `key` finished; if it was added meanwhile it is queued again. */
  done(key: string): void {
    const started = this.processing.get(key);
    this.processing.delete(key);
    if (started !== undefined)
      this.metrics?.workDuration.observe(this.labels, (performance.now() - started) / 1000);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
  }

  /** Adds `key` after `delayMs` (an earlier pending add wins). */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.waiting.set(key, { at, timer });
  }

  /** Adds `key` after its backoff (per-key exponential, bounded by the overall bucket). */
  addRateLimited(key: string): number {
    this.metrics?.queueRetries.inc(this.labels);
    const delay = this.limiter.when(key);
    this.addAfter(key, delay);
    return delay;
  }

  /** `key` succeeded: reset its backoff. */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  retries(key: string): number {
    return this.limiter.retries(key);
  }

  /** Seconds of in-progress work, and the longest running item (for the gauges). */
  collectInProgress(): void {
    if (!this.metrics) return;
    const now = performance.now();
    let total = 0;
    let longest = 0;
    for (const started of this.processing.values()) {
      const s = (now - started) / 1000;
      total += s;
      longest = Math.max(longest, s);
    }
    this.metrics.unfinishedWork.set(this.labels, total);
    this.metrics.longestRunning.set(this.labels, longest);
  }

  /** Stops handing out keys: queued keys are dropped, in-flight ones finish, get() returns undefined. */
  shutDown(): void {
    this.shuttingDown = true;
    this.queue.length = 0;
    this.dirty.clear();
    this.metrics?.queueDepth.set(this.labels, 0);
    for (const { timer } of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Keys being processed right now. */
  get inFlight(): number {
    return this.processing.size;
  }
}
