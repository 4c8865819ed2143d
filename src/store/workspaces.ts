import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';
import { ensureDefaultKinds } from '../kinds/store.ts';

/** The workspace that exists from first start; keys created without a workspace belong to it. */
export const DEFAULT_WORKSPACE_ID = 'ws_default';

export async function ensureDefaultWorkspace(db: Kysely<Database>): Promise<void> {
  await db
    .insertInto('workspaces')
    .values({ id: DEFAULT_WORKSPACE_ID, name: 'Default', created_at: Date.now() })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
  await ensureDefaultKinds(db, DEFAULT_WORKSPACE_ID);
}
