// SQLite adapter (better-sqlite3, WAL, synchronous=FULL). The default, embedded store.
//
// Two connections. The hot-path writes (accept batches, claims, outcomes, lease releases) go to a
// writer thread with its own connection (sqlite-writer.ts), so their SQLite work and fsync overlap
// with HTTP and delivery work on another core, and the event loop never sleeps in SQLite's busy
// handler waiting for the other connection's transaction. Everything else uses the main
// connection through Kysely. Without a writer thread (':memory:') the hot path runs on the main
// connection too: better-sqlite3 is synchronous, so each hot-path method runs its statements and
// transaction in one uninterrupted turn of the event loop, and the only way two things could
// interleave there is a Kysely transaction that awaits between statements; `transaction()`
// therefore holds a mutex that the inline hot path also takes. Every write transaction begins
// IMMEDIATE: with two connections, a transaction that begins as a reader and upgrades to a writer
// could fail at once with SQLITE_BUSY (no busy wait) if the other connection committed in between.

import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, Migrator, SqliteDialect, sql } from 'kysely';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { CLAIMABLE_SQL, RECIPIENT_ADDRESS_COLUMNS, type AcceptItem, type AcceptOutcome, type ClaimedDelivery, type ClaimedLease, type RecipientAddresses, type SettleItem, type StoreAdapter } from './adapter.ts';
import { migrationProvider } from './migrations/index.ts';
import { Mutex } from './mutex.ts';
import { deliveryValues } from './delivery-write.ts';
import { configureConnection, INSERT_DELIVERIES, packBatch, prepareAcceptWrite, rowsJson } from './sqlite-accept.ts';
import { prepareQueue, type SqliteQueue } from './sqlite-queue.ts';
import { MERGE_ITEMS, SqliteWriter } from './sqlite-writer.ts';
import type { Database, DeliveriesTable } from './schema.ts';

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

/** Where the hot-path writes run: the writer thread (SqliteWriter), or the main connection (inlineHotPath). */
type HotPath = Pick<SqliteWriter, 'write' | 'claim' | 'settle' | 'release'>;

/** The hot path on the main connection, each call whole under `lock` (see the header). */
function inlineHotPath(db: BetterSqlite3.Database, lock: Mutex, queue: SqliteQueue): HotPath {
  const write = prepareAcceptWrite(db);
  return {
    write: (items) => lock.run(() => write([packBatch(items)])[0]!),
    claim: (channel, owner, limit, now, leaseMs) => lock.run(() => queue.claim(channel, owner, limit, now, leaseMs)),
    settle: (items) => lock.run(() => queue.settle(items)),
    release: (owners, now) => lock.run(() => queue.release(owners, now)),
  };
}

export class SqliteAdapter implements StoreAdapter {
  readonly dialect = 'sqlite' as const;
  readonly db: Kysely<Database>;
  readonly #raw: BetterSqlite3.Database;
  readonly #lock = new Mutex();
  readonly #writer: SqliteWriter | undefined;
  /** Channels whose last claim found work (see claim). */
  readonly #busyChannels = new Set<string>();
  readonly acceptBatching: { maxBatch: number; maxInFlight: number };
  #s: ReturnType<SqliteAdapter['prepare']> | undefined;
  /** The queue's statements on the main connection: notification status refreshes, and the inline hot path. */
  #queue: SqliteQueue | undefined;
  #hot: HotPath | undefined;

