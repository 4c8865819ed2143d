// Routing "first" (the highest-priority channel; the next only if it fails):
// - notifications.routing: 'all' or 'first';
// - deliveries.after_id: a `standby` delivery waits for the step (the deliveries of one channel to
//   one recipient) that the delivery after_id belongs to; store/deliveries.ts advanceChain moves it.

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('notifications').addColumn('routing', 'text', (c) => c.notNull().defaultTo('all')).execute();
  await db.schema.alterTable('deliveries').addColumn('after_id', 'text').execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
