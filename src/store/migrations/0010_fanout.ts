// Topic sends: `to: {topic}` is accepted as a notification plus a fan-out row, written in the same
// transaction; workers then expand the topic's members in batches (queue/fanout.ts), each batch one
// transaction that inserts its deliveries and moves the cursor (`after`, the last member id done).
// state: pending -> done. owner/lease_until: the worker expanding it, until when.

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('fanouts')
    .addColumn('notification_id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('topic', 'text', (c) => c.notNull())
    /** The send request (JSON) the members' deliveries are decided from. */
    .addColumn('request', 'text', (c) => c.notNull())
    .addColumn('template_version', 'integer')
    .addColumn('after', 'text')
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('owner', 'text')
    .addColumn('lease_until', 'bigint')
    .addColumn('recipients', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('fanouts_state').on('fanouts').columns(['state', 'created_at']).execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
