// Accounts' queries: users, memberships, sessions (refresh-token families) and JWT signing keys.
// Organizations are `workspaces` rows. None of these is on the accept hot path; `userSession` runs
// once per request authenticated by an access token (one indexed join, see its contract).

import type { Kysely } from 'kysely';
import type { Database, MembershipsTable, SessionsTable, SigningKeysTable, UsersTable } from '../store/schema.ts';

export type UserRow = UsersTable;
/** A new user: the account-security columns start empty (null). */
export type NewUserRow = Omit<UsersTable, 'email_verified_at' | 'totp_secret' | 'totp_enabled_at' | 'totp_last_step'>;
export type SessionRow = SessionsTable;

/** Lowercased address: what makes two addresses the same user. */
export function emailKey(email: string): string {
  return email.trim().toLowerCase();
}

export async function findUserByEmail(db: Kysely<Database>, email: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('email_key', '=', emailKey(email)).executeTakeFirst();
}

export async function findUser(db: Kysely<Database>, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Inserts a user; false when the address is taken (the unique email_key decides, also across nodes). */
export async function insertUser(db: Kysely<Database>, u: NewUserRow): Promise<boolean> {
  const r = await db.insertInto('users').values(u).onConflict((oc) => oc.column('email_key').doNothing()).executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
}

export async function setUserPassword(db: Kysely<Database>, id: string, passwordHash: string, now: number): Promise<void> {
  await db.updateTable('users').set({ password_hash: passwordHash, updated_at: now }).where('id', '=', id).execute();
}

/** Sets `user`'s role in `workspace`, adding the membership if missing. */
export async function putMembership(db: Kysely<Database>, m: Omit<MembershipsTable, 'created_at' | 'updated_at'>, now: number): Promise<void> {
  await db
    .insertInto('memberships')
    .values({ ...m, created_at: now, updated_at: now })
    .onConflict((oc) => oc.columns(['user_id', 'workspace_id']).doUpdateSet({ role: m.role, updated_at: now }))
    .execute();
}

/** The user's organizations with their role there, oldest membership first. */
export async function listMemberships(db: Kysely<Database>, userId: string): Promise<{ workspace_id: string; name: string; role: string }[]> {
  return db
    .selectFrom('memberships as m')
    .innerJoin('workspaces as w', 'w.id', 'm.workspace_id')
    .select(['m.workspace_id', 'w.name', 'm.role'])
    .where('m.user_id', '=', userId)
    .orderBy('m.created_at')
    .orderBy('m.workspace_id')
    .execute();
}

export async function findMembership(db: Kysely<Database>, userId: string, workspaceId: string): Promise<string | undefined> {
  const r = await db.selectFrom('memberships').select('role').where('user_id', '=', userId).where('workspace_id', '=', workspaceId).executeTakeFirst();
  return r?.role;
}

export async function insertSession(db: Kysely<Database>, s: SessionRow): Promise<void> {
  await db.insertInto('sessions').values(s).execute();
}

/**
 * What a presented refresh token (its hash) is: the current token of a session (`current`), a token
 * a session has rotated away from (`rotated`: reuse), or nothing known.
 */
export async function findRefresh(db: Kysely<Database>, hash: string): Promise<{ kind: 'current' | 'rotated'; session: SessionRow } | undefined> {
  const current = await db.selectFrom('sessions').selectAll().where('refresh_hash', '=', hash).executeTakeFirst();
  if (current) return { kind: 'current', session: current };
  const old = await db
    .selectFrom('session_rotated_tokens as t')
    .innerJoin('sessions as s', 's.id', 't.session_id')
    .selectAll('s')
    .where('t.hash', '=', hash)
    .executeTakeFirst();
  return old ? { kind: 'rotated', session: old } : undefined;
}

/**
 * Rotates session `id` from refresh hash `from` to `to` (optionally acting in another
 * organization), recording `from` as rotated. Contract: compare-and-set on the current hash of a
 * live session, so of two rotations presenting the same token exactly one succeeds; false when the
 * session is revoked, expired, or no longer holds `from`.
 */
export async function rotateSession(db: Kysely<Database>, id: string, from: string, to: string, now: number, workspaceId?: string): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    const r = await tx
      .updateTable('sessions')
      .set({ refresh_hash: to, rotated_at: now, ...(workspaceId !== undefined && { workspace_id: workspaceId }) })
      .where('id', '=', id)
      .where('refresh_hash', '=', from)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return false;
    await tx.insertInto('session_rotated_tokens').values({ hash: from, session_id: id, rotated_at: now }).execute();
    return true;
  });
}

/** Revokes one session; false when it was not live. */
export async function revokeSession(db: Kysely<Database>, id: string, now: number): Promise<boolean> {
  const r = await db.updateTable('sessions').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Revokes every live session of a user; the number revoked. */
export async function revokeUserSessions(db: Kysely<Database>, userId: string, now: number): Promise<number> {
  const r = await db.updateTable('sessions').set({ revoked_at: now }).where('user_id', '=', userId).where('revoked_at', 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows);
}

/**
 * The role an access token's session has now. Contract: the session `sessionId` of `userId` is
 * live (not revoked, not expired at `now`) and acts in `workspaceId`, where the user is still a
 * member; then that membership's role, and whether the organization requires TOTP while the user
 * has it off (`totpMissing`), else undefined. One primary-key lookup joined to the membership's,
 * the organization's and the user's primary keys; run per request authenticated by an access token,
 * so logout, logout-all, a role change and TOTP changes take effect at the next request.
 */
export async function userSession(db: Kysely<Database>, sessionId: string, userId: string, workspaceId: string, now: number): Promise<{ role: string; totpMissing: boolean } | undefined> {
  const r = await db
    .selectFrom('sessions as s')
    .innerJoin('memberships as m', (j) => j.onRef('m.user_id', '=', 's.user_id').onRef('m.workspace_id', '=', 's.workspace_id'))
    .innerJoin('workspaces as w', 'w.id', 's.workspace_id')
    .innerJoin('users as u', 'u.id', 's.user_id')
    .select(['m.role', 'w.require_totp', 'u.totp_enabled_at'])
    .where('s.id', '=', sessionId)
    .where('s.user_id', '=', userId)
    .where('s.workspace_id', '=', workspaceId)
    .where('s.revoked_at', 'is', null)
    .where('s.expires_at', '>', now)
    .executeTakeFirst();
  return r && { role: r.role, totpMissing: Number(r.require_totp) === 1 && r.totp_enabled_at === null };
}

export async function listSigningKeys(db: Kysely<Database>): Promise<SigningKeysTable[]> {
  return db.selectFrom('signing_keys').selectAll().where('retired_at', 'is', null).orderBy('created_at', 'desc').orderBy('kid', 'desc').execute();
}

export async function insertSigningKey(db: Kysely<Database>, k: SigningKeysTable): Promise<void> {
  await db.insertInto('signing_keys').values(k).onConflict((oc) => oc.column('kid').doNothing()).execute();
}

export async function createOrganization(db: Kysely<Database>, o: { id: string; name: string }, now: number): Promise<void> {
  await db.insertInto('workspaces').values({ id: o.id, name: o.name, created_at: now }).execute();
}
