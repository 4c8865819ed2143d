// The broker's retention purge on the lease queue: one row (inbound_retention, "all"). Whichever
// node claims it deletes expired events in batches (each source's retention, or
// HERALD_EVENT_RETENTION), extending its lease between batches, then frees the row due again
// after PURGE_EVERY_MS. A node that dies mid-purge loses the row when its lease expires; the
// deletes it made stand (purging is idempotent).

import type { Logger } from 'pino';
import { enqueueLeases, LEASE_KINDS, LeaseQueue, leaseRow, Poller } from '../queue/lease-queue.ts';
import type { StoreAdapter } from '../store/adapter.ts';
import type { InboundService } from './service.ts';

const KIND = LEASE_KINDS.inboundRetention;
const KEY = 'all';
export const PURGE_EVERY_MS = 60_000;
const BATCH = 1000;
const MAX_BATCHES_PER_RUN = 50;
const LEASE_MS = 60_000;

export class RetentionPurger {
  readonly #store: StoreAdapter;
  readonly #inbound: InboundService;
  readonly #leases: LeaseQueue;
  readonly #poller: Poller;
  readonly #everyMs: number;
  readonly #now: () => number;

  /** `now`: the clock retention is measured against (tests move it forward). */
  constructor(opts: { store: StoreAdapter; inbound: InboundService; owner: string; log: Logger; pollMs?: number; everyMs?: number; now?: () => number }) {
    this.#now = opts.now ?? Date.now;
    this.#store = opts.store;
    this.#inbound = opts.inbound;
    this.#leases = new LeaseQueue(opts.store, opts.owner);
    this.#everyMs = opts.everyMs ?? PURGE_EVERY_MS;
    this.#poller = new Poller({ tick: () => this.#tick(), intervalMs: opts.pollMs ?? 5_000, onError: (err) => opts.log.warn({ err }, 'inbound retention purge failed') });
  }

  async start(): Promise<void> {
    const now = Date.now();
    await enqueueLeases(this.#store.db, [leaseRow(KIND, KEY, now, now)], { ifAbsent: true });
    this.#poller.start();
  }

  stop(): Promise<void> {
    return this.#poller.stop();
  }

  /** One run if the row is due and this node gets it; false when there was nothing to do. */
  async #tick(): Promise<boolean> {
    const [row] = await this.#leases.claim(KIND, 1, LEASE_MS);
    if (!row) return false;
    let more = true;
    for (let i = 0; i < MAX_BATCHES_PER_RUN && more && !this.#poller.stopping; i++) {
      more = (await this.#inbound.purgeExpired(BATCH, this.#now())) === BATCH;
      if (more && !(await this.#leases.extend(KIND, KEY, LEASE_MS))) return false;
    }
    // Due again at once when a run stopped with more to purge.
    await this.#leases.fail(KIND, KEY, more ? Date.now() : Date.now() + this.#everyMs);
    return false;
  }
}
