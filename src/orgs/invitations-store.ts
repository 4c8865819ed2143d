// Invitations (table invitations, migration 0017): the token only as its sha256.

import type { Kysely } from 'kysely';
import type { Database, InvitationsTable } from '../store/schema.ts';

export async function insertInvitation(db: Kysely<Database>, row: InvitationsTable): Promise<void> {
  await db.insertInto('invitations').values(row).execute();
}

export async function deleteInvitation(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('invitations').where('id', '=', id).execute();
}

export async function findInvitationByHash(db: Kysely<Database>, hash: string): Promise<InvitationsTable | undefined> {
  return db.selectFrom('invitations').selectAll().where('hash', '=', hash).executeTakeFirst();
}

/** An organization's invitations, newest first. */
export async function listInvitations(db: Kysely<Database>, workspaceId: string): Promise<InvitationsTable[]> {
  return db.selectFrom('invitations').selectAll().where('workspace_id', '=', workspaceId).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(1000).execute();
}

/** Revokes a pending invitation of the organization; false when there is none (or it was used, revoked or expired). */
export async function revokeInvitation(db: Kysely<Database>, workspaceId: string, id: string, now: number): Promise<boolean> {
  const r = await db
    .updateTable('invitations')
    .set({ revoked_at: now })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/**
 * Uses invitation `id` up for `userId`. Contract: compare-and-set on a pending invitation (not
 * accepted, not revoked, not expired at `now`), so of two acceptances exactly one succeeds; false
 * for the other and for an invitation that is no longer pending.
 */
export async function useInvitation(db: Kysely<Database>, id: string, userId: string, now: number): Promise<boolean> {
  const r = await db
    .updateTable('invitations')
    .set({ accepted_at: now, accepted_by: userId })
    .where('id', '=', id)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** The pending invitations (not accepted, revoked or expired at `now`) of an address, oldest first. */
export async function pendingInvitationsFor(db: Kysely<Database>, emailKey: string, now: number): Promise<InvitationsTable[]> {
  return db
    .selectFrom('invitations')
    .selectAll()
    .where('email_key', '=', emailKey)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .orderBy('created_at')
    .execute();
}
