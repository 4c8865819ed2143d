// notifications.delivery_count: how many deliveries a notification has (fixed at accept). Lets
// the settle path set the status of a single-delivery notification (the common case) from the one
// outcome instead of counting its deliveries.

import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('notifications').addColumn('delivery_count', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await sql`UPDATE notifications SET delivery_count = (SELECT COUNT(*) FROM deliveries WHERE deliveries.notification_id = notifications.id)`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
