// Devices: push addresses registered under a recipient (table devices).
//
// A raw token is unique per workspace and platform (by its hash): registering a token that exists
// moves it to the newest owner and re-enables it, so a phone that changes hands (or an app that
// logs another user in) stops receiving the previous user's notifications.

import type { Kysely } from 'kysely';
import type { Database, DevicesTable } from '../store/schema.ts';

/** An active device of a recipient, for routing. */
export interface RecipientDevice {
  id: string;
  recipient_id: string;
  platform: string;
}

/** Registers `row`, or moves the device with the same token hash to row.recipient_id. Returns the stored row. */
export async function registerDevice(db: Kysely<Database>, row: DevicesTable): Promise<{ device: DevicesTable; created: boolean; movedFrom: string | null }> {
  const existing = await db
    .selectFrom('devices')
    .selectAll()
    .where('workspace_id', '=', row.workspace_id)
    .where('platform', '=', row.platform)
    .where('token_hash', '=', row.token_hash)
    .executeTakeFirst();
  if (!existing) {
    const inserted = await db
      .insertInto('devices')
      .values(row)
      .onConflict((oc) => oc.columns(['workspace_id', 'platform', 'token_hash']).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0) return { device: row, created: true, movedFrom: null };
    // Registered concurrently: fall through to the move.
    return registerDevice(db, row);
  }
  const moved = { recipient_id: row.recipient_id, token: row.token, app: row.app, label: row.label, updated_at: row.updated_at, disabled_at: null, disabled_reason: null };
  await db.updateTable('devices').set(moved).where('id', '=', existing.id).execute();
  return { device: { ...existing, ...moved }, created: false, movedFrom: existing.recipient_id === row.recipient_id ? null : existing.recipient_id };
}

export async function listDevices(db: Kysely<Database>, workspaceId: string, recipientId: string): Promise<DevicesTable[]> {
  return db
    .selectFrom('devices')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('recipient_id', '=', recipientId)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

export async function deleteDevice(db: Kysely<Database>, workspaceId: string, recipientId: string, id: string): Promise<boolean> {
  const r = await db.deleteFrom('devices').where('workspace_id', '=', workspaceId).where('recipient_id', '=', recipientId).where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Marks a device gone (the vendor said so); routing skips it until it is registered again. */
export async function disableDevice(db: Kysely<Database>, id: string, reason: string, now: number): Promise<boolean> {
  const r = await db.updateTable('devices').set({ disabled_at: now, disabled_reason: reason, updated_at: now }).where('id', '=', id).where('disabled_at', 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** The active devices of a workspace's recipients among `ids`, on `platforms`, oldest first. */
export async function findActiveDevices(db: Kysely<Database>, workspaceId: string, ids: readonly string[], platforms: readonly string[]): Promise<RecipientDevice[]> {
  if (ids.length === 0 || platforms.length === 0) return [];
  return db
    .selectFrom('devices')
    .select(['id', 'recipient_id', 'platform'])
    .where('workspace_id', '=', workspaceId)
    .where('recipient_id', 'in', ids)
    .where('platform', 'in', platforms as DevicesTable['platform'][])
    .where('disabled_at', 'is', null)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}
