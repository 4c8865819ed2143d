import type { Kysely } from 'kysely';
import type { Database, RecipientsTable } from './schema.ts';
import type { StoreAdapter } from './adapter.ts';
import { CANCELLABLE } from '../domain/delivery-status.ts';
import { ofNotifications } from './delivery-keys.ts';

/** Notifications per statement when a deleted recipient's deliveries are skipped. */
const DELETE_CHUNK = 200;

export async function getRecipient(db: Kysely<Database>, workspaceId: string, id: string): Promise<RecipientsTable | undefined> {
  return db.selectFrom('recipients').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
}

/** Inserts or replaces a recipient; returns whether it was created. */
export async function upsertRecipient(db: Kysely<Database>, row: RecipientsTable): Promise<void> {
  const { workspace_id: _w, id: _i, created_at: _c, ...changes } = row;
  await db
    .insertInto('recipients')
    .values(row)
    .onConflict((oc) => oc.columns(['workspace_id', 'id']).doUpdateSet(changes))
    .execute();
}

/**
 * Deletes a recipient and everything personal about it. Deliveries not yet sent are skipped
 * (reason `recipient_deleted`); the notification history keeps only the recipient's id.
 */
export async function deleteRecipient(store: StoreAdapter, workspaceId: string, id: string): Promise<boolean> {
  const { deleted, notificationIds } = await store.transaction(async (trx) => {
    const r = await trx.deleteFrom('recipients').where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) return { deleted: false, notificationIds: [] as string[] };
    await trx.deleteFrom('devices').where('workspace_id', '=', workspaceId).where('recipient_id', '=', id).execute();
    await trx.deleteFrom('preferences').where('workspace_id', '=', workspaceId).where('recipient_id', '=', id).execute();
    await trx.deleteFrom('topic_members').where('workspace_id', '=', workspaceId).where('recipient_id', '=', id).execute();
    await trx.deleteFrom('dedupe_keys').where('workspace_id', '=', workspaceId).where('recipient_id', '=', id).execute();
    const now = Date.now();
    // The recipient's deliveries are found through its notifications (store/delivery-keys.ts), a
    // chunk of notifications per statement.
    const notifications = [
      ...(await trx.selectFrom('notifications').select('id as notification_id').where('workspace_id', '=', workspaceId).where('recipient_id', '=', id).execute()),
      ...(await trx.selectFrom('notification_recipients').select('notification_id').where('workspace_id', '=', workspaceId).where('recipient_id', '=', id).execute()),
    ];
    const skipped: string[] = [];
    for (let i = 0; i < notifications.length; i += DELETE_CHUNK) {
      const rows = await trx
        .updateTable('deliveries')
        .set({ status: 'skipped', reason: 'recipient_deleted', updated_at: now, completed_at: now })
        .where(ofNotifications(notifications.slice(i, i + DELETE_CHUNK).map((n) => n.notification_id)))
        .where('workspace_id', '=', workspaceId)
        .where('recipient_id', '=', id)
        .where('status', 'in', CANCELLABLE)
        .returning('notification_id')
        .execute();
      for (const r of rows) skipped.push(r.notification_id);
    }
    return { deleted: true, notificationIds: [...new Set(skipped)] };
  });
  if (notificationIds.length > 0) await store.refreshNotificationStatus(notificationIds);
  return deleted;
}

/**
 * Disables a recipient's address on `channel` (slack, discord, pushover, sms, kakao) after the
 * vendor reported it gone; a later PUT of the recipient with that address re-enables it.
 */
export async function disableRecipientAddress(db: Kysely<Database>, workspaceId: string, id: string, channel: string, now: number): Promise<void> {
  const row = await db.selectFrom('recipients').select('address_disabled').where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
  if (!row) return;
  const disabled = new Set((row.address_disabled ?? '').split(' ').filter(Boolean));
  if (disabled.has(channel)) return;
  disabled.add(channel);
  await db
    .updateTable('recipients')
    .set({ address_disabled: [...disabled].sort().join(' '), updated_at: now })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .execute();
}

/** Disables a recipient's webhook (the receiver answered 410 Gone); a later PUT re-enables it. */
export async function disableRecipientWebhook(db: Kysely<Database>, workspaceId: string, id: string, reason: string, now: number): Promise<void> {
  await db
    .updateTable('recipients')
    .set({ webhook_disabled_at: now, webhook_disabled_reason: reason, updated_at: now })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .where('webhook_disabled_at', 'is', null)
    .execute();
}
