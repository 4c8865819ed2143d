// Real-time queries (tables of migration 0019): verification keys and settings per organization.

import type { Kysely } from 'kysely';
import type { Database, RealtimeKeysTable, RealtimeSettingsTable } from '../store/schema.ts';

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
