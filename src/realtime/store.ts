// Real-time queries (tables of migration 0019): verification keys and settings per organization,
// inbox items, direct messages.

import type { Kysely } from 'kysely';
import type { Database, InboxItemsTable, RealtimeKeysTable, RealtimeMessagesTable, RealtimeSettingsTable } from '../store/schema.ts';

export type KeyRow = RealtimeKeysTable;

/** The organization's keys that still verify at `now` (current ones and rotated ones in their overlap), newest first. */
export function liveKeys(db: Kysely<Database>, workspaceId: string, now: number): Promise<KeyRow[]> {
  return db
    .selectFrom('realtime_keys')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .orderBy('created_at', 'desc')
    .execute();
}

/** Which organization a key id belongs to, whatever its state. */
export async function keyOwner(db: Kysely<Database>, kid: string): Promise<string | undefined> {
  const r = await db.selectFrom('realtime_keys').select('workspace_id').where('kid', '=', kid).executeTakeFirst();
  return r?.workspace_id;
}

/**
 * Adds an HS256 secret as the current one. With `overlap`, the previous current secrets keep
 * verifying for that long; the caller holds no lock, so two concurrent rotations both add a
 * secret and both overlap (the newest signs).
 */
export async function addSecret(db: Kysely<Database>, row: KeyRow, overlapMs: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable('realtime_keys')
      .set({ expires_at: row.created_at + overlapMs })
      .where('workspace_id', '=', row.workspace_id)
      .where('alg', '=', 'HS256')
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', row.created_at + overlapMs)]))
      .execute();
    await trx.insertInto('realtime_keys').values(row).execute();
  });
}

/** Replaces the organization's registered public keys. */
export async function replacePublicKeys(db: Kysely<Database>, workspaceId: string, rows: KeyRow[]): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('realtime_keys').where('workspace_id', '=', workspaceId).where('alg', '!=', 'HS256').execute();
    if (rows.length) await trx.insertInto('realtime_keys').values(rows).execute();
  });
}

export async function getSettings(db: Kysely<Database>, workspaceId: string): Promise<RealtimeSettingsTable | undefined> {
  return db.selectFrom('realtime_settings').selectAll().where('workspace_id', '=', workspaceId).executeTakeFirst();
}

export async function putSettings(db: Kysely<Database>, row: RealtimeSettingsTable): Promise<void> {
  const { workspace_id, ...changes } = row;
  await db.insertInto('realtime_settings').values(row).onConflict((oc) => oc.column('workspace_id').doUpdateSet(changes)).execute();
}

// --- inbox items


export type InboxRow = InboxItemsTable;
export type InboxStatusFilter = 'unread' | 'read' | 'archived' | 'all';

/** Stores the item unless one with its id exists (a retried delivery stores it once). True when stored now. */
export async function insertInboxItem(db: Kysely<Database>, row: InboxRow): Promise<boolean> {
  const r = await db.insertInto('inbox_items').values(row).onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
}

export function getInboxItem(db: Kysely<Database>, workspaceId: string, recipientId: string, id: string): Promise<InboxRow | undefined> {
  return db.selectFrom('inbox_items').selectAll().where('id', '=', id).where('workspace_id', '=', workspaceId).where('recipient_id', '=', recipientId).executeTakeFirst();
}

/** A page of the recipient's items, newest first, ids below `before` (the cursor). */
export function listInbox(db: Kysely<Database>, workspaceId: string, recipientId: string, status: InboxStatusFilter, before: string | undefined, limit: number): Promise<InboxRow[]> {
  let q = db.selectFrom('inbox_items').selectAll().where('workspace_id', '=', workspaceId).where('recipient_id', '=', recipientId);
  if (status === 'unread') q = q.where('read_at', 'is', null).where('archived_at', 'is', null);
  else if (status === 'read') q = q.where('read_at', 'is not', null).where('archived_at', 'is', null);
  else if (status === 'archived') q = q.where('archived_at', 'is not', null);
  if (before !== undefined) q = q.where('id', '<', before);
  return q.orderBy('id', 'desc').limit(limit).execute();
}

export async function countUnread(db: Kysely<Database>, workspaceId: string, recipientId: string): Promise<number> {
  const r = await db
    .selectFrom('inbox_items')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('workspace_id', '=', workspaceId)
    .where('recipient_id', '=', recipientId)
    .where('read_at', 'is', null)
    .where('archived_at', 'is', null)
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}

/**
 * Sets `column` to `now` on the recipient's items among `ids` (every item when `ids` is
 * undefined) where it is not set yet; `read_at` also leaves archived items alone. Returns the
 * delivery ids of the items it changed.
 */
export async function markInbox(db: Kysely<Database>, workspaceId: string, recipientId: string, ids: readonly string[] | undefined, column: 'seen_at' | 'read_at' | 'archived_at', now: number): Promise<(string | null)[]> {
  // No transaction: the update repeats the select's conditions, so two concurrent marks change each
  // item once; both may return its delivery, and moving a delivery to `read` twice is a no-op.
  let q = db.selectFrom('inbox_items').select(['id', 'delivery_id']).where('workspace_id', '=', workspaceId).where('recipient_id', '=', recipientId).where(column, 'is', null);
  if (ids) q = q.where('id', 'in', ids);
  if (column === 'read_at') q = q.where('archived_at', 'is', null);
  const rows = await q.execute();
  if (rows.length === 0) return [];
  const set = column === 'read_at' ? { read_at: now, seen_at: now } : column === 'archived_at' ? { archived_at: now } : { seen_at: now };
  await db.updateTable('inbox_items').set(set).where('id', 'in', rows.map((r) => r.id)).where(column, 'is', null).execute();
  return rows.map((r) => r.delivery_id);
}

/** Clears `read_at` of the recipient's items among `ids` (marked unread again). */
export async function markUnread(db: Kysely<Database>, workspaceId: string, recipientId: string, ids: readonly string[]): Promise<number> {
  const r = await db.updateTable('inbox_items').set({ read_at: null }).where('workspace_id', '=', workspaceId).where('recipient_id', '=', recipientId).where('id', 'in', ids).where('read_at', 'is not', null).executeTakeFirst();
  return Number(r.numUpdatedRows);
}

export type MessageRow = RealtimeMessagesTable;

/**
 * Stores a direct message unless the sender already sent one with its client_id; answers the
 * stored row (the earlier one on a retry) and whether this call created it.
 */
export async function putMessage(db: Kysely<Database>, row: MessageRow): Promise<{ row: MessageRow; created: boolean }> {
  await db.insertInto('realtime_messages').values(row).onConflict((oc) => oc.columns(['workspace_id', 'sender_id', 'client_id']).doNothing()).execute();
  const stored = await db
    .selectFrom('realtime_messages')
    .selectAll()
    .where('workspace_id', '=', row.workspace_id)
    .where('sender_id', '=', row.sender_id)
    .where('client_id', '=', row.client_id)
    .executeTakeFirstOrThrow();
  return { row: stored, created: stored.id === row.id };
}

/** The messages between `me` and `peer` (either way), newest first, older than the message `before`. */
export function conversation(db: Kysely<Database>, workspaceId: string, me: string, peer: string, before: string | undefined, limit: number): Promise<MessageRow[]> {
  let q = db
    .selectFrom('realtime_messages')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where((eb) => eb.or([eb.and([eb('sender_id', '=', me), eb('target_id', '=', peer)]), eb.and([eb('sender_id', '=', peer), eb('target_id', '=', me)])]));
  if (before !== undefined) q = q.where('id', '<', before);
  return q.orderBy('id', 'desc').limit(limit).execute();
}
