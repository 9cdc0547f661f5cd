// Reconnect delays: capped exponential with jitter, so a fleet of workloads that lost the IM at
// the same moment does not reconnect in lockstep.

/** Delay before attempt `failures` (1-based): min(max, initial·2^(n-1)), jittered into [½, 1]. */
export function backoffDelay(
  failures: number,
  initialMs: number,
  maxMs: number,
  random = Math.random,
): number {
  const exp = Math.min(maxMs, initialMs * 2 ** Math.max(0, Math.min(30, failures - 1)));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/** `base ± jitter`, never below base/2 (a jitter larger than the interval must not make it zero). */
export function jittered(baseMs: number, jitterMs: number, random = Math.random): number {
  const j = (random() * 2 - 1) * jitterMs;
  return Math.max(Math.round(baseMs / 2), Math.round(baseMs + j));
}
