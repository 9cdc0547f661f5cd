// Requeue delays after a failure, like client-go's DefaultControllerRateLimiter: the larger of a
// per-key exponential backoff and an overall token bucket (which bounds the retry rate of all
// keys together).

export interface RateLimiterOptions {
  /** First per-key delay (doubles on every failure). Default 5 ms. */
  baseDelayMs?: number;
  /** Longest per-key delay. Default 300 s. */
  maxDelayMs?: number;
  /** Overall retries per second. Default 10. */
  qps?: number;
  /** Overall burst. Default 100. */
  burst?: number;
  now?: () => number;
}

export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes one token and returns how long (ms) the caller must wait for it. */
  reserve(): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }
}

export class RateLimiter {
  private readonly failures = new Map<string, number>();
  private readonly bucket: TokenBucket;
  private readonly base: number;
  private readonly max: number;

  constructor(opts: RateLimiterOptions = {}) {
    this.base = opts.baseDelayMs ?? 5;
    this.max = opts.maxDelayMs ?? 300_000;
    this.bucket = new TokenBucket(opts.qps ?? 10, opts.burst ?? 100, opts.now);
  }

  /** The delay before `key` is retried; every call counts as one more failure of `key`. */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const backoff = Math.min(this.max, this.base * 2 ** Math.min(n, 52));
    return Math.max(backoff, this.bucket.reserve());
  }

  /** Failures of `key` since it last succeeded. */
  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** `key` succeeded: its backoff starts over. */
  forget(key: string): void {
    this.failures.delete(key);
  }
}
