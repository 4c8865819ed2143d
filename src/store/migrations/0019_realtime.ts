// Real time (src/realtime): the keys that sign recipient connection tokens, the organization's
// real-time settings, inbox items and direct messages.
//
// realtime_keys: one row per verification key of an organization. `kid` is unique across
// organizations (Herald's HS256 secrets are `rt_<ulid>`; registered public keys are stored as
// `<workspace>:<kid>`), so a token's `kid` names the organization whose key signed it. HS256 rows
// hold the secret sealed (auth/secret-box.ts); ES256/RS256 rows the public key as SPKI PEM.
// `expires_at`: null while current; a rotated secret keeps verifying until then (the overlap).
//
// realtime_settings: the JWKS URL and whether direct messages are allowed, per organization.
//
// inbox_items: what a delivery to the `inbox` channel stored for one recipient; status moves
// unseen/seen -> read -> archived (read_at / archived_at set), never back past archived.
//
// realtime_messages: direct messages, unique per (workspace, sender, client_id) so a retried send
// is acknowledged without storing it twice.

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('realtime_keys')
    .addColumn('kid', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('alg', 'text', (c) => c.notNull())
    .addColumn('secret', 'text')
    .addColumn('public_key', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint')
    .execute();
  await db.schema.createIndex('realtime_keys_workspace').on('realtime_keys').columns(['workspace_id', 'created_at']).execute();

  await db.schema
    .createTable('realtime_settings')
    .addColumn('workspace_id', 'text', (c) => c.primaryKey())
    .addColumn('jwks_url', 'text')
    .addColumn('direct_messages', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('inbox_items')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('recipient_id', 'text', (c) => c.notNull())
    .addColumn('notification_id', 'text')
    .addColumn('delivery_id', 'text')
    .addColumn('kind', 'text')
    .addColumn('title', 'text')
    .addColumn('body', 'text')
    .addColumn('data', 'text')
    .addColumn('action_url', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('seen_at', 'bigint')
    .addColumn('read_at', 'bigint')
    .addColumn('archived_at', 'bigint')
    .execute();
  await db.schema.createIndex('inbox_items_recipient').on('inbox_items').columns(['workspace_id', 'recipient_id', 'id']).execute();

  await db.schema
    .createTable('realtime_messages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('sender_id', 'text', (c) => c.notNull())
    .addColumn('target_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('realtime_messages_client', ['workspace_id', 'sender_id', 'client_id'])
    .execute();
  await db.schema.createIndex('realtime_messages_pair').on('realtime_messages').columns(['workspace_id', 'sender_id', 'target_id', 'id']).execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
