// Digests: notifications to one recipient on one channel with the same digest key inside a window
// become one delivery.
// - digests: a bucket per (workspace, recipient, channel, key) that is `open` until its delivery is
//   claimed (then `closed`: its items are fixed). closes_at: when its delivery is due. delivery_id:
//   the one delivery that carries it.
// - digest_items: the notifications in a bucket, with what the digest shows of each.
// - deliveries.digest_id: the bucket a delivery carries; a notification that joined a bucket
//   (rather than opening one) has a `digested` delivery pointing at it too.

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('digests')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('recipient_id', 'text', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('closes_at', 'bigint', (c) => c.notNull())
    .addColumn('delivery_id', 'text', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    /** The template (key) it is rendered with; null: Herald's plain list. */
    .addColumn('template', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('digests_open').on('digests').columns(['workspace_id', 'recipient_id', 'channel', 'key', 'status']).execute();
  await db.schema
    .createTable('digest_items')
    .addColumn('digest_id', 'text', (c) => c.notNull())
    .addColumn('notification_id', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('data', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('digest_items_pk', ['digest_id', 'notification_id'])
    .execute();
  await db.schema.alterTable('deliveries').addColumn('digest_id', 'text').execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
