// The lease queue: work that is due at a time and leased by a worker, other than deliveries (which
// are their own queue, specialised for the send path). Topic fan-outs, receipt checks and DLQ
// bulk jobs run on it; inbound consumers (the consumer in the key) and workflow timers are more
// kinds of the same.
//
// Contract. A row is (kind, key), due at a time, free or leased to one worker (an owner id).
// - enqueue(rows): adds work (store/lease-queue.ts enqueueLeases; may be part of the transaction
//   that creates the work, and may lease it to its creator at once).
// - claim(kind, limit, leaseFor): returns up to `limit` rows of `kind` that are due now, oldest
//   first, each leased to this worker until now + leaseFor. A row is due when it is free and its
//   due time has come, or when its lease has expired: a worker that died or stalled loses its
//   rows to the next claim. Two workers never hold one row at once.
// - extend(kind, key, leaseFor), complete(kind, key), fail(kind, key, nextDueAt),
//   release(kind, keys?): act only on rows this worker holds (a row whose lease expired and was
//   claimed by another is the other's), and say whether they did. complete removes the row;
//   fail frees it, due at nextDueAt; release frees it, due at once, the claim not counted; extend
//   moves the lease's expiry. Each takes the executor to run on, so it can be part of the
//   transaction that writes the work it guards (extend there, and a worker that lost its lease
//   writes nothing).
// - Wake-ups are hints (Poller.wake): they can be lost or spurious, and polling is always on.
// Work is at least once: a worker that crashes after doing part of its work but before completing
// it has that part done again by the next holder, so the work must be idempotent or guard its
// writes with extend in the same transaction.
//
// Rows live in table lease_queue (migration 0015); claims are hand-written per dialect
// (StoreAdapter.claimLeases: FOR UPDATE SKIP LOCKED on PostgreSQL, an IMMEDIATE transaction on
// SQLite), the other writes are the same SQL on both (store/lease-queue.ts).

import type { Kysely } from 'kysely';
import type { ClaimedLease, StoreAdapter } from '../store/adapter.ts';
import { completeLease, extendLease, failLease, releaseLeases } from '../store/lease-queue.ts';
import type { Database } from '../store/schema.ts';

export type { ClaimedLease } from '../store/adapter.ts';
export { enqueueLeases, LEASE_KINDS, leaseRow } from '../store/lease-queue.ts';

/** One worker's handle on the lease queue: every call acts as `owner`. */
export class LeaseQueue {
  readonly #store: StoreAdapter;
  readonly owner: string;

  constructor(store: StoreAdapter, owner: string) {
    this.#store = store;
    this.owner = owner;
  }

  claim(kind: string, limit: number, leaseForMs: number, now = Date.now()): Promise<ClaimedLease[]> {
    return this.#store.claimLeases(kind, this.owner, limit, now, leaseForMs);
  }

  extend(kind: string, key: string, leaseForMs: number, db: Kysely<Database> = this.#store.db, now = Date.now()): Promise<boolean> {
    return extendLease(db, kind, key, this.owner, now + leaseForMs, now);
  }

  complete(kind: string, key: string, db: Kysely<Database> = this.#store.db): Promise<boolean> {
    return completeLease(db, kind, key, this.owner);
  }

  fail(kind: string, key: string, nextDueAt: number, db: Kysely<Database> = this.#store.db, now = Date.now()): Promise<boolean> {
    return failLease(db, kind, key, this.owner, nextDueAt, now);
  }

  /** Frees this worker's rows of `kind` (those of `keys`, or all), due at once. Returns how many. */
  release(kind: string, keys?: readonly string[], db: Kysely<Database> = this.#store.db, now = Date.now()): Promise<number> {
    return releaseLeases(db, kind, this.owner, now, keys);
  }
}

/**
 * Runs `tick` over and over: again at once while it reports that it found work, else after
 * `intervalMs` or at the next wake(), whichever comes first. A tick that throws is reported to
 * `onError` and counts as having found nothing. stop() waits for the tick in progress.
 */
export class Poller {
  readonly #tick: () => Promise<boolean>;
  readonly #intervalMs: number;
  readonly #onError: (err: unknown) => void;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wakeUp: (() => void) | undefined;
  #woken = false;

  constructor(opts: { tick: () => Promise<boolean>; intervalMs: number; onError: (err: unknown) => void }) {
    this.#tick = opts.tick;
    this.#intervalMs = opts.intervalMs;
    this.#onError = opts.onError;
  }

  start(): void {
    this.#stopping = false;
    this.#loop ??= this.#run().finally(() => (this.#loop = undefined));
  }

  /** A hint that there may be work: the next tick runs now (or right after the one in progress). */
  wake(): void {
    this.#woken = true;
    this.#wakeUp?.();
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wakeUp?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      this.#woken = false;
      let found = false;
      try {
        found = await this.#tick();
      } catch (err) {
        this.#onError(err);
      }
      if (found || this.#woken || this.#stopping) continue;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.#wakeUp = undefined;
          resolve();
        };
        const t = setTimeout(done, this.#intervalMs);
        this.#wakeUp = done;
      });
    }
  }
}
