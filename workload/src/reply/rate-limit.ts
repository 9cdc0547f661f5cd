/** Token bucket: `perMinute` sends, refilled continuously. Returns how long to wait for a slot. */
export class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = perMinute;
    this.last = now();
  }

  /** Takes one slot; the caller waits the returned milliseconds before sending. */
  take(): number {
    const t = this.now();
    this.tokens = Math.min(this.perMinute, this.tokens + ((t - this.last) * this.perMinute) / 60_000);
    this.last = t;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 60_000) / this.perMinute);
  }
}
