// Organizations (`workspaces` rows) and their members, for the organization routes.

import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../store/schema.ts';

export interface MemberRow {
  user_id: string;
  email: string;
  name: string;
  role: string;
  created_at: number;
}

export async function getOrganization(db: Kysely<Database>, id: string): Promise<{ id: string; name: string; created_at: number; require_totp: boolean } | undefined> {
  const r = await db.selectFrom('workspaces').select(['id', 'name', 'created_at', 'require_totp']).where('id', '=', id).executeTakeFirst();
  return r && { ...r, require_totp: Number(r.require_totp) === 1 };
}

export async function updateOrganization(db: Kysely<Database>, id: string, change: { name?: string | undefined; requireTotp?: boolean | undefined }): Promise<void> {
  const set = { ...(change.name !== undefined && { name: change.name }), ...(change.requireTotp !== undefined && { require_totp: change.requireTotp ? 1 : 0 }) };
  if (Object.keys(set).length > 0) await db.updateTable('workspaces').set(set).where('id', '=', id).execute();
}

export async function totpEnabled(db: Kysely<Database>, userId: string): Promise<boolean> {
  const r = await db.selectFrom('users').select('totp_enabled_at').where('id', '=', userId).executeTakeFirst();
  return r?.totp_enabled_at !== null && r?.totp_enabled_at !== undefined;
}

export async function listMembers(db: Kysely<Database>, workspaceId: string): Promise<MemberRow[]> {
  return db
    .selectFrom('memberships as m')
    .innerJoin('users as u', 'u.id', 'm.user_id')
    .select(['m.user_id', 'u.email', 'u.name', 'm.role', 'm.created_at'])
    .where('m.workspace_id', '=', workspaceId)
    .orderBy('m.created_at')
    .orderBy('m.user_id')
    .execute();
}

export async function userExists(db: Kysely<Database>, id: string): Promise<boolean> {
  return (await db.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
}

/**
 * Runs `fn` holding the organization's membership lock. Contract: two transactions that change the
 * members of one organization run one after the other, so the last-owner rule, checked inside,
 * holds under concurrency: on PostgreSQL the no-op update row-locks the organization's row until
 * commit; SQLite runs one write transaction at a time anyway.
 */
export async function withMembershipLock<T>(db: Kysely<Database>, workspaceId: string, fn: (tx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (tx) => {
    await tx.updateTable('workspaces').set((eb) => ({ name: eb.ref('name') })).where('id', '=', workspaceId).execute();
    return fn(tx);
  });
}

export async function countOwners(db: Kysely<Database>, workspaceId: string): Promise<number> {
  const r = await db.selectFrom('memberships').select((eb) => eb.fn.countAll<number>().as('n')).where('workspace_id', '=', workspaceId).where('role', '=', 'owner').executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function deleteMembership(db: Kysely<Database>, userId: string, workspaceId: string): Promise<boolean> {
  const r = await db.deleteFrom('memberships').where('user_id', '=', userId).where('workspace_id', '=', workspaceId).executeTakeFirst();
  return Number(r.numDeletedRows) === 1;
}
