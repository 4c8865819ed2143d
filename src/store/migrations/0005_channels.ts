// Channels beyond webhook and email (issue: channels):
// - recipients gain addresses: pushover user key (+ device), Slack and Discord incoming-webhook URLs
//   (sealed: the URL is the credential), a KakaoTalk phone number;
// - devices: push addresses (FCM, APNs, Web Push) registered under a recipient. A raw token is
//   unique per workspace and platform (token_hash): registering it again moves it to the newest
//   owner. disabled_at is set when the vendor says the device is gone;
// - providers: a workspace's credentials per vendor, sealed;
// - deliveries.device_id: the device a push delivery goes to; deliveries.status_detail: what a
//   vendor reported after `sent` (who acknowledged, the vendor's error code); notifications.channel_options and
//   notifications.fallback: per-channel options of the send, and whether a channel may hand the
//   notification to its fallback channel (Kakao AlimTalk -> SMS);
// - receipts: vendor receipts followed after `sent` (Pushover emergency priority) until they
//   settle; next_check_at doubles as the poller's lease (claiming pushes it forward).
// 0004 is reserved for the PostgreSQL queue tuning migration.

import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('recipients')
    .addColumn('pushover_user_key', 'text')
    .execute();
  await db.schema.alterTable('recipients').addColumn('pushover_device', 'text').execute();
  await db.schema.alterTable('recipients').addColumn('slack_webhook_url', 'text').execute();
  await db.schema.alterTable('recipients').addColumn('discord_webhook_url', 'text').execute();
  await db.schema.alterTable('recipients').addColumn('kakao_phone', 'text').execute();
  await db.schema.alterTable('recipients').addColumn('address_disabled', 'text').execute();

  await db.schema
    .createTable('devices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('recipient_id', 'text', (c) => c.notNull())
    .addColumn('platform', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull())
    /** The raw token, or for Web Push the subscription JSON; sealed. */
    .addColumn('token', 'text', (c) => c.notNull())
    .addColumn('app', 'text')
    .addColumn('label', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('disabled_at', 'bigint')
    .addColumn('disabled_reason', 'text')
    .execute();
  await db.schema.createIndex('devices_token').unique().on('devices').columns(['workspace_id', 'platform', 'token_hash']).execute();
  await db.schema.createIndex('devices_recipient').on('devices').columns(['workspace_id', 'recipient_id', 'platform']).execute();

  await db.schema
    .createTable('providers')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    /** The provider's config object as JSON, sealed. */
    .addColumn('config', 'text', (c) => c.notNull())
    .addColumn('base_url', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('providers_pk', ['workspace_id', 'provider'])
    .execute();

  await db.schema.alterTable('deliveries').addColumn('device_id', 'text').execute();
  await db.schema.alterTable('deliveries').addColumn('status_detail', 'text').execute();
  await db.schema.alterTable('notifications').addColumn('channel_options', 'text').execute();
  await db.schema.alterTable('notifications').addColumn('fallback', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  // Vendor callbacks find their delivery by the vendor's message id.
  await db.schema
    .createIndex('deliveries_provider_message')
    .on('deliveries')
    .columns(['channel', 'provider_message_id'])
    .where(sql.ref('provider_message_id'), 'is not', null)
    .execute();

  await db.schema
    .createTable('receipts')
    .addColumn('delivery_id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('receipt', 'text', (c) => c.notNull())
    .addColumn('next_check_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('receipts_due').on('receipts').columns(['next_check_at']).execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
