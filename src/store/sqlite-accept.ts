// The SQLite accept write, shared by the writer thread (sqlite-writer.ts) and the inline path.
//
// Contract (StoreAdapter.acceptBatch): one transaction per batch; per item, the idempotency record
// first (a live record for the key means `idempotency_conflict` and nothing of the item is
// written), then the notification (with its recipient_id), its deliveries and its
// notification_recipients rows (store/delivery-keys.ts recipientsOf), then its dedupe keys (a key held by another
// notification means `dedupe_conflict`: the item's savepoint is rolled back). The transaction commits with
// synchronous=FULL, so when it returns the batch is on stable storage.

import type BetterSqlite3 from 'better-sqlite3';
import type { AcceptItem, AcceptOutcome } from './adapter.ts';
import { recipientsOf } from './delivery-keys.ts';
import type { DeliveriesTable, FanoutsTable, NotificationsTable } from './schema.ts';

class DedupeConflict extends Error {}

/** Opens the pragmas every Herald SQLite connection uses. */
export function configureConnection(db: BetterSqlite3.Database): void {
  db.pragma('journal_mode = WAL');
  // FULL: a commit is on stable storage before it returns; Herald answers 202 only after that.
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.pragma('cache_size = -65536');
  db.pragma('temp_store = MEMORY');
}

// Column orders of the rows an accept writes: the INSERTs list these columns and packItem() lays
// each row's values out in this order.
const NOTIFICATION_COLUMNS = [
  'id', 'workspace_id', 'kind', 'title', 'body', 'data', 'metadata', 'status', 'idempotency_key', 'delivery_count', 'created_at',
  'channel_options', 'fallback', 'routing', 'template',
] as const satisfies readonly (keyof NotificationsTable)[];
const DELIVERY_COLUMNS = [
  'id', 'workspace_id', 'notification_id', 'recipient_id', 'channel', 'status', 'reason', 'attempts', 'run_at', 'lease_owner',
  'error_class', 'last_error', 'provider_message_id', 'created_at', 'updated_at', 'completed_at', 'device_id', 'after_id', 'content',
] as const satisfies readonly (keyof DeliveriesTable)[];
const FANOUT_COLUMNS = [
  'notification_id', 'workspace_id', 'topic', 'request', 'template_version', 'after', 'state', 'owner', 'lease_until', 'recipients',
  'created_at', 'updated_at',
] as const satisfies readonly (keyof FanoutsTable)[];

/**
 * An AcceptItem laid out for the accept write: each row as its values in column order (n: the
 * notification, NOTIFICATION_COLUMNS then its recipient_id; d: its deliveries; r: its
 * notification_recipients rows, as [workspace_id, recipient_id, notification_id]; f: its fan-out
 * row), plus the idempotency record (i) and dedupe keys (k). Handed to the writer thread as JSON,
 * where arrays cost less than objects on both sides.
 */
export interface PackedItem {
  n: unknown[];
  d: unknown[][];
  r?: string[][];
  i?: { key: string; hash: string; response: string; expiresAt: number };
  k?: { key: string; recipients: string[]; expiresAt: number };
  f?: unknown[];
}

export function packItem(item: AcceptItem): PackedItem {
  const n = item.notification;
  const recipients = recipientsOf(item.deliveries);
  const row: unknown[] = NOTIFICATION_COLUMNS.map((c) => n[c]);
  row.push(recipients.recipientId);
  const packed: PackedItem = { n: row, d: item.deliveries.map((d) => DELIVERY_COLUMNS.map((c) => d[c])) };
  if (recipients.rows.length > 0) packed.r = recipients.rows.map((r) => [r.workspace_id, r.recipient_id, r.notification_id]);
  if (item.idempotency) packed.i = { key: item.idempotency.key, hash: item.idempotency.requestHash, response: item.idempotency.response, expiresAt: item.idempotency.expiresAt };
  if (item.dedupe && item.dedupe.recipients.length > 0) packed.k = item.dedupe;
  if (item.fanout) packed.f = FANOUT_COLUMNS.map((c) => item.fanout![c]);
  return packed;
}

const N_ID = NOTIFICATION_COLUMNS.indexOf('id');
const N_WORKSPACE = NOTIFICATION_COLUMNS.indexOf('workspace_id');
const N_CREATED_AT = NOTIFICATION_COLUMNS.indexOf('created_at');

const insertInto = (table: string, columns: readonly string[]) => `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;

/** Prepares the accept statements on `db` and returns the batch write. */
export function prepareAcceptWrite(db: BetterSqlite3.Database): (items: PackedItem[]) => AcceptOutcome[] {
  const insertIdempotency = db.prepare(`
    INSERT INTO idempotency_keys (workspace_id, key, request_hash, notification_id, response, created_at, expires_at)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (workspace_id, key) DO UPDATE SET
      request_hash = excluded.request_hash, notification_id = excluded.notification_id,
      response = excluded.response, created_at = excluded.created_at, expires_at = excluded.expires_at
    WHERE idempotency_keys.expires_at <= excluded.created_at`);
  const insertNotification = db.prepare(insertInto('notifications', [...NOTIFICATION_COLUMNS, 'recipient_id']));
  const insertDelivery = db.prepare(insertInto('deliveries', DELIVERY_COLUMNS));
  const insertRecipient = db.prepare(insertInto('notification_recipients', ['workspace_id', 'recipient_id', 'notification_id']));
  const insertFanout = db.prepare(insertInto('fanouts', FANOUT_COLUMNS));
  const insertDedupe = db.prepare(`
    INSERT INTO dedupe_keys (workspace_id, recipient_id, key, notification_id, created_at, expires_at)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (workspace_id, recipient_id, key) DO UPDATE SET
      notification_id = excluded.notification_id, created_at = excluded.created_at, expires_at = excluded.expires_at
    WHERE dedupe_keys.expires_at <= excluded.created_at`);
  // An item with dedupe keys is written in a savepoint (a nested better-sqlite3 transaction), so a
  // key held by another notification undoes that item alone.
  const writeDeduped = db.transaction((item: PackedItem): AcceptOutcome => {
    const outcome = writeItem(item);
    if (outcome !== 'ok') return outcome;
    const { key, recipients, expiresAt } = item.k!;
    for (const r of recipients) {
      if (insertDedupe.run(item.n[N_WORKSPACE], r, key, item.n[N_ID], item.n[N_CREATED_AT], expiresAt).changes === 0) throw new DedupeConflict();
    }
    return 'ok';
  });
  const writeItem = (item: PackedItem): AcceptOutcome => {
    if (item.i) {
      const { key, hash, response, expiresAt } = item.i;
      const r = insertIdempotency.run(item.n[N_WORKSPACE], key, hash, item.n[N_ID], response, item.n[N_CREATED_AT], expiresAt);
      if (r.changes === 0) return 'idempotency_conflict';
    }
    insertNotification.run(item.n);
    if (item.f) insertFanout.run(item.f);
    for (const d of item.d) insertDelivery.run(d);
    if (item.r) for (const r of item.r) insertRecipient.run(r);
    return 'ok';
  };
  const write = db.transaction((batch: PackedItem[]) =>
    batch.map((item): AcceptOutcome => {
      if (!item.k) return writeItem(item);
      try {
        return writeDeduped(item);
      } catch (err) {
        if (err instanceof DedupeConflict) return 'dedupe_conflict';
        throw err;
      }
    }),
  );
  // IMMEDIATE: take the write lock at BEGIN, so the busy timeout applies instead of a lock-upgrade
  // failure when another connection wrote in between.
  return (items) => write.immediate(items);
}
