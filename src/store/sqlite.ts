// SQLite adapter (better-sqlite3, WAL, synchronous=FULL). The default, embedded store.
//
// Two connections. Accept batches go to a writer thread with its own connection
// (sqlite-writer.ts), so their inserts and fsync overlap with HTTP work on another core. Everything
// else uses the main connection, shared by Kysely and the hand-written claim/settle statements.
// better-sqlite3 is synchronous, so each hot-path method runs its statements and transaction in
// one uninterrupted turn of the event loop. The only way two things could interleave on the main
// connection is a Kysely transaction that awaits between statements; `transaction()` therefore
// holds a mutex that the hot path also takes. Every write transaction begins IMMEDIATE: with two
// connections, a transaction that begins as a reader and upgrades to a writer could fail at once
// with SQLITE_BUSY (no busy wait) if the other connection committed in between.

import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql } from 'kysely';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { summarizeNotification, type DeliveryStatus, type NotificationStatus } from '../domain/delivery-status.ts';
import { newId } from '../domain/ids.ts';
import { attemptOnRow, CLAIMED_JOB_COLUMNS, CLAIMED_JOB_JOINS, RECIPIENT_ADDRESS_COLUMNS, type AcceptItem, type AcceptOutcome, type ClaimedDelivery, type RecipientAddresses, type SettleItem, type StoreAdapter } from './adapter.ts';
import { migrationProvider } from './migrations/index.ts';
import { deliveryRange, LEGACY_DELIVERY_PREDICATE } from './delivery-keys.ts';
import { Mutex } from './mutex.ts';
import { configureConnection, packBatch, prepareAcceptWrite, type PackedBatch } from './sqlite-accept.ts';
import { MERGE_ITEMS, SqliteWriter } from './sqlite-writer.ts';
import type { Database } from './schema.ts';

/**
 * How the event loop hands accepts to the writer thread (StoreAdapter.acceptBatching). A batch
 * goes as soon as it has 16 items, not only at the end of the event loop's turn: under load one
 * turn reads dozens of requests, and a batch handed over early lets the thread insert and commit
 * while the rest are parsed. The thread merges whatever queued while it committed into one
 * transaction (sqlite-writer.ts), so many batches in flight cost no extra fsyncs; the limit only
 * bounds the queue, at what the thread merges at most.
 */
const WRITER_BATCHING = { maxBatch: 16, maxInFlight: MERGE_ITEMS / 16 };
/** Without a writer thread each batch is a commit on the event loop: one at a time, as large as it gets. */
const INLINE_BATCHING = { maxBatch: 256, maxInFlight: 1 };

export class SqliteAdapter implements StoreAdapter {
  readonly dialect = 'sqlite' as const;
  readonly db: Kysely<Database>;
  readonly #raw: BetterSqlite3.Database;
  readonly #lock = new Mutex();
  readonly #writer: SqliteWriter | undefined;
  readonly acceptBatching: { maxBatch: number; maxInFlight: number };
  #s: ReturnType<SqliteAdapter['prepare']> | undefined;
  /** The accept write on the main connection, when there is no writer thread. */
  #acceptInline: ((batches: PackedBatch[]) => AcceptOutcome[][]) | undefined;

