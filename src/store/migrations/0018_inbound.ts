// The webhook broker (src/inbound): sources, the events they receive, named consumers and each
// consumer's per-event state.
//
// inbound_sources: (workspace_id, id); `path` is unique across the server (POST /hooks/{path} has
//   no organization in it). `secrets` is a sealed JSON list (auth/secret-box.ts), `options` the
//   provider's options (generic hmac: header, algorithm, encoding, prefix) as JSON.
// inbound_events: one row per accepted delivery; `id` is time-ordered (evt_<ULID>), so a cursor is
//   an id. (workspace_id, source_id, delivery_id) is unique: a provider's replay of a delivery
//   finds the original (NULL delivery ids never collide). `owner_id` and `visibility` are the
//   source's when the event was received (the ACL reads the event alone). `body` is the raw body,
//   as UTF-8 text when it is valid UTF-8 without NUL, else base64 (`body_encoding`).
// inbound_consumers: (workspace_id, name) with its filter, lease time and delivery limit;
//   `scanned_to` is the id up to which events have been considered for it (see inbound/store.ts).
// inbound_consumer_events: a consumer's state per matching event: pending (due_at: when it may be
//   handed out), leased (due_at: when the lease expires), acked, dead (max_deliveries reached),
//   skipped (considered and refused by the consumer's filter; kept so it is not considered again).

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('inbound_sources')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('secrets', 'text')
    .addColumn('options', 'text')
    .addColumn('visibility', 'text', (c) => c.notNull())
    .addColumn('owner_id', 'text')
    .addColumn('retention_ms', 'bigint')
    .addColumn('event_type_path', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('inbound_sources_pk', ['workspace_id', 'id'])
    .execute();
  await db.schema.createIndex('inbound_sources_path').on('inbound_sources').column('path').unique().execute();

  await db.schema
    .createTable('inbound_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('source_id', 'text', (c) => c.notNull())
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('event_type', 'text')
    .addColumn('delivery_id', 'text')
    .addColumn('owner_id', 'text')
    .addColumn('visibility', 'text', (c) => c.notNull())
    .addColumn('content_type', 'text')
    .addColumn('headers', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('body_encoding', 'text', (c) => c.notNull())
    .addColumn('payload', 'text')
    .addColumn('size', 'integer', (c) => c.notNull())
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('inbound_events_delivery').on('inbound_events').columns(['workspace_id', 'source_id', 'delivery_id']).unique().execute();
  await db.schema.createIndex('inbound_events_ws').on('inbound_events').columns(['workspace_id', 'id']).execute();
  await db.schema.createIndex('inbound_events_source').on('inbound_events').columns(['workspace_id', 'source_id', 'received_at']).execute();
  await db.schema.createIndex('inbound_events_public').on('inbound_events').columns(['visibility', 'id']).execute();

  await db.schema
    .createTable('inbound_consumers')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('filter', 'text', (c) => c.notNull())
    .addColumn('ack_timeout_ms', 'bigint', (c) => c.notNull())
    .addColumn('max_deliveries', 'integer', (c) => c.notNull())
    .addColumn('owner_id', 'text')
    .addColumn('scanned_to', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('inbound_consumers_pk', ['workspace_id', 'name'])
    .execute();

  await db.schema
    .createTable('inbound_consumer_events')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('consumer', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('due_at', 'bigint', (c) => c.notNull())
    .addColumn('deliveries', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('owner', 'text')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('inbound_consumer_events_pk', ['workspace_id', 'consumer', 'event_id'])
    .execute();
  await db.schema.createIndex('inbound_consumer_events_due').on('inbound_consumer_events').columns(['workspace_id', 'consumer', 'state', 'due_at']).execute();
  await db.schema.createIndex('inbound_consumer_events_event').on('inbound_consumer_events').column('event_id').execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
