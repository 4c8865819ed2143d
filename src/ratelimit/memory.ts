// The in-process rate limiter: buckets in a Map, refilled lazily when asked (src/domain/gcra.ts).
// Each decision runs synchronously, so decisions are atomic within the process; buckets are not
// shared with other processes (use the Redis limiter for that).
//
// Memory stays bounded:
//   - a bucket that is full after a decision is removed (a missing bucket is a full one);
//   - a sweep every `sweepIntervalMs` (default 60s) removes the buckets that have refilled since;
//   - beyond `maxKeys` (default 100,000) buckets, the least recently changed one is removed. That
//     forgets what it had spent, which lets its key spend again: a limit then holds only for the
//     `maxKeys` most active keys.

import { checkBucket, checkTime, decideMany, type BucketState, type Decision } from '../domain/gcra.ts';
import { checkDistinct, type LimitSpec, type ManyDecision, type RateLimiter } from './limiter.ts';

const SWEEP_INTERVAL_MS = 60_000;
const MAX_KEYS = 100_000;

interface Entry extends BucketState {
  /** When the bucket is full again (ms), if nothing more is taken. */
  fullAt: number;
}

export class MemoryRateLimiter implements RateLimiter {
  readonly kind = 'memory';
  readonly #buckets = new Map<string, Entry>();
  readonly #maxKeys: number;
  readonly #timer: NodeJS.Timeout;

  constructor(opts: { maxKeys?: number; sweepIntervalMs?: number } = {}) {
    this.#maxKeys = opts.maxKeys ?? MAX_KEYS;
    this.#timer = setInterval(() => this.sweep(Date.now()), opts.sweepIntervalMs ?? SWEEP_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Buckets held (not yet full again, or not yet swept). */
  get size(): number {
    return this.#buckets.size;
  }

  async consume(key: string, limit: number, periodMs: number, cost = 1, now = Date.now()): Promise<Decision> {
    return (await this.consumeMany([{ key, limit, periodMs }], cost, now)).decisions[0]!;
  }

  async peek(key: string, limit: number, periodMs: number, cost = 1, now = Date.now()): Promise<Decision> {
    return this.#decide([{ key, limit, periodMs }], cost, now, false).decisions[0]!;
  }

  async consumeMany(specs: readonly LimitSpec[], cost = 1, now = Date.now()): Promise<ManyDecision> {
    return this.#decide(specs, cost, now, true);
  }

  /** Removes every bucket that is full at `now`. */
  sweep(now: number): void {
    for (const [key, e] of this.#buckets) if (e.fullAt <= now) this.#buckets.delete(key);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
  }

  #decide(specs: readonly LimitSpec[], cost: number, now: number, take: boolean): ManyDecision {
    checkTime(now);
    for (const s of specs) checkBucket(s.limit, s.periodMs, cost);
    checkDistinct(specs);
    const out = decideMany(
      specs.map((s) => this.#buckets.get(s.key)),
      specs,
      cost,
      now,
      take,
    );
    if (take && out.allowed) {
      specs.forEach((s, i) => {
        const next = out.next[i]!;
        const d = out.decisions[i]!;
        this.#buckets.delete(s.key); // re-inserted last: Map order is least recently changed first
        if (d.resetMs > 0) this.#buckets.set(s.key, { ...next, fullAt: next.at + d.resetMs });
      });
      while (this.#buckets.size > this.#maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!);
    }
    return { allowed: out.allowed, retryAfterMs: out.retryAfterMs, decisions: out.decisions };
  }
}