  /**
   * `writerThread` (default: true for a file, false for ':memory:', which another connection
   * cannot share): perform accept batches on a writer thread.
   */
  constructor(path: string, opts: { writerThread?: boolean } = {}) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.#raw = new BetterSqlite3(path);
    configureConnection(this.#raw);
    this.db = new Kysely<Database>({ dialect: new SqliteDialect({ database: this.#raw }) });
    if (opts.writerThread ?? path !== ':memory:') {
      this.#writer = new SqliteWriter(path);
      // The writer thread checkpoints (sqlite-writer.ts); commits here never block the event loop on one.
      this.#raw.pragma('wal_autocheckpoint = 0');
    }
    this.acceptBatching = this.#writer ? WRITER_BATCHING : INLINE_BATCHING;
  }

  async migrate(): Promise<void> {
    const { error } = await new Migrator({ db: this.db, provider: migrationProvider }).migrateToLatest();
    if (error) throw error;
    this.#s = this.prepare();
    if (this.#writer) await this.#writer.start();
    else this.#acceptInline = prepareAcceptWrite(this.#raw);
  }

  async appliedMigration(): Promise<string | undefined> {
    try {
      const row = this.#raw.prepare('SELECT name FROM kysely_migration ORDER BY name DESC LIMIT 1').get() as { name: string } | undefined;
      return row?.name;
    } catch {
      return undefined;
    }
  }

  async backup(path: string): Promise<void> {
    await this.#raw.backup(path);
  }

  async ping(): Promise<void> {
    this.#raw.prepare('SELECT 1').get();
  }

  /** SQLITE_BUSY / SQLITE_LOCKED (and their extended codes): still locked after busy_timeout. */
  isUnavailable(err: unknown): boolean {
    const code = (err as { code?: unknown } | null)?.code;
    return typeof code === 'string' && /^SQLITE_(BUSY|LOCKED)(_|$)/.test(code);
  }

  async close(): Promise<void> {
    await this.#writer?.close();
    await this.#lock.run(() => undefined);
    await this.db.destroy(); // closes the better-sqlite3 connection too
  }

  transaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.#lock.run(() =>
      this.db.connection().execute(async (conn) => {
        await sql`BEGIN IMMEDIATE`.execute(conn);
        try {
          const result = await fn(conn);
          await sql`COMMIT`.execute(conn);
          return result;
        } catch (err) {
          await sql`ROLLBACK`.execute(conn);
          throw err;
        }
      }),
    );
  }

  /**
   * Prepared hot-path statements; see StoreAdapter for each contract. Parameters are positional
   * (binding named parameters from objects costs measurably more per row).
   */
  private prepare() {
    const p = (s: string) => this.#raw.prepare(s);
    return {
      // Claims, outcomes and lease releases commit with synchronous=NORMAL: if power fails right
      // after, a claim is lost (the row is claimed again) or an outcome is lost (the delivery is
      // attempted again: at-least-once allows it). Accepts always commit with FULL.
      syncNormal: p('PRAGMA synchronous = NORMAL'),
      syncFull: p('PRAGMA synchronous = FULL'),
      findRecipient: p(`SELECT ${RECIPIENT_ADDRESS_COLUMNS} FROM recipients WHERE workspace_id = ? AND id = ?`),
      findRecipients: p(`SELECT ${RECIPIENT_ADDRESS_COLUMNS} FROM recipients WHERE workspace_id = ? AND id IN (SELECT value FROM json_each(?))`),
      // Claim: the due rows of one channel, oldest first, leased to the owner until lease_until.
      // Rows still `sending` are due once their lease (run_at) has passed: their worker is gone.
      // Parameters: owner, lease_until, now, channel, now, limit.
      claim: p(`
        UPDATE deliveries
           SET status = 'sending', attempts = attempts + 1, lease_owner = ?, run_at = ?, updated_at = ?
         WHERE id IN (SELECT id FROM deliveries
                       WHERE channel = ? AND status IN ('pending', 'failed', 'sending', 'scheduled', 'throttled') AND run_at <= ?
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
      leaseOwners: p(`
        SELECT DISTINCT lease_owner FROM deliveries
         WHERE status IN ('pending', 'failed', 'sending', 'scheduled', 'throttled') AND status = 'sending' AND lease_owner IS NOT NULL`),
    };
  }

  /** Runs `fn` with synchronous=NORMAL (see prepare()), restoring FULL after. */
  #relaxed<T>(fn: () => T): T {
    const s = this.#stmts;
    s.syncNormal.run();
    try {
      return fn();
    } finally {
      s.syncFull.run();
    }
  }

  get #stmts() {
    if (!this.#s) throw new Error('store not migrated');
    return this.#s;
  }

  async findRecipients(workspaceId: string, ids: string[]): Promise<RecipientAddresses[]> {
    if (ids.length === 1) {
      const r = this.#stmts.findRecipient.get(workspaceId, ids[0]) as RecipientAddresses | undefined;
      return r ? [r] : [];
    }
    return this.#stmts.findRecipients.all(workspaceId, JSON.stringify(ids)) as RecipientAddresses[];
  }

  acceptBatch(items: AcceptItem[]): Promise<AcceptOutcome[]> {
    if (this.#writer) return this.#writer.write(items);
    const write = this.#acceptInline;
    if (!write) throw new Error('store not migrated');
    return this.#lock.run(() => write([packBatch(items)])[0]!);
  }

  claim(channel: string, owner: string, limit: number, now: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    const s = this.#stmts;
    const run = this.#raw.transaction(() => {
      const ids = (s.claim.all(owner, now + leaseMs, now, channel, now, limit) as { id: string }[]).map((r) => r.id);
      if (ids.length === 0) return [];
      return s.claimedJobs.all(JSON.stringify(ids)) as ClaimedDelivery[];
    });
    return this.#lock.run(() => this.#relaxed(() => run.immediate()));
  }

  settle(items: SettleItem[]): Promise<number> {
    const s = this.#stmts;
    const run = this.#raw.transaction(() => {
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
      for (const id of touched) this.#refreshSync(id);
      return moved;
    });
    return this.#lock.run(() => this.#relaxed(() => run.immediate()));
  }

  #refreshSync(notificationId: string): void {
    const s = this.#stmts;
    const counts = Object.fromEntries(
      (s.statusCounts.all(notificationId, ...deliveryRange(notificationId), notificationId) as { status: DeliveryStatus; n: number }[]).map((r) => [r.status, r.n]),
    );
    const next = summarizeNotification(counts);
    const current = (s.notificationStatus.get(notificationId) as { status: NotificationStatus } | undefined)?.status;
    if (current !== undefined && current !== next) s.setNotificationStatus.run(next, notificationId);
  }

  refreshNotificationStatus(notificationIds: string[]): Promise<void> {
    const run = this.#raw.transaction(() => notificationIds.forEach((id) => this.#refreshSync(id)));
    return this.#lock.run(() => run());
  }

  releaseLeases(owners: string[], now: number): Promise<number> {
    if (owners.length === 0) return Promise.resolve(0);
    return this.#lock.run(() => this.#relaxed(() => this.#stmts.release.run({ owners: JSON.stringify(owners), now }).changes));
  }

  async leaseOwners(): Promise<string[]> {
    return (this.#stmts.leaseOwners.all() as { lease_owner: string }[]).map((r) => r.lease_owner);
  }
}
