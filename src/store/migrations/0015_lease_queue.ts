// The lease queue (queue/lease-queue.ts): one table for work that is due at a time and leased by a
// worker, other than deliveries. A row is (kind, key): `kind` names the work (fanout, receipt,
// dlq_job; later inbound consumers, workflow timers…), `key` the item within it (a notification
// id, a delivery id, a job id). `due_at` is when the row may next be claimed: its due time while
// free (owner null), its lease's expiry while held (owner set), so one index (kind, due_at) finds
// both what is due and what a dead worker left behind. `attempts` counts claims, `payload` is the
// kind's own data (most kinds keep theirs in their own table, keyed by `key`).
//
// The leases that lived in their own tables move here and those columns go: fanouts.owner and
// lease_until (a pending fan-out gets a row due at once: the worker that held it is gone after the
// upgrade), receipts.next_check_at (a row due at the next check), and running DLQ jobs (a row due
// at once; DlqService also enqueues any running job missing one when it starts).

import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('lease_queue')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('due_at', 'bigint', (c) => c.notNull())
    .addColumn('owner', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('payload', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('lease_queue_pk', ['kind', 'key'])
    .execute();
  await db.schema.createIndex('lease_queue_due').on('lease_queue').columns(['kind', 'due_at']).execute();

  await sql`
    INSERT INTO lease_queue (kind, key, due_at, owner, attempts, payload, created_at, updated_at)
    SELECT 'fanout', notification_id, created_at, NULL, 0, NULL, created_at, updated_at FROM fanouts WHERE state = 'pending'`.execute(db);
  await sql`
    INSERT INTO lease_queue (kind, key, due_at, owner, attempts, payload, created_at, updated_at)
    SELECT 'receipt', delivery_id, next_check_at, NULL, 0, NULL, created_at, created_at FROM receipts`.execute(db);
  await sql`
    INSERT INTO lease_queue (kind, key, due_at, owner, attempts, payload, created_at, updated_at)
    SELECT 'dlq_job', id, created_at, NULL, 0, NULL, created_at, updated_at FROM dlq_jobs WHERE status = 'running'`.execute(db);

  await db.schema.alterTable('fanouts').dropColumn('owner').execute();
  await db.schema.alterTable('fanouts').dropColumn('lease_until').execute();
  await db.schema.dropIndex('receipts_due').execute();
  await db.schema.alterTable('receipts').dropColumn('next_check_at').execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
