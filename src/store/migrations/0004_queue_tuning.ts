// Queue tuning: the notification status written by every settle no longer costs index writes.
//
// notifications_ws_status_id (workspace_id, status, id) went: with `status` in an index, every
// status change (one per settled single-delivery notification) writes a new entry into each of the
// table's indexes, and on PostgreSQL can never be a HOT update. Listing notifications by status
// (`listNotifications`, newest first) now walks notifications_ws_id (workspace_id, id) backwards
// and filters on status: as cheap as before for the usual statuses, and in the worst case (a rare
// status in a large workspace) a scan of the workspace's index range, bounded by the cursor.
//
// PostgreSQL only: `notifications` gets fillfactor 85, so that the status update finds room on the
// row's own page and is a HOT update (no index entry at all). It applies to pages written from now
// on; existing full pages take effect once rewritten (VACUUM FULL / pg_repack), which is optional.
// `deliveries` keeps the default 100: its claim and settle updates change indexed columns (status,
// run_at), so they can never be HOT and free space per page would only make the table larger.

import { sql, type Kysely } from 'kysely';
import { isPostgres } from './dialect.ts';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('notifications_ws_status_id').execute();
  if (isPostgres(db)) {
    await sql`ALTER TABLE notifications SET (fillfactor = 85)`.execute(db);
  }
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
