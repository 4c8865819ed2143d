// Digests (tables digests, digest_items). See migration 0011 for the model.
//
// Contract:
// - acceptWithDigest writes a notification whose deliveries may join digests, in ONE transaction:
//   each digestible delivery either joins the open digest of its (recipient, channel, device, key)
//   whose window has not closed (the delivery becomes `digested`, pointing at the digest) or opens
//   one (the delivery becomes the digest's carrier: `scheduled`, reason digest, due when the window
//   closes). Either way the notification is added to the digest's items. A digest row is locked
//   (FOR UPDATE on PostgreSQL; SQLite transactions are serial) while joined, so joining and closing
//   never interleave.
// - closeDigest (when the carrier delivery is attempted) closes the digest if open, then returns its
//   items: after the close no notification can join, so every attempt of the carrier (retries,
//   re-attempts after a crash) sends the same items. An item is in exactly one digest; a digest's
//   carrier is never one of its items' own `digested` deliveries.
// - Outcomes as StoreAdapter.acceptBatch's: `idempotency_conflict` when an unexpired record holds
//   the idempotency key, `dedupe_conflict` when another notification holds one of its dedupe keys
//   unexpired; either way the transaction rolls back and nothing of the item is written (no digest
//   joined or opened, no item added).

import { newId } from '../domain/ids.ts';
import { summarizeNotification, type StatusCounts } from '../domain/delivery-status.ts';
import type { AcceptItem, AcceptOutcome, StoreAdapter } from './adapter.ts';
import { recipientsOf } from './delivery-keys.ts';
import type { DeliveriesTable, DigestItemsTable, DigestsTable } from './schema.ts';

export interface DigestSpec {
  key: string;
  windowMs: number;
  /** A template key to render the digest with (count and items). */
  template: string | null;
}

class IdempotencyTaken extends Error {}
class DedupeTaken extends Error {}

/**
 * The `digests.key` of a (digest key, device) bucket: unambiguous for any key and device id, and
 * plain text on both stores (PostgreSQL text cannot hold the NUL that once separated the two: every
 * digest send there answered 500). Open SQLite digests written with the old NUL form are not joined
 * after an upgrade; they still close and send, and the next send opens a new bucket.
 */
export function digestBucketKey(key: string, deviceId: string | null): string {
  return JSON.stringify([key, deviceId ?? '']);
}

/** Which deliveries may join a digest: those that would go (not skipped, throttled, or waiting in a routing chain). */
function digestible(d: DeliveriesTable): boolean {
  return d.status === 'pending' || d.status === 'scheduled';
}