  /**
   * `writerThread` (default: true for a file, false for ':memory:', which another connection
   * cannot share): run the hot-path writes (accepts, claims, outcomes, lease releases) on a writer thread.
   * `writerIdleStopMs`: how long that thread may go without a call before it is stopped (IDLE_STOP_MS).
   */
  constructor(path: string, opts: { writerThread?: boolean; writerIdleStopMs?: number } = {}) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.#raw = new BetterSqlite3(path);
    configureConnection(this.#raw);
    this.db = new Kysely<Database>({ dialect: new SqliteDialect({ database: this.#raw }) });
    if (opts.writerThread ?? path !== ':memory:') {
      this.#writer = new SqliteWriter(path, { idleStopMs: opts.writerIdleStopMs });
      // The writer thread checkpoints (sqlite-writer.ts); commits here never block the event loop on one.
      this.#raw.pragma('wal_autocheckpoint = 0');
    }
    this.acceptBatching = this.#writer ? WRITER_BATCHING : INLINE_BATCHING;
  }

  /** Whether the writer thread runs now (false without one, or while it is stopped for idleness). */
  get writerRunning(): boolean {
    return this.#writer?.running ?? false;
  }

  async migrate(): Promise<void> {
    const { error } = await new Migrator({ db: this.db, provider: migrationProvider , allowUnorderedMigrations: true }).migrateToLatest();
    if (error) throw error;
    this.#s = this.prepare();
    this.#queue = prepareQueue(this.#raw);
    if (this.#writer) await this.#writer.start();
    this.#hot = this.#writer ?? inlineHotPath(this.#raw, this.#lock, this.#queue);
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
   * Prepared statements for the reads the event loop makes per request or per pool tick; see
   * StoreAdapter for each contract. Parameters are positional (binding named parameters from
   * objects costs measurably more per row).
   */
  private prepare() {
    const p = (s: string) => this.#raw.prepare(s);
    // The lease queue's claim: the due rows of a kind, oldest first, with the due_at each had
    // (returned in that order). Parameters: kind, now, limit, then owner, lease until, now.
    const dueLeases = p(`SELECT key, due_at FROM lease_queue WHERE kind = ? AND due_at <= ? ORDER BY due_at, key LIMIT ?`);
    const takeLease = p(`
      UPDATE lease_queue SET owner = ?, due_at = ?, attempts = attempts + 1, updated_at = ?
       WHERE kind = ? AND key = ?
      RETURNING kind, key, payload, attempts, due_at AS lease_until`);
    const claimLeases = this.#raw.transaction((kind: string, owner: string, limit: number, now: number, leaseMs: number): ClaimedLease[] =>
      (dueLeases.all(kind, now, limit) as { key: string }[]).map((r) => takeLease.get(owner, now + leaseMs, now, kind, r.key) as ClaimedLease),
    );
    return {
      anyDueLease: p(`SELECT 1 FROM lease_queue WHERE kind = ? AND due_at <= ? LIMIT 1`),
      // The claim's own predicate (sqlite-queue.ts), so the same partial index answers it.
      anyClaimable: p(`SELECT 1 FROM deliveries WHERE channel = ? AND status IN (${CLAIMABLE_SQL}) AND run_at <= ? LIMIT 1`),
      claimLeases,
      findRecipient: p(`SELECT ${RECIPIENT_ADDRESS_COLUMNS} FROM recipients WHERE workspace_id = ? AND id = ?`),
      findRecipients: p(`SELECT ${RECIPIENT_ADDRESS_COLUMNS} FROM recipients WHERE workspace_id = ? AND id IN (SELECT value FROM json_each(?))`),
      // `status IN (CLAIMABLE_SQL)`: the predicate of the partial index deliveries_due, so it is used.
      leaseOwners: p(`
        SELECT DISTINCT lease_owner FROM deliveries
         WHERE status IN (${CLAIMABLE_SQL}) AND status = 'sending' AND lease_owner IS NOT NULL`),
    };
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
    return this.#hotPath.write(items);
  }

  claim(channel: string, owner: string, limit: number, now: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    // Unless this channel's last claim found work, a read on this connection comes first: idle
    // polls never call the writer thread, which can then stop for idleness (sqlite-writer.ts) and
    // is started only for due work. The read may be stale; the claim decides. While claims find
    // work (a drain), none reads first.
    if (this.#writer && !this.#busyChannels.has(channel) && !this.#stmts.anyClaimable.get(channel, now)) return Promise.resolve([]);
    return this.#hotPath.claim(channel, owner, limit, now, leaseMs).then((rows) => {
      if (rows.length > 0) this.#busyChannels.add(channel);
      else this.#busyChannels.delete(channel);
      return rows;
    });
  }

  settle(items: SettleItem[]): Promise<number> {
    return this.#hotPath.settle(items);
  }

  releaseLeases(owners: string[], now: number): Promise<number> {
    if (owners.length === 0) return Promise.resolve(0);
    return this.#hotPath.release(owners, now);
  }

  refreshNotificationStatus(notificationIds: string[]): Promise<void> {
    const queue = this.#queue;
    if (!queue) throw new Error('store not migrated');
    return this.#lock.run(() => queue.refresh(notificationIds));
  }

  get #hotPath(): HotPath {
    if (!this.#hot) throw new Error('store not migrated');
    return this.#hot;
  }

  /**
   * The lease queue's claim (StoreAdapter.claimLeases) on the main connection, under the lock that
   * keeps it out of a Kysely transaction in progress there; BEGIN IMMEDIATE, so the SELECT and the
   * UPDATE see the same committed state and no other connection claims in between. Only when a
   * plain read finds something due (the read may be stale; the transaction decides).
   */
  async insertDeliveries(db: Kysely<Database>, rows: readonly DeliveriesTable[]): Promise<void> {
    if (rows.length === 0) return;
    await db.executeQuery(CompiledQuery.raw(INSERT_DELIVERIES, [rowsJson(rows.map(deliveryValues))]));
  }

  async claimLeases(kind: string, owner: string, limit: number, now: number, leaseMs: number): Promise<ClaimedLease[]> {
    if (limit <= 0) return [];
    const { anyDueLease, claimLeases } = this.#stmts;
    // A read first: an idle poll takes no write lock, so it never waits for the writer thread's.
    if (!anyDueLease.get(kind, now)) return [];
    return this.#lock.run(() => claimLeases.immediate(kind, owner, limit, now, leaseMs));
  }

  async leaseOwners(): Promise<string[]> {
    return (this.#stmts.leaseOwners.all() as { lease_owner: string }[]).map((r) => r.lease_owner);
  }
}
