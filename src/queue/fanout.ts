// Topic fan-out: expands the members of a topic send into deliveries, in batches, on worker nodes.
//
// A topic send is accepted as a notification plus a `fanouts` row (state pending, cursor `after`
// null) and a lease-queue row (kind fanout, key the notification id, due at once), in the accept
// transaction. A worker claims one fan-out at a time from the lease queue (queue/lease-queue.ts: a
// lease that expired is claimable again, so a crashed worker's fan-out resumes where its last
// batch ended), then repeats, until the topic has no member after the cursor:
//   read the next BATCH member ids after `after` (recipient id order) -> decide their deliveries
//   (Accepter.deliveriesForMembers: the same policy as a direct send) -> one transaction: extend
//   the lease (a worker that lost its lease writes nothing), insert the deliveries and dedupe
//   keys, add them to the notification's delivery_count, move `after` to the batch's last id ->
//   wake the channels that got due deliveries.
// The last batch also sets state done and completes the lease; the notification's status is then
// refreshed. Cancelling the notification ends its fan-out (state done): the members not yet
// expanded get nothing, and the worker completes the lease when it sees that. A batch that fails
// frees the lease, due again after RETRY_MS.
// Each batch is its own transaction, and the loop yields between batches, so a 100,000-member
// topic is neither one giant transaction nor a stall for other sends. A member is expanded at
// most once (the cursor moves in the batch's transaction).

import type { Logger } from 'pino';
import type { StoreAdapter } from '../store/adapter.ts';
import type { DeliveriesTable, FanoutsTable } from '../store/schema.ts';
import { memberIdsAfter } from '../topics/store.ts';
import { recipientRows } from '../store/delivery-keys.ts';
import type { Accepter, SendRequest } from './accept.ts';
import { LEASE_KINDS, LeaseQueue, Poller } from './lease-queue.ts';

export const FANOUT_BATCH = 500;
const INSERT_CHUNK = 100;
/** A fan-out whose batch failed is due again this much later. */
const RETRY_MS = 1000;
const KIND = LEASE_KINDS.fanout;

class LostLease extends Error {}

export class FanoutWorker {
  readonly #store: StoreAdapter;
  readonly #accepter: Accepter;
  readonly #leases: LeaseQueue;
  readonly #leaseMs: number;
  readonly #log: Logger;
  readonly #wake: (channels: string[]) => void;
  readonly #batch: number;
  readonly #poller: Poller;

  constructor(opts: { store: StoreAdapter; accepter: Accepter; owner: string; leaseMs: number; pollMs: number; log: Logger; wake: (channels: string[]) => void; batch?: number }) {
    this.#store = opts.store;
    this.#accepter = opts.accepter;
    this.#leases = new LeaseQueue(opts.store, opts.owner);
    this.#leaseMs = opts.leaseMs;
    this.#log = opts.log;
    this.#wake = opts.wake;
    this.#batch = opts.batch ?? FANOUT_BATCH;
    this.#poller = new Poller({ tick: () => this.#next(), intervalMs: opts.pollMs, onError: (err) => this.#log.error({ err }, 'topic fan-out: claim failed') });
  }

  start(): void {
    this.#poller.start();
  }

  /** A hint that a topic send was accepted. */
  wake(): void {
    this.#poller.wake();
  }

  async stop(): Promise<void> {
    await this.#poller.stop();
    // Give the lease back so another node (or this one restarted) resumes at once.
    await this.#leases.release(KIND).catch(() => undefined);
  }

  /** Claims one due fan-out and expands it; whether there was one. */
  async #next(): Promise<boolean> {
    const [lease] = await this.#leases.claim(KIND, 1, this.#leaseMs);
    if (!lease) return false;
    try {
      const f = await this.#store.db.selectFrom('fanouts').selectAll().where('notification_id', '=', lease.key).executeTakeFirst();
      if (!f || f.state !== 'pending') await this.#leases.complete(KIND, lease.key);
      else await this.#expand(f);
    } catch (err) {
      if (err instanceof LostLease) return true;
      this.#log.error({ err, notification: lease.key }, 'topic fan-out failed; retrying');
      await this.#leases.fail(KIND, lease.key, Date.now() + RETRY_MS).catch(() => undefined);
    }
    return true;
  }

  async #expand(f: FanoutsTable): Promise<void> {
    const req = JSON.parse(f.request) as SendRequest;
    let after = f.after;
    for (;;) {
      if (this.#poller.stopping) return;
      const ids = await memberIdsAfter(this.#store.db, f.workspace_id, f.topic, after, this.#batch);
      const last = ids.length < this.#batch;
      const now = Date.now();
      const { rows, dedupe } = ids.length ? await this.#accepter.deliveriesForMembers(f.workspace_id, f.notification_id, req, ids, f.template_version, now) : { rows: [] as DeliveriesTable[] };
      const next = ids.at(-1) ?? after;
      const cancelled = await this.#store.transaction(async (trx) => {
        if (!(await this.#leases.extend(KIND, f.notification_id, this.#leaseMs, trx, now))) throw new LostLease();
        const moved = await trx
          .updateTable('fanouts')
          .set({ after: next, recipients: (eb) => eb('recipients', '+', ids.length), updated_at: now, ...(last && { state: 'done' as const }) })
          .where('notification_id', '=', f.notification_id)
          .where('state', '=', 'pending')
          .executeTakeFirst();
        if (Number(moved.numUpdatedRows) === 0 || last) await this.#leases.complete(KIND, f.notification_id, trx);
        // Cancelled meanwhile: nothing more is expanded.
        if (Number(moved.numUpdatedRows) === 0) return true;
        await this.#store.insertDeliveries(trx, rows);
        // Each member comes once (the cursor moves past it in this transaction).
        const members = recipientRows(rows);
        for (let i = 0; i < members.length; i += INSERT_CHUNK) await trx.insertInto('notification_recipients').values(members.slice(i, i + INSERT_CHUNK)).execute();
        if (rows.length > 0) {
          await trx
            .updateTable('notifications')
            .set((eb) => ({ delivery_count: eb('delivery_count', '+', rows.length) }))
            .where('id', '=', f.notification_id)
            .execute();
        }
        if (dedupe && dedupe.recipients.length > 0) {
          await trx
            .insertInto('dedupe_keys')
            .values(dedupe.recipients.map((r) => ({ workspace_id: f.workspace_id, recipient_id: r, key: dedupe.key, notification_id: f.notification_id, created_at: now, expires_at: dedupe.expiresAt })))
            .onConflict((oc) =>
              oc
                .columns(['workspace_id', 'recipient_id', 'key'])
                .doUpdateSet({ notification_id: f.notification_id, created_at: now, expires_at: dedupe.expiresAt })
                .where('dedupe_keys.expires_at', '<=', now),
            )
            .execute();
        }
        return false;
      });
      if (cancelled) return;
      this.#wake([...new Set(rows.filter((r) => r.status === 'pending').map((r) => r.channel))]);
      after = next;
      if (last) {
        await this.#store.refreshNotificationStatus([f.notification_id]);
        this.#log.info({ notification: f.notification_id, topic: f.topic }, 'topic fan-out done');
        return;
      }
      // Let the HTTP server and the delivery workers run between batches.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}
