// Per-delivery content: a notification sent with a template is rendered per recipient locale and
// channel at accept; deliveries.content holds that rendering ({title, body, html?, subject?} as
// JSON; null: the notification's own title and body). notifications.template records which
// template and version ("key@version").

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('deliveries').addColumn('content', 'text').execute();
  await db.schema.alterTable('notifications').addColumn('template', 'text').execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
