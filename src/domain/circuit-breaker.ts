// Circuit breaker of one delivery lane (a vendor channel). Pure: time is passed in.
//
//   closed ──`threshold` consecutive retryable failures──▶ open (until now + cooldown)
//   open ──cooldown over──▶ half_open: one probe attempt may start
//   half_open ──probe succeeds (or fails permanently)──▶ closed
//   half_open ──probe fails retryably──▶ open again, cooldown doubled (at most maxCooldownMs)
//
// While open, the lane claims nothing: due deliveries wait in the queue without spending
// attempts. A success or a permanent failure (the vendor answered) resets the failure count.
// Outcomes of attempts that were started before the circuit opened are still counted.

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitOptions {
  threshold: number;
  cooldownMs: number;
  maxCooldownMs: number;
}

export class CircuitBreaker {
  readonly #o: CircuitOptions;
  #failures = 0;
  #openUntil = 0;
  #cooldown: number;
  #state: CircuitState = 'closed';
  #probing = false;

  constructor(opts: CircuitOptions) {
    this.#o = opts;
    this.#cooldown = opts.cooldownMs;
  }

  state(now: number): CircuitState {
    if (this.#state === 'open' && now >= this.#openUntil) {
      this.#state = 'half_open';
      this.#probing = false;
    }
    return this.#state;
  }

  /** When an open circuit lets a probe through. */
  get openUntil(): number {
    return this.#openUntil;
  }

  /**
   * How many attempts may start now, out of `wanted`: all when closed, none when open, one probe
   * at a time when half-open.
   */
  admit(now: number, wanted: number): number {
    const s = this.state(now);
    if (s === 'closed') return wanted;
    if (s === 'open' || this.#probing || wanted <= 0) return 0;
    this.#probing = true;
    return 1;
  }

  /** The probe admitted by `admit` was not started after all (nothing was due). */
  cancelProbe(): void {
    this.#probing = false;
  }

  /** The vendor answered: a success, or a permanent failure that says nothing about its health. */
  success(): void {
    this.#failures = 0;
    this.#probing = false;
    this.#state = 'closed';
    this.#cooldown = this.#o.cooldownMs;
  }

  /** A retryable failure (network, timeout, 5xx, 429). Returns true if this opened the circuit. */
  failure(now: number): boolean {
    if (this.#state === 'half_open') {
      this.#probing = false;
      this.#cooldown = Math.min(this.#cooldown * 2, this.#o.maxCooldownMs);
      this.#open(now);
      return true;
    }
    if (this.#state === 'open') return false;
    this.#failures++;
    if (this.#failures < this.#o.threshold) return false;
    this.#open(now);
    return true;
  }

  #open(now: number): void {
    this.#state = 'open';
    this.#openUntil = now + this.#cooldown;
    this.#failures = 0;
  }
}
