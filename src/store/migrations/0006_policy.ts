// Policy and content (issue: policy and content):
// - kinds: a workspace's notification kinds and what each means for delivery (mandatory, channel
//   priority, quiet-hours policy, routing, rate limits, digest, blackout behaviour). The default
//   kinds (security, transactional, marketing) are created lazily per workspace
//   (kinds/store.ts ensureDefaultKinds), not here;
// - preferences: a recipient's choices per kind and quiet hours;
// - templates: versioned, append-only; the latest version is the highest;
// - topics and topic_members: named audiences; members are keyed (and paged) by recipient id;
// - workspace_settings: default locale and channel blackout windows.
// Times are BIGINT milliseconds, booleans INTEGER 0/1, JSON TEXT: one migration for both dialects.

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('kinds')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('mandatory', 'integer', (c) => c.notNull().defaultTo(0))
    /** JSON array of channels in priority order; null: every configured channel in default order. */
    .addColumn('channels', 'text')
    .addColumn('quiet_hours', 'text', (c) => c.notNull())
    .addColumn('routing', 'text', (c) => c.notNull())
    /** JSON {<channel or "*">: {limit, per_ms}}. */
    .addColumn('rate_limits', 'text')
    .addColumn('throttle', 'text', (c) => c.notNull())
    /** JSON {window_ms, key?}. */
    .addColumn('digest', 'text')
    .addColumn('blackout', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('kinds_pk', ['workspace_id', 'kind'])
    .execute();

  await db.schema
    .createTable('preferences')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('recipient_id', 'text', (c) => c.notNull())
    /** JSON {<kind>: {allowed?, channels?}}. */
    .addColumn('kinds', 'text', (c) => c.notNull())
    /** JSON {start: "HH:MM", end: "HH:MM"}. */
    .addColumn('quiet_hours', 'text')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('preferences_pk', ['workspace_id', 'recipient_id'])
    .execute();

  await db.schema
    .createTable('templates')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    /** JSON array of {locale, channel, title, body, html?, subject?}. */
    .addColumn('variants', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('templates_pk', ['workspace_id', 'key', 'version'])
    .execute();

  await db.schema
    .createTable('topics')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('topics_pk', ['workspace_id', 'key'])
    .execute();

  // The primary key serves paging a topic's members by recipient_id (and the fan-out's batches);
  // topic_members_recipient finds a recipient's memberships (erasure).
  await db.schema
    .createTable('topic_members')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('topic_key', 'text', (c) => c.notNull())
    .addColumn('recipient_id', 'text', (c) => c.notNull())
    .addColumn('added_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('topic_members_pk', ['workspace_id', 'topic_key', 'recipient_id'])
    .execute();
  await db.schema.createIndex('topic_members_recipient').on('topic_members').columns(['workspace_id', 'recipient_id']).execute();

  await db.schema
    .createTable('workspace_settings')
    .addColumn('workspace_id', 'text', (c) => c.primaryKey())
    .addColumn('default_locale', 'text', (c) => c.notNull().defaultTo('en'))
    /** JSON {<channel>: {start: "HH:MM", end: "HH:MM", timezone}}. */
    .addColumn('channel_blackouts', 'text')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
