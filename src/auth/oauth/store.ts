// Queries of external sign-in: sign-ins in progress (oauth_states), linked identities, and
// organizations linked to GitHub organizations. None is on a hot path.

import type { Kysely } from 'kysely';
import type { Database, GithubOrgLinksTable, IdentitiesTable, OauthStatesTable } from '../../store/schema.ts';

export type IdentityRow = IdentitiesTable;
export type GithubLinkRow = GithubOrgLinksTable;

export async function insertState(db: Kysely<Database>, row: OauthStatesTable): Promise<void> {
  await db.insertInto('oauth_states').values(row).execute();
}

/**
 * Takes the sign-in `stateHash` out of the table and returns it. Contract: single use, also across
 * nodes: the row is deleted by this statement, so of two callbacks presenting the same state at
 * most one gets it. Expired rows are returned too (the caller refuses them).
 */
export async function takeState(db: Kysely<Database>, stateHash: string): Promise<OauthStatesTable | undefined> {
  return db.deleteFrom('oauth_states').where('state_hash', '=', stateHash).returningAll().executeTakeFirst();
}

export async function purgeStates(db: Kysely<Database>, now: number): Promise<void> {
  await db.deleteFrom('oauth_states').where('expires_at', '<', now).execute();
}

export async function findIdentity(db: Kysely<Database>, provider: string, subject: string): Promise<IdentityRow | undefined> {
  return db.selectFrom('identities').selectAll().where('provider', '=', provider).where('subject', '=', subject).executeTakeFirst();
}

export async function findUserIdentity(db: Kysely<Database>, userId: string, provider: string): Promise<IdentityRow | undefined> {
  return db.selectFrom('identities').selectAll().where('user_id', '=', userId).where('provider', '=', provider).orderBy('updated_at', 'desc').executeTakeFirst();
}

/** Links (provider, subject) to a user; false when that identity is linked already. */
export async function insertIdentity(db: Kysely<Database>, row: IdentityRow): Promise<boolean> {
  const r = await db.insertInto('identities').values(row).onConflict((oc) => oc.columns(['provider', 'subject']).doNothing()).executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
}

export async function updateIdentity(db: Kysely<Database>, provider: string, subject: string, set: { email: string | null; login: string | null; token: string | null }, now: number): Promise<void> {
  await db.updateTable('identities').set({ ...set, updated_at: now }).where('provider', '=', provider).where('subject', '=', subject).execute();
}

export async function getGithubLink(db: Kysely<Database>, workspaceId: string): Promise<GithubLinkRow | undefined> {
  return db.selectFrom('github_org_links').selectAll().where('workspace_id', '=', workspaceId).executeTakeFirst();
}

export async function putGithubLink(db: Kysely<Database>, row: Omit<GithubLinkRow, 'created_at' | 'updated_at'>, now: number): Promise<void> {
  await db
    .insertInto('github_org_links')
    .values({ ...row, created_at: now, updated_at: now })
    .onConflict((oc) => oc.column('workspace_id').doUpdateSet({ github_org: row.github_org, default_role: row.default_role, updated_at: now }))
    .execute();
}

export async function deleteGithubLink(db: Kysely<Database>, workspaceId: string): Promise<boolean> {
  const r = await db.deleteFrom('github_org_links').where('workspace_id', '=', workspaceId).executeTakeFirst();
  return Number(r.numDeletedRows) === 1;
}

/** Every organization linked to one of `githubOrgs` (lowercased logins). */
export async function githubLinksFor(db: Kysely<Database>, githubOrgs: string[]): Promise<GithubLinkRow[]> {
  if (githubOrgs.length === 0) return [];
  return db.selectFrom('github_org_links').selectAll().where('github_org', 'in', githubOrgs).orderBy('created_at').execute();
}

export async function anyGithubLinks(db: Kysely<Database>): Promise<boolean> {
  return (await db.selectFrom('github_org_links').select('workspace_id').limit(1).executeTakeFirst()) !== undefined;
}

export async function listUserIdentities(db: Kysely<Database>, userId: string): Promise<IdentityRow[]> {
  return db.selectFrom('identities').selectAll().where('user_id', '=', userId).orderBy('created_at').orderBy('provider').execute();
}

/**
 * Unlinks every identity of `provider` from the user unless that would leave no way to sign in
 * (no password and no identity of another provider). Contract: the user's row is written first in
 * the transaction, so concurrent unlinks of one user run one at a time (a row lock on PostgreSQL,
 * the write lock on SQLite) and cannot together remove the last way. 'none' when nothing of that
 * provider is linked, 'last' when refused, else how many were unlinked.
 */
export async function unlinkIdentities(db: Kysely<Database>, userId: string, provider: string, now: number): Promise<number | 'none' | 'last'> {
  return db.transaction().execute(async (tx) => {
    await tx.updateTable('users').set({ updated_at: now }).where('id', '=', userId).execute();
    const user = await tx.selectFrom('users').select('password_hash').where('id', '=', userId).executeTakeFirst();
    const ids = await tx.selectFrom('identities').select('provider').where('user_id', '=', userId).execute();
    const mine = ids.filter((i) => i.provider === provider).length;
    if (mine === 0) return 'none';
    if (!user?.password_hash && ids.length === mine) return 'last';
    await tx.deleteFrom('identities').where('user_id', '=', userId).where('provider', '=', provider).execute();
    return mine;
  });
}
