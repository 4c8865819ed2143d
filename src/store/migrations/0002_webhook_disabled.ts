// A recipient's webhook can be disabled (the receiver answered 410 Gone). Re-enabled by PUT.

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('recipients').addColumn('webhook_disabled_at', 'bigint').execute();
  await db.schema.alterTable('recipients').addColumn('webhook_disabled_reason', 'text').execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
