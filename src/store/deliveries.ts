// What happens to a delivery after its attempt: vendor reports (callbacks, receipts) that move a
// `sent` delivery on, receipts to follow, and fallback deliveries. Dialect-neutral (Kysely).

import type { DeliveryMove } from '../domain/events.ts';
import type { Kysely } from 'kysely';
import { advanceAfterSent, type AfterSentStatus, type DeliveryStatus } from '../domain/delivery-status.ts';
import { deliveryId } from '../domain/ids.ts';
import { chainStep } from '../domain/routing.ts';
import type { StoreAdapter } from './adapter.ts';
import { ofNotifications } from './of-notifications.ts';
import { enqueueLeases, LEASE_KINDS, leaseRow } from './lease-queue.ts';
import type { Database, DeliveriesTable, ReceiptsTable } from './schema.ts';

export async function getDeliveryById(db: Kysely<Database>, id: string): Promise<DeliveriesTable | undefined> {
  return db.selectFrom('deliveries').selectAll().where('id', '=', id).executeTakeFirst();
}

/** What a delivery is (its id, workspace, notification, recipient and channel). */
export interface ReportedDelivery {
  id: string;
  workspace_id: string;
  notification_id: string;
  recipient_id: string;
  channel: string;
}

/**
 * Applies a vendor's report on a delivery: moves it to `next` if the state machine allows it
 * (forward only, so repeated and reordered reports are no-ops) and records `detail`. Returns the
 * status the delivery has afterwards, whether it moved and from which status, the delivery, and (routing "first") the chain's moves and the channels whose
 * deliveries the move made due. The notification's status is refreshed when it moved.
 */
export async function reportDelivery(
  store: StoreAdapter,
  deliveryId: string,
  next: AfterSentStatus,
  detail: Record<string, unknown> | undefined,
  now: number,
): Promise<{ moved: boolean; status: DeliveryStatus; from: DeliveryStatus; delivery: ReportedDelivery; woken: string[]; chain: DeliveryMove[] } | undefined> {
  const result = await store.transaction(async (trx) => {
    const d = await trx
      .selectFrom('deliveries')
      .innerJoin('notifications', 'notifications.id', 'deliveries.notification_id')
      .select(['deliveries.status', 'deliveries.notification_id', 'deliveries.status_detail', 'notifications.routing', 'deliveries.workspace_id', 'deliveries.recipient_id', 'deliveries.channel'])
      .where('deliveries.id', '=', deliveryId)
      .executeTakeFirst();
    if (!d) return undefined;
    const delivery: ReportedDelivery = { id: deliveryId, workspace_id: d.workspace_id, notification_id: d.notification_id, recipient_id: d.recipient_id, channel: d.channel };
    if (!advanceAfterSent(d.status, next)) return { moved: false, status: d.status, from: d.status, delivery, notificationId: d.notification_id, routing: d.routing };
    const merged = { ...(d.status_detail ? (JSON.parse(d.status_detail) as Record<string, unknown>) : {}), ...detail };
    const r = await trx
      .updateTable('deliveries')
      .set({ status: next, status_detail: Object.keys(merged).length ? JSON.stringify(merged) : null, updated_at: now })
      .where('id', '=', deliveryId)
      .where('status', '=', d.status)
      .executeTakeFirst();
    return { moved: Number(r.numUpdatedRows) > 0, status: next, from: d.status, delivery, notificationId: d.notification_id, routing: d.routing };
  });
  if (!result) return undefined;
  const { from, delivery } = result;
  if (!result.moved) return { moved: false, status: result.status, from, delivery, woken: [], chain: [] };
  await store.refreshNotificationStatus([result.notificationId]);
  const { woken, moves } = result.routing === 'first' ? await advanceChain(store, deliveryId, now) : { woken: [], moves: [] };
  return { moved: true, status: result.status, from, delivery, woken, chain: moves };
}

/**
 * Records a receipt to follow, its first check due at `next_check_at`: the receipts row and its
 * lease-queue row (kind receipt, key the delivery id; a free one takes the new due time). The
 * lease row goes first: if the receipt's write then fails, the check finds no receipt and
 * completes the lease.
 */
export async function putReceipt(db: Kysely<Database>, row: ReceiptsTable & { next_check_at: number }): Promise<void> {
  const { next_check_at, ...receipt } = row;
  await enqueueLeases(db, [leaseRow(LEASE_KINDS.receipt, row.delivery_id, next_check_at, row.created_at)]);
  await db
    .insertInto('receipts')
    .values(receipt)
    .onConflict((oc) => oc.column('delivery_id').doUpdateSet({ receipt: row.receipt, expires_at: row.expires_at }))
    .execute();
}

/** The receipts of `deliveryIds` (those that still have one). */
export async function receiptsOf(db: Kysely<Database>, deliveryIds: readonly string[]): Promise<ReceiptsTable[]> {
  if (deliveryIds.length === 0) return [];
  return db.selectFrom('receipts').selectAll().where('delivery_id', 'in', [...deliveryIds]).execute();
}

export async function deleteReceipt(db: Kysely<Database>, deliveryId: string): Promise<void> {
  await db.deleteFrom('receipts').where('delivery_id', '=', deliveryId).execute();
}

