// How failed sign-ins are slowed: per account (the email address, whether or not a user has it)
// and per client address, each a token bucket of failures (src/ratelimit). While a bucket still
// has room, a failed attempt's answer is delayed more the more failures it holds; once either is
// empty, attempts are refused (429 with Retry-After) without checking the password, until failures
// drain out of it.
//
//   account: 5 failures per 15 minutes; the first answered at once, then 100, 200, 400, 800 ms
//   address: 50 failures per 15 minutes; the first 20 at once, then doubling from 100 ms to 1 s

export interface ThrottleRule {
  /** Failures the bucket holds before refusing. */
  readonly limit: number;
  readonly periodMs: number;
  /** Failures answered without delay. */
  readonly free: number;
}

export const ACCOUNT_THROTTLE: ThrottleRule = { limit: 5, periodMs: 15 * 60_000, free: 1 };
export const ADDRESS_THROTTLE: ThrottleRule = { limit: 50, periodMs: 15 * 60_000, free: 20 };

/**
 * Starts of a sign-in with a provider (GET /v1/auth/oauth/{provider}), per client address: each
 * start counts (it stores a pending state), as many as the address bucket allows failures; once
 * empty, starts are refused (429 with Retry-After) until they drain out.
 */
export const OAUTH_START_THROTTLE: ThrottleRule = { limit: 50, periodMs: 15 * 60_000, free: 50 };

const BASE_DELAY_MS = 100;
const MAX_DELAY_MS = 1_000;

/** The delay of a failed attempt's answer when the bucket of `rule` holds `failures` (this one included). */
export function failureDelayMs(rule: ThrottleRule, failures: number): number {
  const over = failures - rule.free;
  if (over <= 0) return 0;
  return Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.min(over - 1, 30));
}
