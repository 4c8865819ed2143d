// Scheduling, cancellation and deduplication:
// - deliveries gain the waiting statuses `scheduled` (send_at, quiet hours, blackout windows) and
//   `throttled` (deferred by a rate limit), claimable when due like `pending`: the queue index
//   deliveries_due is rebuilt over the new claimable set;
// - dedupe_keys: (workspace, recipient, key) -> the notification that holds the key until
//   expires_at; a send with the same key for the same recipient before then is `deduplicated`.
//   Written in the accept transaction, so two concurrent sends cannot both hold a key.

import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('deliveries_due').execute();
  await db.schema
    .createIndex('deliveries_due')
    .on('deliveries')
    .columns(['channel', 'run_at'])
    .where(sql.ref('status'), 'in', sql`('pending', 'failed', 'sending', 'scheduled', 'throttled')`)
    .execute();

  await db.schema
    .createTable('dedupe_keys')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('recipient_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('notification_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('dedupe_keys_pk', ['workspace_id', 'recipient_id', 'key'])
    .execute();
  await db.schema.createIndex('dedupe_keys_expiry').on('dedupe_keys').columns(['expires_at']).execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
