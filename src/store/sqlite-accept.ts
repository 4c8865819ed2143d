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

/** Prepares the accept statements on `db` and returns the batch write (positional binding). */
export function prepareAcceptWrite(db: BetterSqlite3.Database): (items: AcceptItem[]) => AcceptOutcome[] {
  const insertIdempotency = db.prepare(`
    INSERT INTO idempotency_keys (workspace_id, key, request_hash, notification_id, response, created_at, expires_at)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (workspace_id, key) DO UPDATE SET
      request_hash = excluded.request_hash, notification_id = excluded.notification_id,
      response = excluded.response, created_at = excluded.created_at, expires_at = excluded.expires_at
    WHERE idempotency_keys.expires_at <= excluded.created_at`);
  const insertNotification = db.prepare(`
    INSERT INTO notifications (id, workspace_id, kind, title, body, data, metadata, status, idempotency_key, delivery_count, created_at,
      channel_options, fallback, routing, template, recipient_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertDelivery = db.prepare(`
    INSERT INTO deliveries (id, workspace_id, notification_id, recipient_id, channel, status, reason, attempts, run_at,
      lease_owner, error_class, last_error, provider_message_id, created_at, updated_at, completed_at, device_id, after_id, content)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertRecipient = db.prepare(`INSERT INTO notification_recipients (workspace_id, recipient_id, notification_id) VALUES (?, ?, ?)`);
  const insertFanout = db.prepare(`
    INSERT INTO fanouts (notification_id, workspace_id, topic, request, template_version, after, state, owner, lease_until, recipients, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertDedupe = db.prepare(`
    INSERT INTO dedupe_keys (workspace_id, recipient_id, key, notification_id, created_at, expires_at)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (workspace_id, recipient_id, key) DO UPDATE SET
      notification_id = excluded.notification_id, created_at = excluded.created_at, expires_at = excluded.expires_at
    WHERE dedupe_keys.expires_at <= excluded.created_at`);
  // An item with dedupe keys is written in a savepoint (a nested better-sqlite3 transaction), so a
  // key held by another notification undoes that item alone.
  const writeDeduped = db.transaction((item: AcceptItem): AcceptOutcome => {
    const outcome = writeItem(item);
    if (outcome !== 'ok') return outcome;
    const n = item.notification;
    const { key, recipients, expiresAt } = item.dedupe!;
    for (const r of recipients) {
      if (insertDedupe.run(n.workspace_id, r, key, n.id, n.created_at, expiresAt).changes === 0) throw new DedupeConflict();
    }
    return 'ok';
  });
  const writeItem = (item: AcceptItem): AcceptOutcome => {
    const n = item.notification;
    if (item.idempotency) {
      const { key, requestHash, response, expiresAt } = item.idempotency;
      const r = insertIdempotency.run(n.workspace_id, key, requestHash, n.id, response, n.created_at, expiresAt);
      if (r.changes === 0) return 'idempotency_conflict';
    }
    const recipients = recipientsOf(item.deliveries);
    insertNotification.run(n.id, n.workspace_id, n.kind, n.title, n.body, n.data, n.metadata, n.status, n.idempotency_key, n.delivery_count, n.created_at, n.channel_options, n.fallback, n.routing, n.template, recipients.recipientId);
    if (item.fanout) {
      const f = item.fanout;
      insertFanout.run(f.notification_id, f.workspace_id, f.topic, f.request, f.template_version, f.after, f.state, f.owner, f.lease_until, f.recipients, f.created_at, f.updated_at);
    }
    for (const d of item.deliveries) {
      insertDelivery.run(
        d.id, d.workspace_id, d.notification_id, d.recipient_id, d.channel, d.status, d.reason, d.attempts, d.run_at,
        d.lease_owner, d.error_class, d.last_error, d.provider_message_id, d.created_at, d.updated_at, d.completed_at, d.device_id, d.after_id, d.content,
      );
    }
    for (const r of recipients.rows) insertRecipient.run(r.workspace_id, r.recipient_id, r.notification_id);
    return 'ok';
  };
  const write = db.transaction((batch: AcceptItem[]) =>
    batch.map((item): AcceptOutcome => {
      if (!item.dedupe || item.dedupe.recipients.length === 0) return writeItem(item);
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
