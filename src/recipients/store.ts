import { OPERATOR_RECIPIENT } from '../domain/operator.ts';
import type { DeliveryMove } from '../domain/events.ts';
import { sql, type Kysely, type SqlBool } from 'kysely';
import type { Database, RecipientsTable } from '../store/schema.ts';
import type { StoreAdapter } from '../store/adapter.ts';
import { CANCELLABLE } from '../domain/delivery-status.ts';
import { ofNotifications } from '../store/of-notifications.ts';

/** Notifications per statement when a deleted recipient's deliveries are skipped. */
const DELETE_CHUNK = 200;

export async function getRecipient(db: Kysely<Database>, workspaceId: string, id: string): Promise<RecipientsTable | undefined> {
  return db.selectFrom('recipients').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
}

/**
 * Inserts or replaces a recipient; returns whether it was created. The insert decides (ON CONFLICT
 * DO NOTHING), so of concurrent first PUTs of one id exactly one reports created; the others
 * replace it (its created_at kept).
 */
export async function upsertRecipient(db: Kysely<Database>, row: RecipientsTable): Promise<boolean> {
  const { workspace_id: _w, id: _i, created_at: _c, ...changes } = row;
  const inserted = await db
    .insertInto('recipients')
    .values(row)
    .onConflict((oc) => oc.columns(['workspace_id', 'id']).doNothing())
    .returning('id')
    .executeTakeFirst();
  if (inserted) return true;
  await db.updateTable('recipients').set(changes).where('workspace_id', '=', row.workspace_id).where('id', '=', row.id).execute();
  return false;
}

/**
 * A page of a workspace's recipients in id order, `limit` of them after the id `after` (keyset).
 * With `q`, only those whose id, name or email contains `q`, ignoring letter case (ASCII letters on
 * SQLite, whose LIKE folds only those; every letter on PostgreSQL, with ILIKE). The primary key
 * (workspace_id, id) serves the order and the cursor; no index can serve a substring, so with `q`
 * the query walks the workspace's recipients from the cursor in id order until the page is full
 * (fine for a listing people page through; a send never does this).
 */
export async function listRecipients(
  db: Kysely<Database>,
  dialect: 'sqlite' | 'postgres',
  workspaceId: string,
  opts: { after?: string | undefined; limit: number; q?: string | undefined },
): Promise<RecipientsTable[]> {
  // Reserved recipients are not recipients: the operator one (alerts/store.ts) is the
  // operator_webhook setting, `_fwd_…` ones are subscriptions' forward addresses (subscriptions/store.ts).
  let query = db
    .selectFrom('recipients')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('id', '<>', OPERATOR_RECIPIENT)
    .where(sql<string>`substr(id, 1, 5)`, '<>', '_fwd_');
  if (opts.after !== undefined) query = query.where('id', '>', opts.after);
  if (opts.q !== undefined) {
    const pattern = `%${opts.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const like = dialect === 'postgres' ? sql`ILIKE` : sql`LIKE`;
    query = query.where((eb) => eb.or((['id', 'name', 'email'] as const).map((col) => sql<SqlBool>`${sql.ref(col)} ${like} ${pattern} ESCAPE '\\'`)));
  }
  return query.orderBy('id').limit(opts.limit).execute();
}

/**
 * Deletes a recipient and everything personal about it. Deliveries not yet sent are skipped
 * (reason `recipient_deleted`); the notification history keeps only the recipient's id.
 */
export async function deleteRecipient(store: StoreAdapter, workspaceId: string, id: string): Promise<DeliveryMove[] | undefined> {
  const { deleted, moves } = await store.transaction(async (trx) => {
    const r = await trx.deleteFrom('recipients').where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) return { deleted: false, moves: [] as DeliveryMove[] };
    await trx.deleteFrom('devices').where('workspace_id', '=', workspaceId).where('recipient_id', '=', id).execute();
    await trx.deleteFrom('preferences').where('workspace_id', '=', workspaceId).where('recipient_id', '=', id).execute();
    await trx.deleteFrom('topic_members').where('workspace_id', '=', workspaceId).where('recipient_id', '=', id).execute();
    await trx.deleteFrom('dedupe_keys').where('workspace_id', '=', workspaceId).where('recipient_id', '=', id).execute();
    const now = Date.now();
    // The recipient's deliveries are found through its notifications (store/delivery-keys.ts), a
    // chunk of notifications per statement; their statuses are read first (RETURNING shows the
    // new ones) for the moves reported.
    const notifications = [
      ...(await trx.selectFrom('notifications').select('id as notification_id').where('workspace_id', '=', workspaceId).where('recipient_id', '=', id).execute()),
      ...(await trx.selectFrom('notification_recipients').select('notification_id').where('workspace_id', '=', workspaceId).where('recipient_id', '=', id).execute()),
    ];
    const skipped: DeliveryMove[] = [];
    for (let i = 0; i < notifications.length; i += DELETE_CHUNK) {
      const chunk = notifications.slice(i, i + DELETE_CHUNK).map((n) => n.notification_id);
      const before = await trx
        .selectFrom('deliveries')
        .select(['id', 'status'])
        .where(ofNotifications(chunk))
        .where('workspace_id', '=', workspaceId)
        .where('recipient_id', '=', id)
        .where('status', 'in', CANCELLABLE)
        .execute();
      if (before.length === 0) continue;
      const rows = await trx
        .updateTable('deliveries')
        .set({ status: 'skipped', reason: 'recipient_deleted', updated_at: now, completed_at: now })
        .where(ofNotifications(chunk))
        .where('workspace_id', '=', workspaceId)
        .where('recipient_id', '=', id)
        .where('status', 'in', CANCELLABLE)
        .returning(['id', 'notification_id', 'channel'])
        .execute();
      const was = new Map(before.map((b) => [b.id, b.status]));
      for (const d of rows) skipped.push({ ...d, workspace_id: workspaceId, recipient_id: id, from: was.get(d.id) ?? null, to: 'skipped', reason: 'recipient_deleted' });
    }
    return { deleted: true, moves: skipped };
  });
  if (!deleted) return undefined;
  const notificationIds = [...new Set(moves.map((m) => m.notification_id))];
  if (notificationIds.length > 0) await store.refreshNotificationStatus(notificationIds);
  return moves;
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
