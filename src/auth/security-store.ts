// Queries of account security (migration 0017): emailed single-use links (user_tokens), the
// verified address, TOTP state and recovery codes, and erasing a user.

import type { Kysely } from 'kysely';
import type { Database, UserTokensTable } from '../store/schema.ts';

export async function markEmailVerified(db: Kysely<Database>, userId: string, now: number): Promise<void> {
  await db.updateTable('users').set({ email_verified_at: now }).where('id', '=', userId).where('email_verified_at', 'is', null).execute();
}

export async function insertUserToken(db: Kysely<Database>, row: UserTokensTable): Promise<void> {
  await db.insertInto('user_tokens').values(row).execute();
}

/**
 * Uses the link token `hash` of `kind` up. Contract: compare-and-set on an unused, unexpired token,
 * so a link works once even when it is presented twice at the same moment; the user it belongs to,
 * or undefined (unknown, used, expired, or of another kind).
 */
export async function useUserToken(db: Kysely<Database>, hash: string, kind: string, now: number): Promise<string | undefined> {
  const row = await db.selectFrom('user_tokens').select('user_id').where('hash', '=', hash).where('kind', '=', kind).executeTakeFirst();
  if (!row) return undefined;
  const r = await db.updateTable('user_tokens').set({ used_at: now }).where('hash', '=', hash).where('used_at', 'is', null).where('expires_at', '>', now).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1 ? row.user_id : undefined;
}

/** Uses up every unused link of `kind` of the user (a password reset ends the other reset links). */
export async function useUserTokens(db: Kysely<Database>, userId: string, kind: string, now: number): Promise<void> {
  await db.updateTable('user_tokens').set({ used_at: now }).where('user_id', '=', userId).where('kind', '=', kind).where('used_at', 'is', null).execute();
}

/** Revokes every live session of the user but `keep`; how many. */
export async function revokeOtherSessions(db: Kysely<Database>, userId: string, keep: string | undefined, now: number): Promise<number> {
  let q = db.updateTable('sessions').set({ revoked_at: now }).where('user_id', '=', userId).where('revoked_at', 'is', null);
  if (keep !== undefined) q = q.where('id', '!=', keep);
  return Number((await q.executeTakeFirst()).numUpdatedRows);
}

export async function setTotpSecret(db: Kysely<Database>, userId: string, sealed: string | null, now: number): Promise<void> {
  await db.updateTable('users').set({ totp_secret: sealed, totp_enabled_at: null, totp_last_step: null, updated_at: now }).where('id', '=', userId).execute();
}

export async function enableTotp(db: Kysely<Database>, userId: string, step: number, now: number): Promise<void> {
  await db.updateTable('users').set({ totp_enabled_at: now, totp_last_step: step, updated_at: now }).where('id', '=', userId).execute();
}

/**
 * Records `step` as the last accepted TOTP step of the user. Contract: compare-and-set, true only
 * when `step` is later than the last accepted one, so each code (and any earlier code) is accepted
 * once even when two sign-ins present it at the same moment.
 */
export async function acceptTotpStep(db: Kysely<Database>, userId: string, step: number): Promise<boolean> {
  const r = await db
    .updateTable('users')
    .set({ totp_last_step: step })
    .where('id', '=', userId)
    .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', step)]))
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function replaceRecoveryCodes(db: Kysely<Database>, userId: string, hashes: readonly string[], now: number): Promise<void> {
  await db.transaction().execute(async (tx) => {
    await tx.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
    if (hashes.length > 0) await tx.insertInto('recovery_codes').values(hashes.map((hash) => ({ user_id: userId, hash, created_at: now, used_at: null }))).execute();
  });
}

/** Uses up one recovery code (compare-and-set: once only); whether it was an unused code of the user. */
export async function useRecoveryCode(db: Kysely<Database>, userId: string, hash: string, now: number): Promise<boolean> {
  const r = await db.updateTable('recovery_codes').set({ used_at: now }).where('user_id', '=', userId).where('hash', '=', hash).where('used_at', 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function unusedRecoveryCodes(db: Kysely<Database>, userId: string): Promise<number> {
  const r = await db.selectFrom('recovery_codes').select((eb) => eb.fn.countAll<number>().as('n')).where('user_id', '=', userId).where('used_at', 'is', null).executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Whether the organization requires TOTP of its members. */
export async function orgRequiresTotp(db: Kysely<Database>, workspaceId: string): Promise<boolean> {
  const r = await db.selectFrom('workspaces').select('require_totp').where('id', '=', workspaceId).executeTakeFirst();
  return Number(r?.require_totp ?? 0) === 1;
}

/** The organizations where the user is the only owner. */
export async function soleOwnerships(db: Kysely<Database>, userId: string): Promise<string[]> {
  const owned = await db.selectFrom('memberships').select('workspace_id').where('user_id', '=', userId).where('role', '=', 'owner').execute();
  const out: string[] = [];
  for (const { workspace_id } of owned) {
    const r = await db.selectFrom('memberships').select((eb) => eb.fn.countAll<number>().as('n')).where('workspace_id', '=', workspace_id).where('role', '=', 'owner').executeTakeFirstOrThrow();
    if (Number(r.n) <= 1) out.push(workspace_id);
  }
  return out;
}

/** Personal fields of audit details; erased from the entries about an erased user. */
const PERSONAL = ['email', 'name', 'ip', 'user_agent', 'subject'];

/**
 * Erases user `userId` (in one transaction): sessions and their rotated tokens, memberships, links,
 * external identities (with their sealed provider tokens), recovery codes, the invitations they accepted, and the user row. Audit entries by or about them
 * stay, under the user id (now pointing at nobody: a pseudonym), with the personal fields of their
 * details removed. Contract: the caller has checked the user owns no organization alone.
 */
export async function eraseUser(db: Kysely<Database>, userId: string): Promise<void> {
  await db.transaction().execute(async (tx) => {
    const sessions = tx.selectFrom('sessions').select('id').where('user_id', '=', userId);
    await tx.deleteFrom('session_rotated_tokens').where('session_id', 'in', sessions).execute();
    await tx.deleteFrom('sessions').where('user_id', '=', userId).execute();
    await tx.deleteFrom('memberships').where('user_id', '=', userId).execute();
    await tx.deleteFrom('user_tokens').where('user_id', '=', userId).execute();
    await tx.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
    await tx.deleteFrom('invitations').where('accepted_by', '=', userId).execute();
    await tx.deleteFrom('identities').where('user_id', '=', userId).execute();
    const entries = await tx
      .selectFrom('audit_log')
      .select(['id', 'details'])
      .where((eb) => eb.or([eb('actor', '=', `user:${userId}`), eb('target', '=', userId)]))
      .where('details', 'is not', null)
      .execute();
    for (const e of entries) {
      const details = JSON.parse(e.details!) as unknown;
      if (!details || typeof details !== 'object' || Array.isArray(details)) continue;
      const kept = Object.fromEntries(Object.entries(details).filter(([k]) => !PERSONAL.includes(k)));
      if (Object.keys(kept).length !== Object.keys(details).length) await tx.updateTable('audit_log').set({ details: JSON.stringify(kept) }).where('id', '=', e.id).execute();
    }
    await tx.deleteFrom('users').where('id', '=', userId).execute();
  });
}
