import type { Kysely } from 'kysely';
import type { Database, IdempotencyKeysTable } from './schema.ts';

/** The unexpired record for a key, if any. */
export async function findIdempotencyRecord(db: Kysely<Database>, workspaceId: string, key: string, now: number): Promise<IdempotencyKeysTable | undefined> {
  return db
    .selectFrom('idempotency_keys')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('key', '=', key)
    .where('expires_at', '>', now)
    .executeTakeFirst();
}

/** Deletes expired records; returns how many. */
export async function purgeExpiredIdempotency(db: Kysely<Database>, now: number): Promise<number> {
  const r = await db.deleteFrom('idempotency_keys').where('expires_at', '<=', now).executeTakeFirst();
  return Number(r.numDeletedRows);
}
