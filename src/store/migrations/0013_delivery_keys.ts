// Fewer index entries per delivery write. Every claim and settle writes a new version of the
// delivery row, and since `status` and `run_at` are indexed (deliveries_due) it is never a HOT
// update: each version got an entry in every index of the table, two of which served no queue
// work. Both are replaced by lookups that cost nothing on the queue's updates:
//
// - Notifications of a recipient: a notification whose deliveries all go to one recipient when it
//   is accepted (most do) names it in `notifications.recipient_id`, indexed by
//   notifications_recipient (workspace_id, recipient_id, id) where it is set: one more index
//   entry when the notification is inserted, none later (a notification's status update changes
//   no indexed column, so it stays HOT). Any other notification (several recipients, a topic's
//   fan-out) has one `notification_recipients` (workspace_id, recipient_id, notification_id) row
//   per recipient it has deliveries to, inserted with the deliveries (accept, fan-out batches,
//   digests) and never updated; SQLite keeps that table WITHOUT ROWID (one b-tree, the primary
//   key). Existing notifications keep recipient_id null and get their rows here, from their
//   deliveries. deliveries_recipient (workspace_id, recipient_id, notification_id) is dropped.
// - Deliveries of a notification: a new delivery's id is `dlv_` + its notification's id after the
//   `ntf_` prefix + a suffix (domain/ids.ts deliveryId), so the primary key holds a notification's
//   deliveries side by side and a range scan of it finds them (store/delivery-keys.ts). Rows made
//   before this migration have ids of their own (`dlv_` + a ULID) and keep them: ids are public
//   (the API, webhook-id, receivers' de-duplication) and referenced by attempts, receipts, digests,
//   routing chains. They are found through deliveries_notification_legacy, an index on
//   notification_id of just the rows whose id is not in their notification's range (the
//   predicate below, which readers repeat verbatim so both planners can use the index). New rows
//   never enter it. deliveries_notification (notification_id) is dropped.
//
// On an existing database this builds the legacy index over every existing delivery and copies
// the recipients: minutes for tens of millions of rows, holding the tables' locks meanwhile.

import { sql, type Kysely } from 'kysely';
import { LEGACY_DELIVERY_PREDICATE } from '../delivery-keys.ts';
import { isPostgres } from './dialect.ts';

export async function up(db: Kysely<unknown>): Promise<void> {
  const pg = isPostgres(db);
  await db.schema
    .createTable('notification_recipients')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('recipient_id', 'text', (c) => c.notNull())
    .addColumn('notification_id', pg ? sql`text COLLATE "C"` : 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('notification_recipients_pk', ['workspace_id', 'recipient_id', 'notification_id'])
    .$call((b) => (pg ? b : b.modifyEnd(sql`WITHOUT ROWID`)))
    .execute();
  await sql`
    INSERT INTO notification_recipients (workspace_id, recipient_id, notification_id)
    SELECT DISTINCT workspace_id, recipient_id, notification_id FROM deliveries`.execute(db);
  await db.schema.dropIndex('deliveries_recipient').execute();
  await db.schema.alterTable('notifications').addColumn('recipient_id', 'text').execute();
  await db.schema
    .createIndex('notifications_recipient')
    .on('notifications')
    .columns(['workspace_id', 'recipient_id', 'id'])
    .where(sql.ref('recipient_id'), 'is not', null)
    .execute();

  await sql`CREATE INDEX deliveries_notification_legacy ON deliveries (notification_id) WHERE ${sql.raw(LEGACY_DELIVERY_PREDICATE)}`.execute(db);
  await db.schema.dropIndex('deliveries_notification').execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
