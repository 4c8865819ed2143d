// Retry policy: what happens to a delivery after a failed attempt. Pure; the queue applies it.
//
// `schedule[i]` is the delay before attempt i+2 (the delays after the first attempt), so a delivery
// gets 1 + schedule.length attempts. Each delay is jittered by ±20% so that deliveries that failed
// together do not retry together. A Retry-After from the receiver is honoured within bounds: never
// sooner than the jittered schedule, never later than twice the scheduled delay, so a receiver cannot
// park a delivery indefinitely and an operator's compressed schedule stays compressed.

export type FailureKind = 'retryable' | 'permanent' | 'rate_limited';

export type RetryDecision =
  | { outcome: 'retry'; delayMs: number }
  | { outcome: 'exhausted' };

export const JITTER = 0.2;

export function decideRetry(input: {
  /** Attempts made so far, including the one that just failed (>= 1). */
  attempts: number;
  schedule: readonly number[];
  kind: FailureKind;
  retryAfterMs?: number | undefined;
  /** A number in [0, 1); injectable for tests. */
  random?: number;
}): RetryDecision {
  const { attempts, schedule, kind } = input;
  if (kind === 'permanent') return { outcome: 'exhausted' };
  const base = schedule[attempts - 1];
  if (base === undefined) return { outcome: 'exhausted' };
  const random = input.random ?? Math.random();
  const jittered = Math.round(base * (1 - JITTER + 2 * JITTER * random));
  let delayMs = jittered;
  if (input.retryAfterMs !== undefined && input.retryAfterMs > jittered) {
    delayMs = Math.min(input.retryAfterMs, Math.max(2 * base, jittered));
  }
  return { outcome: 'retry', delayMs };
}

/**
 * Parses an HTTP Retry-After value (delta-seconds or an HTTP date) into milliseconds from `now`.
 * Returns undefined for absent or unparseable values.
 */
export function parseRetryAfter(value: string | undefined | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}