/**
 * Creates the fallback delivery of `from`'s notification to the same recipient on `channel`, due
 * now, unless the notification already has a delivery to that recipient on that channel (so a
 * re-attempt after a crash does not create a second one). Returns the creation (a move from no
 * status to `pending`), or undefined when nothing was created.
 */
export async function createFallbackDelivery(store: StoreAdapter, from: { id: string; workspace_id: string; notification_id: string; recipient_id: string }, channel: string, now: number): Promise<DeliveryMove | undefined> {
  return store.transaction(async (trx) => {
    const existing = await trx
      .selectFrom('deliveries')
      .select('id')
      .where(ofNotifications([from.notification_id]))
      .where('recipient_id', '=', from.recipient_id)
      .where('channel', '=', channel)
      .executeTakeFirst();
    if (existing) return undefined;
    const id = deliveryId(from.notification_id);
    const reason = `fallback_from:${from.id}`;
    await store.insertDeliveries(trx, [{
      id,
      workspace_id: from.workspace_id,
      notification_id: from.notification_id,
      recipient_id: from.recipient_id,
      channel,
      device_id: null,
      after_id: null,
      content: null,
      status: 'pending',
      reason,
      attempts: 0,
      run_at: now,
      lease_owner: null,
      error_class: null,
      last_error: null,
      provider_message_id: null,
      created_at: now,
      updated_at: now,
      completed_at: null,
    }]);
    await trx
      .updateTable('notifications')
      .set((eb) => ({ delivery_count: eb('delivery_count', '+', 1) }))
      .where('id', '=', from.notification_id)
      .execute();
    const created: DeliveryMove = { id, workspace_id: from.workspace_id, notification_id: from.notification_id, recipient_id: from.recipient_id, channel, from: null, to: 'pending', reason };
    return created;
  });
}

/**
 * Routing "first": after a delivery of a chain reached a new status, moves the chain on. The
 * delivery's step is its notification's deliveries to the same recipient on the same channel;
 * where it stands is domain/routing.ts chainStep.
 * - some delivery of the step succeeded: every `standby` delivery of that recipient in the
 *   notification becomes `skipped` (reason earlier_channel_sent);
 * - every delivery of the step failed: the deliveries waiting for it (after_id in the step),
 *   `standby`, or skipped as earlier_channel_sent (a success later reported undelivered), become
 *   `pending`, due now;
 * - otherwise (part of the step is still under way) nothing changes.
 * Returns the channels of deliveries made due, and the moves made. Idempotent: running it again
 * changes nothing more.
 */
export async function advanceChain(store: StoreAdapter, deliveryId: string, now: number): Promise<{ woken: string[]; moves: DeliveryMove[] }> {
  const result = await store.transaction(async (trx) => {
    const d = await trx.selectFrom('deliveries').select(['workspace_id', 'notification_id', 'recipient_id', 'channel']).where('id', '=', deliveryId).executeTakeFirst();
    if (!d) return { woken: [] as string[], moves: [] as DeliveryMove[] };
    const move = (from: DeliveryStatus, to: DeliveryStatus, reason: string | null) => (r: { id: string; channel: string }): DeliveryMove => ({
      id: r.id,
      workspace_id: d.workspace_id,
      notification_id: d.notification_id,
      recipient_id: d.recipient_id,
      channel: r.channel,
      from,
      to,
      reason,
    });
    const step = await trx
      .selectFrom('deliveries')
      .select(['id', 'status'])
      .where(ofNotifications([d.notification_id]))
      .where('recipient_id', '=', d.recipient_id)
      .where('channel', '=', d.channel)
      .execute();
    const where = chainStep(step.map((s) => s.status));
    if (where === 'succeeded') {
      const skipped = await trx
        .updateTable('deliveries')
        .set({ status: 'skipped', reason: 'earlier_channel_sent', completed_at: now, updated_at: now })
        .where(ofNotifications([d.notification_id]))
        .where('recipient_id', '=', d.recipient_id)
        .where('status', '=', 'standby')
        .returning(['id', 'channel'])
        .execute();
      return { woken: [], moves: skipped.map(move('standby', 'skipped', 'earlier_channel_sent')) };
    }
    if (where === 'under_way') return { woken: [], moves: [] };
    // Two statements, so that each move's previous status is known.
    const promote = (from: 'standby' | 'skipped') =>
      trx
        .updateTable('deliveries')
        .set({ status: 'pending', reason: null, run_at: now, completed_at: null, updated_at: now })
        .where(ofNotifications([d.notification_id]))
        .where('after_id', 'in', step.map((s) => s.id))
        .where((eb) => (from === 'standby' ? eb('status', '=', 'standby') : eb.and([eb('status', '=', 'skipped'), eb('reason', '=', 'earlier_channel_sent')])))
        .returning(['id', 'channel'])
        .execute();
    const moves = [...(await promote('standby')).map(move('standby', 'pending', null)), ...(await promote('skipped')).map(move('skipped', 'pending', null))];
    return { woken: [...new Set(moves.map((m) => m.channel))], moves };
  });
  if (result.moves.length > 0) await store.refreshNotificationStatus([result.moves[0]!.notification_id]);
  return result;
}
