// The SQLite queue's hot path (StoreAdapter.claim, settle, releaseLeases), shared by the writer
// thread (sqlite-writer.ts), which runs it when there is one, and the main connection, which runs
// it otherwise (':memory:'), and the main connection's notification status refreshes. Each call is
// one write transaction on the connection it was prepared on (claim, settle and refresh begin
// IMMEDIATE; release is one statement); see StoreAdapter for each contract.
//
// Claims, outcomes and lease releases commit with synchronous=NORMAL: if power fails right after,
// a claim is lost (the row is claimed again) or an outcome is lost (the delivery is attempted
// again: at-least-once allows it). Accepts always commit with FULL, the connection's setting, which
// every call here restores.

import type BetterSqlite3 from 'better-sqlite3';
import { summarizeNotification, type DeliveryStatus, type NotificationStatus } from '../domain/delivery-status.ts';
import { newId } from '../domain/ids.ts';
import { attemptOnRow, CLAIMABLE_SQL, CLAIMED_JOB_COLUMNS, CLAIMED_JOB_JOINS, type ClaimedDelivery, type SettleItem } from './adapter.ts';
import { deliveryRange, LEGACY_DELIVERY_PREDICATE } from './delivery-keys.ts';

export interface SqliteQueue {
  claim(channel: string, owner: string, limit: number, now: number, leaseMs: number): ClaimedDelivery[];
  settle(items: SettleItem[]): number;
  release(owners: string[], now: number): number;
  /** Recomputes notifications' statuses from their deliveries, in one transaction. */
  refresh(notificationIds: string[]): void;
}

