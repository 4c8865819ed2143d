import type { Kysely } from 'kysely';
import type { ApiKeysTable, Database } from '../store/schema.ts';

export async function insertApiKey(db: Kysely<Database>, row: ApiKeysTable): Promise<void> {
  await db.insertInto('api_keys').values(row).onConflict((oc) => oc.column('hash').doNothing()).execute();
}

export async function findApiKeyByHash(db: Kysely<Database>, hash: string): Promise<ApiKeysTable | undefined> {
  return db.selectFrom('api_keys').selectAll().where('hash', '=', hash).where('revoked_at', 'is', null).executeTakeFirst();
}

/** Whether any API key exists, in any workspace, revoked or not (a first run has none). */
export async function anyApiKeyExists(db: Kysely<Database>): Promise<boolean> {
  return (await db.selectFrom('api_keys').select('id').limit(1).executeTakeFirst()) !== undefined;
}

export async function listApiKeys(db: Kysely<Database>, workspaceId: string): Promise<ApiKeysTable[]> {
  return db.selectFrom('api_keys').selectAll().where('workspace_id', '=', workspaceId).orderBy('id').execute();
}

export async function revokeApiKey(db: Kysely<Database>, workspaceId: string, id: string, now: number): Promise<boolean> {
  const r = await db
    .updateTable('api_keys')
    .set({ revoked_at: now })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function touchApiKey(db: Kysely<Database>, id: string, now: number): Promise<void> {
  await db.updateTable('api_keys').set({ last_used_at: now }).where('id', '=', id).execute();
}
