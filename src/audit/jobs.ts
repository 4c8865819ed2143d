// The audit log's retention (HERALD_AUDIT_RETENTION): entries older than the retention are deleted
// in the background, through the lease queue (queue/lease-queue.ts), so that of all the nodes of a
// deployment one purges at a time.
//
// State machine of the one lease row (kind audit_purge, key "all"):
//   absent --start() of any node--> free, due now (enqueued if absent)
//   free, due --claim by a node--> leased: the node deletes old entries in batches, extending its
//     lease between batches, then frees the row due PURGE_INTERVAL_MS later (`fail` with the next
//     due time: the queue's "free it, due then")
//   leased, holder died --lease expires--> claimable again (the purge is idempotent)
// Without a retention nothing is enqueued and nothing is deleted: entries are kept forever.

import type { Logger } from 'pino';
import { enqueueLeases, LEASE_KINDS, LeaseQueue, leaseRow, Poller } from '../queue/lease-queue.ts';
import type { StoreAdapter } from '../store/adapter.ts';
import { purgeAuditBefore } from './store.ts';

export const PURGE_INTERVAL_MS = 3_600_000;
const KIND = LEASE_KINDS.auditPurge;
const KEY = 'all';
const BATCH = 1000;
const LEASE_MS = 60_000;
/** How often a node looks for a due purge (the row is due once an hour). */
const POLL_MS = 60_000;

export class AuditRetention {
  readonly #store: StoreAdapter;
  readonly #retentionMs: number;
  readonly #log: Logger;
  readonly #leases: LeaseQueue;
  readonly #poller: Poller;

  constructor(opts: { store: StoreAdapter; retentionMs: number; owner: string; log: Logger }) {
    this.#store = opts.store;
    this.#retentionMs = opts.retentionMs;
    this.#log = opts.log;
    this.#leases = new LeaseQueue(opts.store, `${opts.owner}:audit`);
    this.#poller = new Poller({ tick: () => this.#tick(), intervalMs: POLL_MS, onError: (err) => this.#log.warn({ err }, 'audit retention purge failed') });
  }

  async start(): Promise<void> {
    const now = Date.now();
    await enqueueLeases(this.#store.db, [leaseRow(KIND, KEY, now, now)], { ifAbsent: true });
    this.#poller.start();
  }

  async stop(): Promise<void> {
    await this.#poller.stop();
    await this.#leases.release(KIND).catch(() => 0);
  }

  /** Claims the purge when it is due and runs it; whether it found the row due. */
  async #tick(): Promise<boolean> {
    const [claimed] = await this.#leases.claim(KIND, 1, LEASE_MS);
    if (!claimed) return false;
    const cutoff = Date.now() - this.#retentionMs;
    let purged = 0;
    for (;;) {
      const n = await purgeAuditBefore(this.#store.db, cutoff, BATCH);
      purged += n;
      if (n < BATCH || this.#poller.stopping) break;
      if (!(await this.#leases.extend(KIND, KEY, LEASE_MS))) return false;
    }
    if (purged > 0) this.#log.info({ purged, before: new Date(cutoff).toISOString() }, 'audit retention: purged old entries');
    await this.#leases.fail(KIND, KEY, Date.now() + PURGE_INTERVAL_MS);
    return false;
  }
}