/** Prepares the statements on `db` (which must be migrated). Positional parameters: binding from objects costs more per row. */
export function prepareQueue(db: BetterSqlite3.Database): SqliteQueue {
  const p = (s: string) => db.prepare(s);
  const s = {
    syncNormal: p('PRAGMA synchronous = NORMAL'),
    syncFull: p('PRAGMA synchronous = FULL'),
    // Claim: the due rows of one channel, oldest first, leased to the owner until lease_until.
    // Rows still `sending` are due once their lease (run_at) has passed: their worker is gone.
    // Parameters: owner, lease_until, now, channel, now, limit.
    claim: p(`
      UPDATE deliveries
         SET status = 'sending', attempts = attempts + 1, lease_owner = ?, run_at = ?, updated_at = ?
       WHERE id IN (SELECT id FROM deliveries
                     WHERE channel = ? AND status IN (${CLAIMABLE_SQL}) AND run_at <= ?
                     ORDER BY run_at LIMIT ?)
      RETURNING id`),
    claimedJobs: p(`
      SELECT ${CLAIMED_JOB_COLUMNS}
        FROM deliveries d
        ${CLAIMED_JOB_JOINS}
       WHERE d.id IN (SELECT value FROM json_each(?))
       ORDER BY d.run_at`),
    // Complete/fail: only the lease owner may move a `sending` row.
    // Parameters: status, run_at, reason, error_class, error, provider_message_id, now, completed_at, id, owner.
    settle: p(`
      UPDATE deliveries
         SET status = ?, run_at = COALESCE(?, run_at), lease_owner = NULL, reason = ?,
             error_class = ?, last_error = ?, provider_message_id = COALESCE(?, provider_message_id),
             updated_at = ?, completed_at = ?
       WHERE id = ? AND status = 'sending' AND lease_owner = ?
      RETURNING notification_id`),
    // The same move, also recording its successful attempt on the row (SettleItem.attempt).
    // Parameters: status, run_at, reason, error_class, error, provider_message_id, now, completed_at,
    // the attempt's id, number, started_at, duration_ms, http_status, smtp_reply, response, then id, owner.
    settleSuccess: p(`
      UPDATE deliveries
         SET status = ?, run_at = COALESCE(?, run_at), lease_owner = NULL, reason = ?,
             error_class = ?, last_error = ?, provider_message_id = COALESCE(?, provider_message_id),
             updated_at = ?, completed_at = ?,
             success_attempt_id = ?, success_attempt = ?, success_started_at = ?, success_duration_ms = ?,
             success_http_status = ?, success_smtp_reply = ?, success_response = ?
       WHERE id = ? AND status = 'sending' AND lease_owner = ?
      RETURNING notification_id`),
    insertAttempt: p(`
      INSERT INTO delivery_attempts (id, delivery_id, workspace_id, attempt, started_at, duration_ms, outcome,
        error_class, error, http_status, smtp_reply, response)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    // A notification's deliveries (store/delivery-keys.ts: its key range, or the legacy index).
    // Parameters: notification id, range start, range end, notification id.
    statusCounts: p(`
      SELECT status, COUNT(*) AS n FROM deliveries
       WHERE (notification_id = ? AND id >= ? AND id < ?) OR (notification_id = ? AND ${LEGACY_DELIVERY_PREDICATE})
       GROUP BY status`),
    notificationStatus: p(`SELECT status FROM notifications WHERE id = ?`),
    setNotificationStatus: p(`UPDATE notifications SET status = ? WHERE id = ?`),
    setNotificationStatusIfChanged: p(`UPDATE notifications SET status = ? WHERE id = ? AND status <> ?`),
    release: p(`
      UPDATE deliveries
         SET status = CASE WHEN attempts > 1 THEN 'failed' ELSE 'pending' END,
             attempts = attempts - 1, lease_owner = NULL, run_at = @now, updated_at = @now
       WHERE status = 'sending' AND lease_owner IN (SELECT value FROM json_each(@owners))`),
  };

  /** Runs `fn` with synchronous=NORMAL, restoring FULL after. */
  const relaxed = <T>(fn: () => T): T => {
    s.syncNormal.run();
    try {
      return fn();
    } finally {
      s.syncFull.run();
    }
  };

  const refreshOne = (notificationId: string): void => {
    const counts = Object.fromEntries(
      (s.statusCounts.all(notificationId, ...deliveryRange(notificationId), notificationId) as { status: DeliveryStatus; n: number }[]).map((r) => [r.status, r.n]),
    );
    const next = summarizeNotification(counts);
    const current = (s.notificationStatus.get(notificationId) as { status: NotificationStatus } | undefined)?.status;
    if (current !== undefined && current !== next) s.setNotificationStatus.run(next, notificationId);
  };

  const claim = db.transaction((channel: string, owner: string, limit: number, now: number, leaseMs: number): ClaimedDelivery[] => {
    const ids = (s.claim.all(owner, now + leaseMs, now, channel, now, limit) as { id: string }[]).map((r) => r.id);
    if (ids.length === 0) return [];
    return s.claimedJobs.all(JSON.stringify(ids)) as ClaimedDelivery[];
  });

  const settle = db.transaction((items: SettleItem[]): number => {
    const now = Date.now();
    const touched = new Set<string>();
    let moved = 0;
    const seen = new Set<string>();
    for (const it of items) {
      const a = it.attempt;
      // Only the first item of a delivery can move it (see StoreAdapter.settle).
      const onRow = !seen.has(it.id) && attemptOnRow(it);
      seen.add(it.id);
      const common = [it.status, it.runAt ?? null, it.reason ?? null, it.errorClass ?? null, it.error ?? null, it.providerMessageId ?? null, now, it.status === 'failed' ? null : now];
      const attemptId = newId('att');
      const row = (onRow
        ? s.settleSuccess.get(...common, attemptId, a.attempt, a.started_at, a.duration_ms, a.http_status, a.smtp_reply, a.response, it.id, it.owner)
        : s.settle.get(...common, it.id, it.owner)) as { notification_id: string } | undefined;
      if (row) {
        moved++;
        if (it.deliveryCount === 1) {
          const next = summarizeNotification({ [it.status]: 1 });
          s.setNotificationStatusIfChanged.run(next, row.notification_id, next);
        } else {
          touched.add(row.notification_id);
        }
      }
      if (!(onRow && row)) {
        s.insertAttempt.run(
          attemptId, a.delivery_id, a.workspace_id, a.attempt, a.started_at, a.duration_ms, a.outcome,
          a.error_class, a.error, a.http_status, a.smtp_reply, a.response,
        );
      }
    }
    for (const id of touched) refreshOne(id);
    return moved;
  });

  const refresh = db.transaction((ids: string[]) => ids.forEach(refreshOne));

  return {
    claim: (channel, owner, limit, now, leaseMs) => relaxed(() => claim.immediate(channel, owner, limit, now, leaseMs)),
    settle: (items) => relaxed(() => settle.immediate(items)),
    release: (owners, now) => relaxed(() => s.release.run({ owners: JSON.stringify(owners), now }).changes),
    refresh: (ids) => refresh.immediate(ids),
  };
}
