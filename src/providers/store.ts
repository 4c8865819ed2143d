// Workspace provider credentials (table providers). The config column is sealed JSON; callers
// seal and open it (providers/service.ts).

import type { Kysely } from 'kysely';
import type { Database, ProvidersTable } from '../store/schema.ts';

export async function listProviders(db: Kysely<Database>, workspaceId: string): Promise<ProvidersTable[]> {
  return db.selectFrom('providers').selectAll().where('workspace_id', '=', workspaceId).orderBy('provider').execute();
}

export async function getProvider(db: Kysely<Database>, workspaceId: string, provider: string): Promise<ProvidersTable | undefined> {
  return db.selectFrom('providers').selectAll().where('workspace_id', '=', workspaceId).where('provider', '=', provider).executeTakeFirst();
}

/** Inserts or replaces; returns whether it was created. */
export async function putProvider(db: Kysely<Database>, row: ProvidersTable): Promise<boolean> {
  const existing = await getProvider(db, row.workspace_id, row.provider);
  await db
    .insertInto('providers')
    .values(row)
    .onConflict((oc) => oc.columns(['workspace_id', 'provider']).doUpdateSet({ config: row.config, base_url: row.base_url, updated_at: row.updated_at }))
    .execute();
  return !existing;
}

export async function deleteProvider(db: Kysely<Database>, workspaceId: string, provider: string): Promise<boolean> {
  const r = await db.deleteFrom('providers').where('workspace_id', '=', workspaceId).where('provider', '=', provider).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}