export async function acceptWithDigest(
  store: StoreAdapter,
  item: AcceptItem,
  spec: DigestSpec,
  now: number,
  /** The 202 body for the deliveries as finally written (stored for idempotent replays). */
  responseOf: (deliveries: readonly DeliveriesTable[]) => string,
): Promise<AcceptOutcome> {
  const n = item.notification;
  const pg = store.dialect === 'postgres';
  try {
    await store.transaction(async (trx) => {
      for (const d of item.deliveries) {
        if (!digestible(d)) continue;
        const bucketKey = digestBucketKey(spec.key, d.device_id);
        let q = trx
          .selectFrom('digests')
          .select(['id', 'delivery_id'])
          .where('workspace_id', '=', n.workspace_id)
          .where('recipient_id', '=', d.recipient_id)
          .where('channel', '=', d.channel)
          .where('key', '=', bucketKey)
          .where('status', '=', 'open')
          .where('closes_at', '>', now)
          .orderBy('created_at')
          .limit(1);
        if (pg) q = q.forUpdate();
        const open = await q.executeTakeFirst();
        if (open) {
          await trx.updateTable('digests').set((eb) => ({ count: eb('count', '+', 1) })).where('id', '=', open.id).execute();
          Object.assign(d, { status: 'digested', reason: `digest:${open.delivery_id}`, digest_id: open.id, completed_at: now });
        } else {
          const id = newId('dig');
          const closesAt = Math.max(d.run_at, now + spec.windowMs);
          await trx
            .insertInto('digests')
            .values({ id, workspace_id: n.workspace_id, recipient_id: d.recipient_id, channel: d.channel, key: bucketKey, status: 'open', closes_at: closesAt, delivery_id: d.id, count: 1, template: spec.template, created_at: now })
            .execute();
          Object.assign(d, { status: 'scheduled', reason: 'digest', run_at: closesAt, digest_id: id });
        }
        const row: DigestItemsTable = { digest_id: d.digest_id!, notification_id: n.id, title: n.title, body: n.body, data: n.data, created_at: now };
        await trx.insertInto('digest_items').values(row).onConflict((oc) => oc.columns(['digest_id', 'notification_id']).doNothing()).execute();
      }
      if (item.idempotency) {
        const { key, requestHash, expiresAt } = item.idempotency;
        const won = await trx
          .insertInto('idempotency_keys')
          .values({ workspace_id: n.workspace_id, key, request_hash: requestHash, notification_id: n.id, response: responseOf(item.deliveries), created_at: n.created_at, expires_at: expiresAt })
          .onConflict((oc) =>
            oc
              .columns(['workspace_id', 'key'])
              .doUpdateSet((eb) => ({
                request_hash: eb.ref('excluded.request_hash'),
                notification_id: eb.ref('excluded.notification_id'),
                response: eb.ref('excluded.response'),
                created_at: eb.ref('excluded.created_at'),
                expires_at: eb.ref('excluded.expires_at'),
              }))
              .where('idempotency_keys.expires_at', '<=', n.created_at),
          )
          .returning('key')
          .executeTakeFirst();
        if (!won) throw new IdempotencyTaken();
      }
      const counts: StatusCounts = {};
      for (const d of item.deliveries) counts[d.status] = (counts[d.status] ?? 0) + 1;
      n.status = summarizeNotification(counts);
      const recipients = recipientsOf(item.deliveries);
      await trx.insertInto('notifications').values({ ...n, recipient_id: recipients.recipientId }).execute();
      await store.insertDeliveries(trx, item.deliveries);
      for (let i = 0; i < recipients.rows.length; i += 100) await trx.insertInto('notification_recipients').values(recipients.rows.slice(i, i + 100)).execute();
      if (item.dedupe && item.dedupe.recipients.length > 0) {
        const { key, expiresAt } = item.dedupe;
        const took = await trx
          .insertInto('dedupe_keys')
          .values(item.dedupe.recipients.map((r) => ({ workspace_id: n.workspace_id, recipient_id: r, key, notification_id: n.id, created_at: now, expires_at: expiresAt })))
          .onConflict((oc) => oc.columns(['workspace_id', 'recipient_id', 'key']).doUpdateSet({ notification_id: n.id, created_at: now, expires_at: expiresAt }).where('dedupe_keys.expires_at', '<=', now))
          .returning('recipient_id')
          .execute();
        // A key another notification holds unexpired returns no row: the whole item is rolled back.
        if (took.length < item.dedupe.recipients.length) throw new DedupeTaken();
      }
    });
  } catch (err) {
    if (err instanceof IdempotencyTaken) return 'idempotency_conflict';
    if (err instanceof DedupeTaken) return 'dedupe_conflict';
    throw err;
  }
  return 'ok';
}

/** Closes the digest (if still open) and returns it with its items, oldest first. */
export async function closeDigest(store: StoreAdapter, digestId: string): Promise<{ digest: DigestsTable; items: DigestItemsTable[] } | undefined> {
  return store.transaction(async (trx) => {
    await trx.updateTable('digests').set({ status: 'closed' }).where('id', '=', digestId).where('status', '=', 'open').execute();
    const digest = await trx.selectFrom('digests').selectAll().where('id', '=', digestId).executeTakeFirst();
    if (!digest) return undefined;
    const items = await trx.selectFrom('digest_items').selectAll().where('digest_id', '=', digestId).orderBy('created_at').orderBy('notification_id').execute();
    return { digest, items };
  });
}
