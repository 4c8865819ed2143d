// Rate-limit decisions: GCRA in its continuous-state leaky bucket form (ITU-T I.371; equivalent to
// virtual scheduling), i.e. a token bucket with continuous refill. Pure: state and time are passed
// in. The in-process limiter calls these functions; the Redis limiter's Lua script
// (src/ratelimit/redis.ts) performs the same operations, in the same order, on the same IEEE doubles,
// so both decide identically for the same state and time.
//
// A bucket of limit L per period P ms holds at most L tokens, starts full, and regains L tokens per
// P ms continuously. Taking `cost` tokens succeeds when that many are there; a refusal takes none.
//
// Exactness: tokens are counted in units of 1/P token (a token is P units), so the bucket holds at
// most L·P units and regains exactly L units per millisecond. Every quantity is then an integer of
// at most L·P, which must not exceed 2^53 (Number.MAX_SAFE_INTEGER) so doubles hold it exactly, in
// JavaScript and in Redis's Lua alike. Time is whole milliseconds.
//
// Clock going backwards (a smaller `now` than the last one seen): nothing is regained until time
// passes the last seen instant again; the bucket never loses tokens to it.
//
// A bucket that is full carries no information, so a missing state means "full": stores may drop a
// bucket once it is full again (its `resetMs` after the last change) without changing any decision.
// A bucket whose period changed is rescaled to the same number of tokens (rounded down), then
// capped at the new limit.

/** What a limiter tells its caller about one bucket. */
export interface Decision {
  /** Whether the cost was (consume) or would be (peek) taken. */
  allowed: boolean;
  /** Whole tokens in the bucket after this decision (nothing was taken when refused). */
  remaining: number;
  /** Milliseconds until the bucket is full again, if nothing more is taken (0: full now). */
  resetMs: number;
  /** 0 when allowed; else milliseconds until `cost` tokens are there (if nothing else takes any). */
  retryAfterMs: number;
  /** The bucket's capacity (the limit it was asked with). */
  limit: number;
  /**
   * Set when the limiter could not consult its store (Redis unreachable, timed out, or the
   * limiter closed) and decided by its failure rule instead; remaining/resetMs mean nothing then.
   */
  unchecked?: true;
}

/** A bucket's stored state: `units` tokens·P at time `at` (ms), for period `periodMs`. */
export interface BucketState {
  units: number;
  at: number;
  periodMs: number;
}

/** Throws a RangeError unless limit, period and cost make a bucket these functions can compute exactly. */
export function checkBucket(limit: number, periodMs: number, cost: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`a rate limit must be a whole number of at least 1, got ${limit}`);
  if (!Number.isSafeInteger(periodMs) || periodMs < 1) throw new RangeError(`a rate-limit period must be a whole number of at least 1 ms, got ${periodMs}`);
  if (!Number.isSafeInteger(limit * periodMs)) throw new RangeError(`limit × period (${limit} × ${periodMs} ms) exceeds 2^53`);
  if (!Number.isSafeInteger(cost) || cost < 0 || cost > limit) throw new RangeError(`a cost must be a whole number from 0 to the limit (${limit}), got ${cost}`);
}

/** Throws a RangeError unless `now` is a whole, non-negative number of milliseconds. */
export function checkTime(now: number): void {
  if (!Number.isSafeInteger(now) || now < 0) throw new RangeError(`a time must be whole, non-negative milliseconds, got ${now}`);
}

/** The bucket at `now`: what it held (a full one when `state` is undefined) plus what it regained since. */
export function refill(state: BucketState | undefined, limit: number, periodMs: number, now: number): BucketState {
  const cap = limit * periodMs;
  if (state === undefined) return { units: cap, at: now, periodMs };
  let units = state.units;
  if (state.periodMs !== periodMs) units = Math.floor((units * periodMs) / state.periodMs);
  if (units > cap) units = cap;
  const elapsed = now - state.at;
  if (elapsed >= periodMs) units = cap;
  else if (elapsed > 0) units = Math.min(cap, units + elapsed * limit);
  return { units, at: Math.max(state.at, now), periodMs };
}

/**
 * Decides `cost` tokens against a bucket already refilled to the present (see refill). With
 * `take`, an allowed decision's `next` has the cost removed; otherwise `next` is `state`.
 */
export function decide(state: BucketState, limit: number, periodMs: number, cost: number, take: boolean): { decision: Decision; next: BucketState } {
  const cap = limit * periodMs;
  const need = cost * periodMs;
  const allowed = state.units >= need;
  const after = allowed && take ? state.units - need : state.units;
  const decision: Decision = {
    allowed,
    remaining: Math.floor(after / periodMs),
    resetMs: Math.ceil((cap - after) / limit),
    retryAfterMs: allowed ? 0 : Math.ceil((need - state.units) / limit),
    limit,
  };
  return { decision, next: after === state.units ? state : { ...state, units: after } };
}

/** One bucket of a multi-bucket decision. */
export interface BucketSpec {
  limit: number;
  periodMs: number;
}

/**
 * All or nothing across buckets: every bucket is refilled to `now`; the cost is taken from all of
 * them (with `take`) only if each has it, else from none. Each decision says whether its own
 * bucket had the cost; `allowed` says whether all did; `retryAfterMs` is the largest wait among
 * the buckets that did not (0 when allowed). `next` holds the states to store (all refilled to
 * `now`, with the cost removed when taken).
 */
export function decideMany(
  states: readonly (BucketState | undefined)[],
  specs: readonly BucketSpec[],
  cost: number,
  now: number,
  take: boolean,
): { allowed: boolean; retryAfterMs: number; decisions: Decision[]; next: BucketState[] } {
  const current = specs.map((s, i) => refill(states[i], s.limit, s.periodMs, now));
  const probes = specs.map((s, i) => decide(current[i]!, s.limit, s.periodMs, cost, false).decision);
  const allowed = probes.every((d) => d.allowed);
  if (!allowed || !take) {
    return { allowed, retryAfterMs: Math.max(0, ...probes.map((d) => d.retryAfterMs)), decisions: probes, next: current };
  }
  const taken = specs.map((s, i) => decide(current[i]!, s.limit, s.periodMs, cost, true));
  return { allowed, retryAfterMs: 0, decisions: taken.map((t) => t.decision), next: taken.map((t) => t.next) };
}
