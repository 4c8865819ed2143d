// Dedupe keys (table dedupe_keys): which notification holds a key for a recipient, until when.
// Keys are taken in the accept transaction (store adapters' acceptBatch); this reads them.

import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

/** Recipient -> the notification holding `key` for it, among `recipients`, unexpired at `now`. */
export async function findDedupeHolders(db: Kysely<Database>, workspaceId: string, recipients: readonly string[], key: string, now: number): Promise<Map<string, string>> {
  if (recipients.length === 0) return new Map();
  const rows = await db
    .selectFrom('dedupe_keys')
    .select(['recipient_id', 'notification_id'])
    .where('workspace_id', '=', workspaceId)
    .where('key', '=', key)
    .where('recipient_id', 'in', recipients)
    .where('expires_at', '>', now)
    .execute();
  return new Map(rows.map((r) => [r.recipient_id, r.notification_id]));
}

/** Deletes expired keys; returns how many. */
export async function purgeExpiredDedupeKeys(db: Kysely<Database>, now: number): Promise<number> {
  const r = await db.deleteFrom('dedupe_keys').where('expires_at', '<=', now).executeTakeFirst();
  return Number(r.numDeletedRows);
}
