// The successful attempt of a delivery is recorded on the delivery row, not as a delivery_attempts
// row: settle writes it with the move to `sent` (the UPDATE it makes anyway), so a delivery that
// succeeds writes no attempt row and no entries in that table's two indexes. delivery_attempts keeps
// every other attempt (failed ones, and a success whose outcome no longer applied because the lease
// had moved on). See SettleItem in src/store/adapter.ts.
// - deliveries.success_*: that attempt's id, number, start, duration and what the provider answered
//   (its outcome is `success`, its error_class and error are null); success_attempt_id is null when
//   the row holds none.
// - attempt_log: a view of every attempt, the rows of delivery_attempts plus one per delivery that
//   holds its successful attempt, with delivery_attempts' columns. Every reader of the attempt log
//   reads this view, so what it presents is what delivery_attempts held before.
// On PostgreSQL success_attempt_id compares bytewise (COLLATE "C"), like delivery_attempts.id
// (0004), so that the view's id has one collation and ORDER BY id sorts both parts alike.

import { sql, type Kysely } from 'kysely';
import { isPostgres } from './dialect.ts';

export async function up(db: Kysely<unknown>): Promise<void> {
  const pg = isPostgres(db);
  await db.schema
    .alterTable('deliveries')
    .addColumn('success_attempt_id', pg ? sql`text COLLATE "C"` : 'text')
    .execute();
  for (const [name, type] of [
    ['success_attempt', 'integer'],
    ['success_started_at', 'bigint'],
    ['success_duration_ms', 'integer'],
    ['success_http_status', 'integer'],
    ['success_smtp_reply', 'text'],
    ['success_response', 'text'],
  ] as const) {
    await db.schema.alterTable('deliveries').addColumn(name, type).execute();
  }
  const nullText = pg ? sql.raw('NULL::text') : sql.raw('NULL');
  await sql`
    CREATE VIEW attempt_log AS
    SELECT id, delivery_id, workspace_id, attempt, started_at, duration_ms, outcome, error_class, error, http_status, smtp_reply, response
      FROM delivery_attempts
    UNION ALL
    SELECT success_attempt_id, id, workspace_id, success_attempt, success_started_at, success_duration_ms, 'success', ${nullText}, ${nullText},
           success_http_status, success_smtp_reply, success_response
      FROM deliveries
     WHERE success_attempt_id IS NOT NULL`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
