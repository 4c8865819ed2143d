// SQLite adapter (better-sqlite3, WAL, synchronous=FULL). The default, embedded store.
//
// One connection serves everything. better-sqlite3 is synchronous, so each hot-path method below
// runs its statements and its transaction in one uninterrupted turn of the event loop. The only
// way two things could interleave on the connection is a Kysely transaction that awaits between
// statements; `transaction()` therefore holds a mutex that the hot path also takes.

import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { summarizeNotification, type DeliveryStatus, type NotificationStatus } from '../domain/delivery-status.ts';
import { newId } from '../domain/ids.ts';
import type { AcceptItem, AcceptOutcome, ClaimedDelivery, SettleItem, StoreAdapter } from './adapter.ts';
import { migrationProvider } from './migrations/index.ts';
import { Mutex } from './mutex.ts';
import type { Database, RecipientsTable } from './schema.ts';

type Stmt = BetterSqlite3.Statement;

export class SqliteAdapter implements StoreAdapter {
  readonly dialect = 'sqlite' as const;
  readonly db: Kysely<Database>;
  readonly #raw: BetterSqlite3.Database;
  readonly #lock = new Mutex();
  #s: ReturnType<SqliteAdapter['prepare']> | undefined;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.#raw = new BetterSqlite3(path);
    this.#raw.pragma('journal_mode = WAL');
    // FULL: a commit is on stable storage before it returns; Herald answers 202 only after that.
    this.#raw.pragma('synchronous = FULL');
    this.#raw.pragma('busy_timeout = 5000');
    this.#raw.pragma('cache_size = -65536');
    this.#raw.pragma('temp_store = MEMORY');
    this.db = new Kysely<Database>({ dialect: new SqliteDialect({ database: this.#raw }) });
  }

  async migrate(): Promise<void> {
    const { error } = await new Migrator({ db: this.db, provider: migrationProvider }).migrateToLatest();
    if (error) throw error;
    this.#s = this.prepare();
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
    await this.#lock.run(() => undefined);
    await this.db.destroy(); // closes the better-sqlite3 connection too
  }

  transaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.#lock.run(() => this.db.transaction().execute(fn));
  }

  /** Prepared hot-path statements; see StoreAdapter for each contract. */
  private prepare() {
    const p = (s: string) => this.#raw.prepare(s);
    return {
      findRecipients: p(`SELECT * FROM recipients WHERE workspace_id = ? AND id IN (SELECT value FROM json_each(?))`),
      insertIdempotency: p(`
        INSERT INTO idempotency_keys (workspace_id, key, request_hash, notification_id, response, created_at, expires_at)
        VALUES (@workspace_id, @key, @request_hash, @notification_id, @response, @created_at, @expires_at)
        ON CONFLICT (workspace_id, key) DO UPDATE SET
          request_hash = excluded.request_hash, notification_id = excluded.notification_id,
          response = excluded.response, created_at = excluded.created_at, expires_at = excluded.expires_at
        WHERE idempotency_keys.expires_at <= excluded.created_at`),
      insertNotification: p(`
        INSERT INTO notifications (id, workspace_id, kind, title, body, data, metadata, status, idempotency_key, created_at)
        VALUES (@id, @workspace_id, @kind, @title, @body, @data, @metadata, @status, @idempotency_key, @created_at)`),
      insertDelivery: p(`
        INSERT INTO deliveries (id, workspace_id, notification_id, recipient_id, channel, status, reason, attempts, run_at,
          lease_owner, error_class, last_error, provider_message_id, created_at, updated_at, completed_at)
        VALUES (@id, @workspace_id, @notification_id, @recipient_id, @channel, @status, @reason, @attempts, @run_at,
          @lease_owner, @error_class, @last_error, @provider_message_id, @created_at, @updated_at, @completed_at)`),
      // Claim: the due rows of one channel, oldest first, leased to @owner until @lease_until.
      // Rows still `sending` are due once their lease (run_at) has passed: their worker is gone.
      claim: p(`
        UPDATE deliveries
           SET status = 'sending', attempts = attempts + 1, lease_owner = @owner, run_at = @lease_until, updated_at = @now
         WHERE id IN (SELECT id FROM deliveries
                       WHERE channel = @channel AND status IN ('pending', 'failed', 'sending') AND run_at <= @now
                       ORDER BY run_at LIMIT @limit)
        RETURNING id`),
      claimedJobs: p(`
        SELECT d.id, d.workspace_id, d.notification_id, d.recipient_id, d.channel, d.attempts,
               n.kind, n.title, n.body, n.data, n.created_at AS notification_created_at,
               r.created_at AS recipient_exists, r.name, r.email, r.locale, r.webhook_url, r.webhook_secret, r.webhook_disabled_at
          FROM deliveries d
          JOIN notifications n ON n.id = d.notification_id
          LEFT JOIN recipients r ON r.workspace_id = d.workspace_id AND r.id = d.recipient_id
         WHERE d.id IN (SELECT value FROM json_each(@ids))
         ORDER BY d.run_at`),
      // Complete/fail: only the lease owner may move a `sending` row.
      settle: p(`
        UPDATE deliveries
           SET status = @status, run_at = COALESCE(@run_at, run_at), lease_owner = NULL, reason = @reason,
               error_class = @error_class, last_error = @error,
               provider_message_id = COALESCE(@provider_message_id, provider_message_id),
               updated_at = @now, completed_at = @completed_at
         WHERE id = @id AND status = 'sending' AND lease_owner = @owner
        RETURNING notification_id`),
      insertAttempt: p(`
        INSERT INTO delivery_attempts (id, delivery_id, workspace_id, attempt, started_at, duration_ms, outcome,
          error_class, error, http_status, smtp_reply, response)
        VALUES (@id, @delivery_id, @workspace_id, @attempt, @started_at, @duration_ms, @outcome,
          @error_class, @error, @http_status, @smtp_reply, @response)`),
      statusCounts: p(`SELECT status, COUNT(*) AS n FROM deliveries WHERE notification_id = ? GROUP BY status`),
      notificationStatus: p(`SELECT status FROM notifications WHERE id = ?`),
      setNotificationStatus: p(`UPDATE notifications SET status = ? WHERE id = ?`),
      release: p(`
        UPDATE deliveries
           SET status = CASE WHEN attempts > 1 THEN 'failed' ELSE 'pending' END,
               attempts = attempts - 1, lease_owner = NULL, run_at = @now, updated_at = @now
         WHERE status = 'sending' AND lease_owner IN (SELECT value FROM json_each(@owners))`),
      leaseOwners: p(`
        SELECT DISTINCT lease_owner FROM deliveries
         WHERE status IN ('pending', 'failed', 'sending') AND status = 'sending' AND lease_owner IS NOT NULL`),
    };
  }

  get #stmts() {
    if (!this.#s) throw new Error('store not migrated');
    return this.#s;
  }

  async findRecipients(workspaceId: string, ids: string[]): Promise<RecipientsTable[]> {
    return this.#stmts.findRecipients.all(workspaceId, JSON.stringify(ids)) as RecipientsTable[];
  }

  acceptBatch(items: AcceptItem[]): Promise<AcceptOutcome[]> {
    const s = this.#stmts;
    const write = this.#raw.transaction((batch: AcceptItem[]) =>
      batch.map((item): AcceptOutcome => {
        if (item.idempotency) {
          const { key, requestHash, response, expiresAt } = item.idempotency;
          const r = s.insertIdempotency.run({
            workspace_id: item.notification.workspace_id,
            key,
            request_hash: requestHash,
            notification_id: item.notification.id,
            response,
            created_at: item.notification.created_at,
            expires_at: expiresAt,
          });
          if (r.changes === 0) return 'idempotency_conflict';
        }
        s.insertNotification.run(item.notification);
        for (const d of item.deliveries) s.insertDelivery.run(d);
        return 'ok';
      }),
    );
    return this.#lock.run(() => write(items));
  }

  claim(channel: string, owner: string, limit: number, now: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    const s = this.#stmts;
    const run = this.#raw.transaction(() => {
      const ids = (s.claim.all({ channel, owner, limit, now, lease_until: now + leaseMs }) as { id: string }[]).map((r) => r.id);
      if (ids.length === 0) return [];
      return s.claimedJobs.all({ ids: JSON.stringify(ids) }) as ClaimedDelivery[];
    });
    return this.#lock.run(() => run.immediate());
  }

  settle(items: SettleItem[]): Promise<number> {
    const s = this.#stmts;
    const run = this.#raw.transaction(() => {
      const now = Date.now();
      const touched = new Set<string>();
      let moved = 0;
      for (const it of items) {
        const terminal = it.status !== 'failed';
        const row = s.settle.get({
          id: it.id,
          owner: it.owner,
          status: it.status,
          run_at: it.runAt ?? null,
          reason: it.reason ?? null,
          error_class: it.errorClass ?? null,
          error: it.error ?? null,
          provider_message_id: it.providerMessageId ?? null,
          now,
          completed_at: terminal ? now : null,
        }) as { notification_id: string } | undefined;
        if (row) {
          moved++;
          touched.add(row.notification_id);
        }
        s.insertAttempt.run({ id: newId('att'), ...it.attempt });
      }
      for (const id of touched) this.#refreshSync(id);
      return moved;
    });
    return this.#lock.run(() => run.immediate());
  }

  #refreshSync(notificationId: string): void {
    const s = this.#stmts;
    const counts = Object.fromEntries(
      (s.statusCounts.all(notificationId) as { status: DeliveryStatus; n: number }[]).map((r) => [r.status, r.n]),
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
    return this.#lock.run(() => this.#stmts.release.run({ owners: JSON.stringify(owners), now }).changes);
  }

  async leaseOwners(): Promise<string[]> {
    return (this.#stmts.leaseOwners.all() as { lease_owner: string }[]).map((r) => r.lease_owner);
  }
}
