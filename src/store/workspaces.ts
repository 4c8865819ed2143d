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

/**
 * Every table holding an organization's rows by `workspace_id`, children before parents. The audit
 * log is not among them: it is append-only and outlives what it records (HERALD_AUDIT_RETENTION
 * purges it). test/store/workspace-tables.test.ts checks this list against the schema.
 */
export const WORKSPACE_TABLES = [
  'delivery_attempts', 'receipts', 'deliveries', 'notification_recipients', 'idempotency_keys', 'dedupe_keys',
  'fanouts', 'digests', 'notifications', 'inbox_items', 'realtime_messages', 'realtime_keys', 'realtime_settings',
  'devices', 'preferences', 'topic_members', 'topics', 'recipients', 'templates', 'kinds', 'providers', 'workspace_settings',
  'dlq_jobs', 'subscription_runs', 'subscriptions', 'inbound_consumer_events', 'inbound_consumers', 'inbound_events', 'inbound_sources',
  'github_org_links', 'invitations', 'api_keys', 'memberships',
] as const satisfies readonly (keyof Database)[];

/** Tables scoped to an organization only through a parent row. */
export const WORKSPACE_CHILD_TABLES = ['digest_items', 'session_rotated_tokens'] as const satisfies readonly (keyof Database)[];

/**
 * Deletes the organization `id` and everything of it (WORKSPACE_TABLES, their children, and the
 * sessions acting in it), in one transaction; false when there is no such organization. Work
 * already leased by a worker finds its rows gone and ends there.
 */
export async function deleteWorkspace(db: Kysely<Database>, id: string): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    const exists = await tx.selectFrom('workspaces').select('id').where('id', '=', id).executeTakeFirst();
    if (!exists) return false;
    await tx.deleteFrom('digest_items').where('digest_id', 'in', tx.selectFrom('digests').select('id').where('workspace_id', '=', id)).execute();
    await tx.deleteFrom('session_rotated_tokens').where('session_id', 'in', tx.selectFrom('sessions').select('id').where('workspace_id', '=', id)).execute();
    await tx.deleteFrom('sessions').where('workspace_id', '=', id).execute();
    for (const table of WORKSPACE_TABLES) await tx.deleteFrom(table).where('workspace_id', '=', id).execute();
    await tx.deleteFrom('workspaces').where('id', '=', id).execute();
    return true;
  });
}
