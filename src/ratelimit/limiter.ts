// The rate limiter contract, shared by the in-process limiter (memory.ts) and the Redis one
// (redis.ts). Both decide with the functions of src/domain/gcra.ts, so they agree exactly.
//
// A key names one bucket: capacity `limit` tokens, refilled continuously at `limit` per `periodMs`
// (100 per 1s regains a token every 10 ms), full when first seen. A decision takes `cost` tokens
// (default 1) if the bucket holds that many, and none otherwise. Every decision on a key is atomic
// with respect to every other one on that key: in-process by construction, in Redis because one
// Lua script makes each decision. A key's limit and period are whatever the caller passes each
// time; callers keep them stable per key (a changed period rescales the bucket to the same tokens).
//
// Arguments are checked before anything is asked: a limit or period that is not a whole number of
// at least 1, limit × periodMs above 2^53, a cost that is not a whole number from 0 to the limit,
// duplicate keys in consumeMany, or a bad `now` throw a RangeError (a cost above the limit could
// never be granted, and is a caller's bug).
//
// Time: `now` (ms since the epoch, default Date.now()) is honoured by the in-process limiter, so
// tests and the pure rules can drive time. The Redis limiter uses the Redis server's clock (TIME)
// and ignores `now`, so that nodes with skewed clocks share buckets consistently.
//
// Failure (Redis only; the in-process limiter cannot fail): see redis.ts. A decision taken without
// the store carries `unchecked: true`.

import type { Decision } from '../domain/gcra.ts';

export type { Decision } from '../domain/gcra.ts';

/** One bucket of a consumeMany: its key, capacity and period. */
export interface LimitSpec {
  key: string;
  limit: number;
  periodMs: number;
}

/** The outcome of consumeMany. */
export interface ManyDecision {
  /** Whether every bucket had the cost, which was then taken from each; false: taken from none. */
  allowed: boolean;
  /** 0 when allowed; else the longest wait among the buckets that lacked the cost. */
  retryAfterMs: number;
  /**
   * One per spec, in order. Each says whether its own bucket had the cost; when the whole was
   * refused, a bucket that had it was still left untouched (its `remaining` says so).
   */
  decisions: Decision[];
  /** As in Decision: set when decided without the store. */
  unchecked?: true;
}

export interface RateLimiter {
  /** 'memory' or 'redis'. */
  readonly kind: string;
  /** Takes `cost` tokens (default 1) from `key`'s bucket if it has them. */
  consume(key: string, limit: number, periodMs: number, cost?: number, now?: number): Promise<Decision>;
  /**
   * Takes `cost` tokens from every bucket, or from none if any lacks them: one atomic decision
   * (for example a per-channel limit together with the kind's "*" limit). Keys must be distinct.
   */
  consumeMany(specs: readonly LimitSpec[], cost?: number, now?: number): Promise<ManyDecision>;
  /** What consume would decide now, taking nothing. */
  peek(key: string, limit: number, periodMs: number, cost?: number, now?: number): Promise<Decision>;
  /**
   * Releases timers and connections. Afterwards the in-process limiter still decides (its
   * buckets are no longer swept); the Redis one decides by its failure rule, unchecked.
   */
  close(): Promise<void>;
}

/** Throws a RangeError if consumeMany's specs repeat a key. */
export function checkDistinct(specs: readonly LimitSpec[]): void {
  const seen = new Set<string>();
  for (const s of specs) {
    if (seen.has(s.key)) throw new RangeError(`consumeMany got the key "${s.key}" twice`);
    seen.add(s.key);
  }
}
