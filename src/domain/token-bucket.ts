// Token bucket. Pure: time is passed in. Holds at most `capacity` tokens and gains
// `ratePerSec` a second; taking a token that is not there is refused, with the wait until it is.

export class TokenBucket {
  readonly capacity: number;
  readonly ratePerSec: number;
  #tokens: number;
  #at: number;

  constructor(ratePerSec: number, capacity: number, now: number) {
    if (!(ratePerSec > 0) || !(capacity >= 1)) throw new RangeError('a token bucket needs a positive rate and a capacity of at least 1');
    this.ratePerSec = ratePerSec;
    this.capacity = capacity;
    this.#tokens = capacity;
    this.#at = now;
  }

  #refill(now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(this.capacity, this.#tokens + ((now - this.#at) / 1000) * this.ratePerSec);
      this.#at = now;
    }
  }

  /** Whole tokens available now. */
  available(now: number): number {
    this.#refill(now);
    return Math.floor(this.#tokens);
  }

  /** Takes up to `n` tokens; returns how many were taken. */
  take(now: number, n: number): number {
    this.#refill(now);
    const taken = Math.max(0, Math.min(n, Math.floor(this.#tokens)));
    this.#tokens -= taken;
    return taken;
  }

  /** Gives back tokens taken but not used (at most up to capacity). */
  giveBack(n: number): void {
    this.#tokens = Math.min(this.capacity, this.#tokens + n);
  }

  /** Milliseconds until one whole token is available (0 if one is). */
  msUntilNext(now: number): number {
    this.#refill(now);
    if (this.#tokens >= 1) return 0;
    return Math.ceil(((1 - this.#tokens) / this.ratePerSec) * 1000);
  }
}
