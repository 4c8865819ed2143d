import type { DeliveryMove } from '../domain/events.ts';
import type { Kysely } from 'kysely';
import type { Database, DeliveriesTable, DeliveryAttemptsTable, NotificationsTable } from '../store/schema.ts';
import { CANCELLABLE, type NotificationStatus } from '../domain/delivery-status.ts';
import type { StoreAdapter } from '../store/adapter.ts';
import { ofNotifications } from '../store/of-notifications.ts';

export interface NotificationRecord {
  notification: NotificationsTable;
  deliveries: DeliveriesTable[];
  attempts: DeliveryAttemptsTable[];
}

export async function getNotification(db: Kysely<Database>, workspaceId: string, id: string): Promise<NotificationRecord | undefined> {
  const notification = await db.selectFrom('notifications').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
  if (!notification) return undefined;
  const deliveries = await db.selectFrom('deliveries').selectAll().where(ofNotifications([id])).orderBy('id').execute();
  const attempts = deliveries.length
    ? await db.selectFrom('attempt_log').selectAll().where('delivery_id', 'in', deliveries.map((d) => d.id)).orderBy('id').execute()
    : [];
  return { notification, deliveries, attempts };
}

/** Up to `limit` notifications, newest first, strictly after the cursor id, with their deliveries. */
export async function listNotifications(
  db: Kysely<Database>,
  workspaceId: string,
  q: { recipient?: string | undefined; status?: NotificationStatus | undefined; before?: string | undefined; limit: number },
): Promise<{ notifications: NotificationsTable[]; deliveries: DeliveriesTable[] }> {
  let notifications: NotificationsTable[];
  if (q.recipient) {
    // The recipient's notifications (store/delivery-keys.ts), newest first: a page from each of
    // the two places that list them, each read backwards along its index
    // (notifications_recipient, notification_recipients' primary key), merged.
    let sole = db.selectFrom('notifications').selectAll().where('workspace_id', '=', workspaceId).where('recipient_id', '=', q.recipient);
    let listed = db
      .selectFrom('notification_recipients as nr')
      .innerJoin('notifications', 'notifications.id', 'nr.notification_id')
      .selectAll('notifications')
      .where('nr.workspace_id', '=', workspaceId)
      .where('nr.recipient_id', '=', q.recipient);
    if (q.status) {
      sole = sole.where('status', '=', q.status);
      listed = listed.where('notifications.status', '=', q.status);
    }
    if (q.before) {
      sole = sole.where('id', '<', q.before);
      listed = listed.where('nr.notification_id', '<', q.before);
    }
    const [a, b] = await Promise.all([sole.orderBy('id', 'desc').limit(q.limit).execute(), listed.orderBy('nr.notification_id', 'desc').limit(q.limit).execute()]);
    const byId = new Map([...a, ...b].map((n) => [n.id, n]));
    notifications = [...byId.values()].sort((x, y) => (x.id < y.id ? 1 : x.id > y.id ? -1 : 0)).slice(0, q.limit);
  } else {
    let query = db.selectFrom('notifications').selectAll().where('workspace_id', '=', workspaceId);
    if (q.status) query = query.where('status', '=', q.status);
    if (q.before) query = query.where('id', '<', q.before);
    notifications = await query.orderBy('id', 'desc').limit(q.limit).execute();
  }
  const deliveries = notifications.length
    ? await db.selectFrom('deliveries').selectAll().where(ofNotifications(notifications.map((n) => n.id))).orderBy('id').execute()
    : [];
  return { notifications, deliveries };
}

/**
 * Cancels whatever of a notification has not been sent: its deliveries that are waiting (pending,
 * failed between attempts, scheduled, throttled) become `cancelled`. A delivery being attempted
 * right now (`sending`, leased) is not stopped: it finishes or fails as usual. Returns undefined
 * for an unknown notification, else the deliveries it cancelled, with the status each had.
 */
export async function cancelNotification(store: StoreAdapter, workspaceId: string, id: string, now: number): Promise<DeliveryMove[] | undefined> {
  const cancelled = await store.transaction(async (trx) => {
    const n = await trx.selectFrom('notifications').select('id').where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
    if (!n) return undefined;
    // A topic send still fanning out: its remaining members get nothing. This comes first: it waits
    // for a fan-out batch in progress (the batch locks this row), whose deliveries the next
    // statement then sees and cancels.
    const f = await trx.updateTable('fanouts').set({ state: 'done', updated_at: now }).where('notification_id', '=', id).where('state', '=', 'pending').executeTakeFirst();
    const stopped = Number(f.numUpdatedRows) > 0;
    // The statuses before the move (RETURNING shows the new ones). A row claimed in between is
    // `sending`, not cancellable, and is left out by the UPDATE.
    const before = await trx
      .selectFrom('deliveries')
      .select(['id', 'status'])
      .where(ofNotifications([id]))
      .where('status', 'in', CANCELLABLE)
      .execute();
    const r = await trx
      .updateTable('deliveries')
      .set({ status: 'cancelled', reason: 'cancelled', lease_owner: null, completed_at: now, updated_at: now })
      .where(ofNotifications([id]))
      .where('status', 'in', CANCELLABLE)
      .returning(['id', 'recipient_id', 'channel'])
      .execute();
    const was = new Map(before.map((b) => [b.id, b.status]));
    const moves = r.map((d): DeliveryMove => ({ ...d, workspace_id: workspaceId, notification_id: id, from: was.get(d.id) ?? null, to: 'cancelled', reason: 'cancelled' }));
    return { moves, stopped };
  });
  if (cancelled === undefined) return undefined;
  if (cancelled.moves.length > 0 || cancelled.stopped) await store.refreshNotificationStatus([id]);
  // A stopped fan-out with nothing sent is cancelled, even with no deliveries made yet.
  if (cancelled.stopped) await store.db.updateTable('notifications').set({ status: 'cancelled' }).where('id', '=', id).where('status', '=', 'skipped').execute();
  return cancelled.moves;
}

/** The topic fan-out of a notification sent to a topic (its progress), if it is one. */
export async function getFanout(db: Kysely<Database>, notificationId: string): Promise<{ topic: string; state: string; recipients: number } | undefined> {
  return db.selectFrom('fanouts').select(['topic', 'state', 'recipients']).where('notification_id', '=', notificationId).executeTakeFirst();
}
