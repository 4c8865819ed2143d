// Topic fan-out: expands the members of a topic send into deliveries, in batches, on worker nodes.
//
// A topic send is accepted as a notification plus a `fanouts` row (state pending, cursor `after`
// null). A worker claims one pending fan-out at a time (lease: owner + lease_until; a lease that
// expired is claimable again, so a crashed worker's fan-out resumes where its last batch ended),
// then repeats, until the topic has no member after the cursor:
//   read the next BATCH member ids after `after` (recipient id order) -> decide their deliveries
//   (Accepter.deliveriesForMembers: the same policy as a direct send) -> one transaction: insert
//   the deliveries and dedupe keys, add them to the notification's delivery_count, move `after` to
//   the batch's last id and renew the lease, guarded by the owner (a worker that lost its lease
//   writes nothing) -> wake the channels that got due deliveries.
// The last batch also sets state done; the notification's status is then refreshed. Cancelling the
// notification ends its fan-out (state done): the members not yet expanded get nothing.
// Each batch is its own transaction, and the loop yields between batches, so a 100,000-member
// topic is neither one giant transaction nor a stall for other sends. A member is expanded at
// most once (the cursor moves in the batch's transaction).

import type { Logger } from 'pino';
import type { StoreAdapter } from '../store/adapter.ts';
import type { DeliveriesTable, FanoutsTable } from '../store/schema.ts';
import { memberIdsAfter } from '../store/topics.ts';
import { recipientRows } from '../store/delivery-keys.ts';
import type { Accepter, SendRequest } from './accept.ts';

export const FANOUT_BATCH = 500;
const INSERT_CHUNK = 100;

class LostLease extends Error {}

export class FanoutWorker {
  readonly #store: StoreAdapter;
  readonly #accepter: Accepter;
  readonly #owner: string;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #log: Logger;
  readonly #wake: (channels: string[]) => void;
  readonly #batch: number;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wakeUp: (() => void) | undefined;

  constructor(opts: { store: StoreAdapter; accepter: Accepter; owner: string; leaseMs: number; pollMs: number; log: Logger; wake: (channels: string[]) => void; batch?: number }) {
    this.#store = opts.store;
    this.#accepter = opts.accepter;
    this.#owner = opts.owner;
    this.#leaseMs = opts.leaseMs;
    this.#pollMs = opts.pollMs;
    this.#log = opts.log;
    this.#wake = opts.wake;
    this.#batch = opts.batch ?? FANOUT_BATCH;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** A hint that a topic send was accepted. */
  wake(): void {
    this.#wakeUp?.();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wakeUp?.();
    await this.#loop;
    // Give the lease back so another node (or this one restarted) resumes at once.
    await this.#store.db.updateTable('fanouts').set({ owner: null, lease_until: null }).where('owner', '=', this.#owner).where('state', '=', 'pending').execute().catch(() => undefined);
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      let claimed: FanoutsTable | undefined;
      try {
        claimed = await this.#claim(Date.now());
        if (claimed) await this.#expand(claimed);
      } catch (err) {
        if (!(err instanceof LostLease)) this.#log.error({ err, notification: claimed?.notification_id }, 'topic fan-out failed; retrying');
      }
      if (!claimed && !this.#stopping) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, this.#pollMs);
          const self = this;
          function done() {
            clearTimeout(t);
            self.#wakeUp = undefined;
            resolve();
          }
          this.#wakeUp = done;
        });
      }
    }
  }

  /**
   * Claims the oldest pending fan-out whose lease is free or expired. The outer conditions are
   * re-checked on the row once it is locked (PostgreSQL re-evaluates an UPDATE's WHERE on rows a
   * concurrent transaction changed), so two workers never hold one fan-out.
   */
  async #claim(now: number): Promise<FanoutsTable | undefined> {
    return this.#store.db
      .updateTable('fanouts')
      .set({ owner: this.#owner, lease_until: now + this.#leaseMs, updated_at: now })
      .where('state', '=', 'pending')
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .where('notification_id', 'in', (eb) =>
        eb
          .selectFrom('fanouts')
          .select('notification_id')
          .where('state', '=', 'pending')
          .where((w) => w.or([w('lease_until', 'is', null), w('lease_until', '<', now)]))
          .orderBy('created_at')
          .limit(1),
      )
      .returningAll()
      .executeTakeFirst();
  }

  async #expand(f: FanoutsTable): Promise<void> {
    const req = JSON.parse(f.request) as SendRequest;
    let after = f.after;
    for (;;) {
      if (this.#stopping) return;
      const ids = await memberIdsAfter(this.#store.db, f.workspace_id, f.topic, after, this.#batch);
      const last = ids.length < this.#batch;
      const now = Date.now();
      const { rows, dedupe } = ids.length ? await this.#accepter.deliveriesForMembers(f.workspace_id, f.notification_id, req, ids, f.template_version, now) : { rows: [] as DeliveriesTable[] };
      const next = ids.at(-1) ?? after;
      await this.#store.transaction(async (trx) => {
        const moved = await trx
          .updateTable('fanouts')
          .set({ after: next, recipients: (eb) => eb('recipients', '+', ids.length), lease_until: now + this.#leaseMs, updated_at: now, ...(last && { state: 'done' as const, owner: null, lease_until: null }) })
          .where('notification_id', '=', f.notification_id)
          .where('owner', '=', this.#owner)
          .where('state', '=', 'pending')
          .executeTakeFirst();
        if (Number(moved.numUpdatedRows) === 0) throw new LostLease();
        for (let i = 0; i < rows.length; i += INSERT_CHUNK) await trx.insertInto('deliveries').values(rows.slice(i, i + INSERT_CHUNK)).execute();
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
      });
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
