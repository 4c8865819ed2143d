// PostgreSQL adapter (pg Pool + Kysely's PostgresDialect). The store for more than one process.
//
// Plain CRUD goes through `db` (Kysely). The hot path is hand-written SQL sent through the same
// pg Pool as named (server-side prepared) statements; batches travel as arrays and are expanded
// with unnest(), so a batch costs the same number of round trips as a single item.
//
// Times are BIGINT (int8) milliseconds; this pool parses int8 to a JS number and refuses values
// beyond Number.MAX_SAFE_INTEGER rather than rounding them. The parser is set per pool, not
// globally, so other users of `pg` in the process are unaffected.
//
// Wake-ups: a commit that makes deliveries due sends `NOTIFY herald_deliveries, '<channel>'`
// (delivered by PostgreSQL when the transaction commits); `listen()` subscribes to them. They are
// hints: a notification can be lost (listener reconnecting), and NOTIFY is per database, so every
// Herald sharing the database (in any schema) hears it. Workers poll regardless.
//
// Outages: an unreachable database must fail requests fast, not hang them. Connecting (or waiting
// for a free pooled connection) gives up after CONNECT_TIMEOUT_MS; every hot-path statement after
// HOT_QUERY_TIMEOUT_MS, any other query after QUERY_TIMEOUT_MS (migrations excepted: they run on a
// connection of their own without a limit); TCP keepalive finds dead idle connections. A
// connection that failed or timed out is discarded, never reused. isUnavailable() tells these
// failures from the others, and no connection error can crash the process.

import { CompiledQuery, Kysely, Migrator, type PostgresPool, type PostgresPoolClient } from 'kysely';
import pg from 'pg';
import { summarizeNotification, type DeliveryStatus, type NotificationStatus } from '../domain/delivery-status.ts';
import { newId } from '../domain/ids.ts';
import { attemptOnRow, claimBatchKeys, CLAIMABLE_SQL, CLAIMED_JOB_COLUMNS, CLAIMED_JOB_JOINS, RECIPIENT_ADDRESS_COLUMNS, type AcceptItem, type AcceptOutcome, type ClaimedDelivery, type ClaimedLease, type RecipientAddresses, type SettleItem, type StoreAdapter } from './adapter.ts';
import { LEGACY_DELIVERY_PREDICATE, recipientsOf } from './delivery-keys.ts';
import { LEASE_KINDS } from './lease-queue.ts';
import { migrationProvider } from './migrations/index.ts';
import { SchemaPostgresDialect } from './pg-introspector.ts';
import { DELIVERY_COLUMNS, DELIVERY_PG_TYPES } from './delivery-write.ts';
import type { Database, DeliveriesTable } from './schema.ts';

/** The NOTIFY channel of delivery wake-ups; the payload is the delivery channel's name. */
export const WAKE_CHANNEL = 'herald_deliveries';

export interface PostgresOptions {
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /**
   * The schema Herald's tables live in: every connection runs with `search_path` set to it, and
   * `migrate()` creates it if missing. Lowercase letters, digits and `_`. Default: the
   * connection's own search_path (usually `public`).
   */
  schema?: string;
}

const INT8_OID = 20;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const LISTEN_BACKOFF_MIN_MS = 100;
const LISTEN_BACKOFF_MAX_MS = 30_000;
const CONNECT_TIMEOUT_MS = 5_000;
/** Hot-path statements (accept, claim, settle…) take milliseconds; this long means trouble. */
const HOT_QUERY_TIMEOUT_MS = 5_000;
/** The backstop for every other query (Kysely's CRUD and reads). */
const QUERY_TIMEOUT_MS = 30_000;
/** ping() answers within this, whatever the pool and the network do. */
const PING_TIMEOUT_MS = 3_000;
const KEEPALIVE_DELAY_MS = 10_000;

/** Node's socket errors that mean the server cannot be reached or the connection broke. */
const NETWORK_ERRORS = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH',
  'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'HERALD_PING_TIMEOUT',
]);
/**
 * SQLSTATEs of a server that cannot serve now: class 08 (connection exception, matched by
 * prefix), too_many_connections, the shutdown family, and read_only_sql_transaction (a primary
 * demoted to a standby during failover).
 */
const UNAVAILABLE_SQLSTATES = new Set(['53300', '57P01', '57P02', '57P03', '25006']);
/** pg and pg-pool raise these as plain Errors, without a code. */
const UNAVAILABLE_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error and is not queryable|Connection terminated due to connection timeout)/;

/**
 * Whether `err` means PostgreSQL is unreachable or cannot serve now (see StoreAdapter). Looks
 * through `cause` and AggregateError (a host name resolving to several addresses fails with one).
 */
export function isPostgresUnavailable(err: unknown, depth = 0): boolean {
  if (err === null || typeof err !== 'object' || depth > 5) return false;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string') {
    if (NETWORK_ERRORS.has(e.code) || UNAVAILABLE_SQLSTATES.has(e.code) || /^08[0-9A-Z]{3}$/.test(e.code)) return true;
  }
  if (typeof e.message === 'string' && UNAVAILABLE_MESSAGES.test(e.message)) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => isPostgresUnavailable(x, depth + 1))) return true;
  return isPostgresUnavailable(e.cause, depth + 1);
}

function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 value ${text} does not fit a JS number`);
  return n;
}

const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format ?? 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

// Hot-path statements. Each states the contract it implements (see StoreAdapter in adapter.ts).

/**
 * Idempotency records of a batch, inserted before anything else of their items. A row comes back
 * for each key that is now ours: new, or replacing an expired record. A key held by an unexpired
 * record returns nothing, and that item is reported `idempotency_conflict` with nothing written.
 * A concurrent transaction inserting the same key makes this one wait for its outcome, so across
 * processes exactly one request wins a key. Callers sort the rows by (workspace_id, key) so that
 * two batches lock keys in the same order and cannot deadlock.
 */
const INSERT_IDEMPOTENCY = {
  name: 'herald_accept_idempotency',
  query_timeout: HOT_QUERY_TIMEOUT_MS,
  text: `
    INSERT INTO idempotency_keys (workspace_id, key, request_hash, notification_id, response, created_at, expires_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[])
    ON CONFLICT (workspace_id, key) DO UPDATE SET
      request_hash = EXCLUDED.request_hash, notification_id = EXCLUDED.notification_id,
      response = EXCLUDED.response, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
    WHERE idempotency_keys.expires_at <= EXCLUDED.created_at
    RETURNING workspace_id, key`,
};

/**
 * Dedupe keys of a batch: a row comes back for each (workspace, recipient, key) that is now held by
 * its notification: new, or replacing an expired holder. A key held unexpired returns nothing.
 * Callers sort the rows and give each key at most once per statement.
 */
const INSERT_DEDUPE = {
  name: 'herald_accept_dedupe',
  query_timeout: HOT_QUERY_TIMEOUT_MS,
  text: `
    INSERT INTO dedupe_keys (workspace_id, recipient_id, key, notification_id, created_at, expires_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[])
    ON CONFLICT (workspace_id, recipient_id, key) DO UPDATE SET
      notification_id = EXCLUDED.notification_id, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
    WHERE dedupe_keys.expires_at <= EXCLUDED.created_at
    RETURNING notification_id`,
};

/**
 * PostgreSQL's one delivery write (store/delivery-write.ts): DELIVERY_COLUMNS from one array
 * parameter each, numbered from $first in column order. The accept write embeds it; alone
 * (INSERT_DELIVERIES) it is StoreAdapter.insertDeliveries.
 */
function insertDeliveries(first: number): string {
  const arrays = DELIVERY_COLUMNS.map((c, i) => `$${first + i}::${DELIVERY_PG_TYPES[c]}[]`);
  return `INSERT INTO deliveries (${DELIVERY_COLUMNS.join(', ')}) SELECT * FROM unnest(${arrays.join(', ')})`;
}

const INSERT_DELIVERIES = { name: 'herald_insert_deliveries', query_timeout: HOT_QUERY_TIMEOUT_MS, text: insertDeliveries(1) };

/** The column arrays of `rows` for insertDeliveries, in DELIVERY_COLUMNS order. */
const deliveryColumns = (rows: readonly DeliveriesTable[]) => columns(rows, DELIVERY_COLUMNS.map((c) => (d: DeliveriesTable) => d[c]));

/**
 * The notifications, deliveries and notification_recipients rows of a batch (a notification with
 * one recipient names it in recipient_id, any other gets a row per recipient: recipientsOf in
 * store/delivery-keys.ts), as three multi-row inserts in one statement, then a wake-up NOTIFY per
 * channel that got pending deliveries (sent by PostgreSQL on commit). Parameters, in order: the
 * notifications' 16 columns ($1…$16), the deliveries' 20 ($17…$36, insertDeliveries),
 * notification_recipients' 3 ($37…$39), each a column array in the INSERT's column order.
 */
const INSERT_NOTIFICATIONS = {
  name: 'herald_accept_write',
  query_timeout: HOT_QUERY_TIMEOUT_MS,
  text: `
    WITH n AS (
      INSERT INTO notifications (id, workspace_id, kind, title, body, data, metadata, status, idempotency_key, created_at, delivery_count,
                                 channel_options, fallback, routing, template, recipient_id)
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                           $9::text[], $10::int8[], $11::int4[], $12::text[], $13::int4[], $14::text[], $15::text[], $16::text[])
    ), d AS (
      ${insertDeliveries(17)}
      RETURNING channel, status
    ), r AS (
      INSERT INTO notification_recipients (workspace_id, recipient_id, notification_id)
      SELECT * FROM unnest($37::text[], $38::text[], $39::text[])
    )
    SELECT pg_notify('${WAKE_CHANNEL}', channel) FROM (SELECT DISTINCT channel FROM d WHERE status = 'pending') AS woken`,
};

/**
 * The fan-out rows of a batch's topic sends, and for each its lease-queue row (kind fanout, key the
 * notification id, free and due at its created_at). Parameters, in order: the fanouts columns
 * ($1…$10), each a column array in the INSERT's column order.
 */
const INSERT_FANOUTS = {
  name: 'herald_accept_fanouts',
  query_timeout: HOT_QUERY_TIMEOUT_MS,
  text: `
    WITH f AS (
      INSERT INTO fanouts (notification_id, workspace_id, topic, request, template_version, after, state, recipients, created_at, updated_at)
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::text[], $7::text[], $8::int4[], $9::int8[], $10::int8[])
      RETURNING notification_id, created_at
    )
    INSERT INTO lease_queue (kind, key, due_at, owner, attempts, payload, created_at, updated_at)
    SELECT '${LEASE_KINDS.fanout}', notification_id, created_at, NULL, 0, NULL, created_at, created_at FROM f`,
};

/**
 * The first CTE of the claim and settle statements: sets synchronous_commit = off for the
 * statement's own transaction (set_config's is_local: the implicit transaction of an autocommit
 * statement, or the caller's BEGIN … COMMIT), so its COMMIT returns without waiting for the WAL
 * flush; the WAL writer flushes it within a few wal_writer_delay (200 ms by default), and any later
 * durable commit on the server flushes it first. Visibility to other sessions is unchanged. Only
 * claims and outcomes commit this way, never accepts: if PostgreSQL crashes right after, a claim
 * is lost (the row is due again and claimed again) or an outcome is lost (the delivery is still
 * `sending`, and is claimed and attempted again when its lease expires; the attempt row is lost
 * with it). At-least-once delivery allows both; SQLite commits the same writes with
 * synchronous=NORMAL for the same reason (see sqlite.ts). The final SELECT of each statement
 * reads this CTE so that it runs (an unreferenced SELECT CTE is not evaluated).
 */
const RELAXED_COMMIT = `relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS sync)`;

/**
 * Claim, in one statement: lock up to `limit` due rows of channel $1 (CLAIMABLE with run_at <= now
 * $2: waiting rows that are due, and `sending` rows whose lease has expired), oldest run_at first,
 * skipping rows another transaction has locked, so concurrent claimers never get the same row. A row another claimer committed after
 * this statement's snapshot is re-checked against the WHERE once unlocked, and is dropped since
 * its run_at is now a future lease expiry. Each claimed row becomes `sending`, attempts + 1,
 * leased to $3 until $4. The result joins the notification and the recipient (recipient_exists is
 * NULL when the recipient is gone), ordered by the run_at the rows were due at.
 * `status IN (CLAIMABLE_SQL)` is the predicate of the partial index deliveries_due, so it is used.
 * Commits without waiting for the WAL flush (RELAXED_COMMIT).
 *
 * The limit is a literal, one prepared statement per limit (claimStatement): with `LIMIT $n` the
 * planner cannot bound the rows of a generic plan (it assumes a tenth of the due rows), so
 * PostgreSQL planned every execution afresh (custom plans, about 0.3 ms per claim, measured 8 µs of
 * PostgreSQL CPU per claimed job in batches of 64). With the limit known, every row estimate is at
 * most `limit`, the generic plan is the custom one (index scan of deliveries_due, key lookups for
 * the joins), and after its first five executions PostgreSQL reuses it. A worker claims at most
 * its concurrency at once, so a connection holds a few dozen of these statements at most.
 */
function claimText(limit: number): string {
  return `
    WITH ${RELAXED_COMMIT}, due AS (
      SELECT id, run_at FROM deliveries
       WHERE channel = $1 AND status IN (${CLAIMABLE_SQL}) AND run_at <= $2
       ORDER BY run_at
       LIMIT ${limit}
       FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE deliveries d
         SET status = 'sending', attempts = d.attempts + 1, lease_owner = $3, run_at = $4, updated_at = $2
        FROM due
       WHERE d.id = due.id
      RETURNING d.id, d.workspace_id, d.notification_id, d.recipient_id, d.channel, d.device_id, d.attempts, d.content, d.digest_id, due.run_at AS due_at
    )
    SELECT ${CLAIMED_JOB_COLUMNS}
      FROM claimed d
     CROSS JOIN relaxed
      ${CLAIMED_JOB_JOINS}
     ORDER BY d.due_at, d.id`;
}

const claimStatements = new Map<number, pg.QueryConfig>();

/** The claim statement for `limit` (a positive integer), made once per limit. */
function claimStatement(limit: number): pg.QueryConfig {
  let st = claimStatements.get(limit);
  if (!st) {
    if (!Number.isSafeInteger(limit) || limit <= 0) throw new RangeError(`claim limit ${limit} is not a positive integer`);
    st = { name: `herald_claim_${limit}`, query_timeout: HOT_QUERY_TIMEOUT_MS, text: claimText(limit) } as pg.QueryConfig;
    claimStatements.set(limit, st);
  }
  return st;
}

/**
 * Settle, one statement for a batch: moves each delivery only while it is still `sending` under
 * the owner that claimed it (a lease that expired and was claimed again belongs to the new owner;
 * the old owner's write is ignored), and records every item's attempt (the attempt happened
 * whether or not its outcome still applies).
 * Parameters, in order: $1 now; per moved delivery ($2…$19, one array each): id, owner, status,
 * run_at, reason, error_class, error, provider_message_id, completed_at, notification_status,
 * then its successful attempt's id, number, started_at, duration_ms, http_status, smtp_reply,
 * response and workspace_id (all NULL unless attemptOnRow); per other attempt ($20…$31): the
 * delivery_attempts columns in the INSERT's order.
 * A successful attempt of a moved delivery (att_id set) is written on the delivery row by the same
 * UPDATE (success_* columns; a move without one keeps what the row holds); if that delivery does not
 * move, the attempt is appended to delivery_attempts instead (the second SELECT of `logged`). The
 * other attempts are appended to delivery_attempts (its first SELECT).
 * For a moved delivery whose notification has only that delivery, notification_status carries the
 * notification's new status (summarizeNotification of this one outcome) and the statement writes
 * it, if it changes, in the same statement: only the lease owner can move the delivery, so nothing
 * else can decide that notification's status meanwhile (an operator's refresh that locked the row
 * first is waited for, then the row re-checked). For other deliveries it is NULL and the caller
 * recomputes their notification's status (#refresh).
 * Returns each moved delivery's notification and notification_status. Each delivery id appears at
 * most once in $2 (the caller keeps the first item per id). Commits without waiting for the WAL
 * flush (RELAXED_COMMIT).
 */
const SETTLE = {
  name: 'herald_settle',
  query_timeout: HOT_QUERY_TIMEOUT_MS,
  text: `
    WITH ${RELAXED_COMMIT}, moved AS (
      UPDATE deliveries d
         SET status = v.status, run_at = COALESCE(v.run_at, d.run_at), lease_owner = NULL, reason = v.reason,
             error_class = v.error_class, last_error = v.error,
             provider_message_id = COALESCE(v.provider_message_id, d.provider_message_id),
             updated_at = $1, completed_at = v.completed_at,
             success_attempt_id = COALESCE(v.att_id, d.success_attempt_id),
             success_attempt = CASE WHEN v.att_id IS NULL THEN d.success_attempt ELSE v.att_attempt END,
             success_started_at = CASE WHEN v.att_id IS NULL THEN d.success_started_at ELSE v.att_started_at END,
             success_duration_ms = CASE WHEN v.att_id IS NULL THEN d.success_duration_ms ELSE v.att_duration_ms END,
             success_http_status = CASE WHEN v.att_id IS NULL THEN d.success_http_status ELSE v.att_http_status END,
             success_smtp_reply = CASE WHEN v.att_id IS NULL THEN d.success_smtp_reply ELSE v.att_smtp_reply END,
             success_response = CASE WHEN v.att_id IS NULL THEN d.success_response ELSE v.att_response END
        FROM unnest($2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::text[], $8::text[], $9::text[],
                    $10::int8[], $11::text[], $12::text[], $13::int4[], $14::int8[], $15::int4[], $16::int4[], $17::text[], $18::text[],
                    $19::text[])
               AS v(id, owner, status, run_at, reason, error_class, error, provider_message_id, completed_at, notification_status,
                    att_id, att_attempt, att_started_at, att_duration_ms, att_http_status, att_smtp_reply, att_response, att_workspace_id)
       WHERE d.id = v.id AND d.status = 'sending' AND d.lease_owner = v.owner
      RETURNING d.id, d.notification_id, v.notification_status
    ), logged AS (
      INSERT INTO delivery_attempts (id, delivery_id, workspace_id, attempt, started_at, duration_ms, outcome,
                                     error_class, error, http_status, smtp_reply, response)
      SELECT * FROM unnest($20::text[], $21::text[], $22::text[], $23::int4[], $24::int8[], $25::int4[], $26::text[],
                           $27::text[], $28::text[], $29::int4[], $30::text[], $31::text[])
      UNION ALL
      SELECT s.att_id, s.id, s.workspace_id, s.attempt, s.started_at, s.duration_ms, 'success', NULL, NULL, s.http_status, s.smtp_reply, s.response
        FROM unnest($2::text[], $12::text[], $13::int4[], $14::int8[], $15::int4[], $16::int4[], $17::text[], $18::text[], $19::text[])
               AS s(id, att_id, attempt, started_at, duration_ms, http_status, smtp_reply, response, workspace_id)
       WHERE s.att_id IS NOT NULL AND s.id NOT IN (SELECT id FROM moved)
    ), summarized AS (
      UPDATE notifications n SET status = m.notification_status
        FROM moved m
       WHERE n.id = m.notification_id AND m.notification_status IS NOT NULL AND n.status <> m.notification_status
    )
    SELECT m.notification_id, m.notification_status FROM moved m, relaxed`,
};

/**
 * Locks the notifications whose status is about to be recomputed, in id order (so concurrent
 * refreshers cannot deadlock). The status counts must be read by a later statement: under READ
 * COMMITTED that statement's snapshot includes whatever the previous lock holder committed, so two
 * transactions settling different deliveries of one notification cannot both miss each other.
 */
const LOCK_NOTIFICATIONS = {
  name: 'herald_lock_notifications',
  query_timeout: HOT_QUERY_TIMEOUT_MS,
  text: `SELECT id, status FROM notifications WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
};

/**
 * Delivery counts by status of the notifications $1: a range scan of the primary key per
 * notification (its deliveries' ids start with `dlv_` + its id from the 5th character) plus the
 * rows made before migration 0013 through deliveries_notification_legacy (store/delivery-keys.ts;
 * the predicate is repeated verbatim so the planner uses that index). The two parts are disjoint
 * (the first excludes the legacy predicate's rows); a (notification, status) pair can come back
 * twice, once from each, and the caller adds them up.
 */
const STATUS_COUNTS = {
  name: 'herald_status_counts',
  query_timeout: HOT_QUERY_TIMEOUT_MS,
  text: `
    SELECT notification_id, status, count(*) AS n
      FROM unnest($1::text[]) AS v(nid)
      JOIN deliveries ON notification_id = v.nid AND id >= 'dlv_' || substr(v.nid, 5) AND id < 'dlv_' || substr(v.nid, 5) || '~'
     WHERE NOT (${LEGACY_DELIVERY_PREDICATE})
     GROUP BY notification_id, status
    UNION ALL
    SELECT notification_id, status, count(*) AS n
      FROM deliveries
     WHERE notification_id = ANY($1::text[]) AND ${LEGACY_DELIVERY_PREDICATE}
     GROUP BY notification_id, status`,
};

const SET_NOTIFICATION_STATUS = {
  name: 'herald_set_notification_status',
  query_timeout: HOT_QUERY_TIMEOUT_MS,
  text: `
    UPDATE notifications n SET status = v.status
      FROM unnest($1::text[], $2::text[]) AS v(id, status)
     WHERE n.id = v.id`,
};

/**
 * Gives back the leases of owners $2 that are still `sending`: due now ($1), the unfinished attempt
 * not counted (attempts - 1), `failed` if an earlier attempt had failed (attempts > 1 before the
 * decrement) else `pending`; wakes the channels that got work back. Returns how many were released.
 */
const RELEASE = {
  name: 'herald_release',
  query_timeout: HOT_QUERY_TIMEOUT_MS,
  text: `
    WITH released AS (
      UPDATE deliveries
         SET status = CASE WHEN attempts > 1 THEN 'failed' ELSE 'pending' END,
             attempts = attempts - 1, lease_owner = NULL, run_at = $1, updated_at = $1
       WHERE status = 'sending' AND lease_owner = ANY($2::text[])
      RETURNING channel
    ), woken AS (
      SELECT pg_notify('${WAKE_CHANNEL}', channel) FROM (SELECT DISTINCT channel FROM released) AS c
    )
    SELECT (SELECT count(*) FROM released) AS n, (SELECT count(*) FROM woken) AS woken`,
};

/**
 * The lease queue's claim (StoreAdapter.claimLeases): locks up to $3 rows of kind $1 due at $2
 * (due_at <= now: free and due, or leased and expired), oldest first, skipping rows another
 * transaction has locked, so concurrent claimers never get the same row (a row another claimer
 * took after this statement's snapshot is re-checked once unlocked, and dropped: its due_at is now
 * a future expiry). Each becomes leased to $4 until $5, attempts + 1. Returned in due order.
 */
const CLAIM_LEASES = {
  name: 'herald_claim_leases',
  query_timeout: HOT_QUERY_TIMEOUT_MS,
  text: `
    WITH due AS (
      SELECT kind, key, due_at FROM lease_queue
       WHERE kind = $1 AND due_at <= $2
       ORDER BY due_at
       LIMIT $3
       FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE lease_queue q
         SET owner = $4, due_at = $5, attempts = q.attempts + 1, updated_at = $2
        FROM due
       WHERE q.kind = due.kind AND q.key = due.key
      RETURNING q.kind, q.key, q.payload, q.attempts, q.due_at AS lease_until, due.due_at AS was_due
    )
    SELECT kind, key, payload, attempts, lease_until FROM claimed ORDER BY was_due, key`,
};

const LEASE_OWNERS = {
  name: 'herald_lease_owners',
  query_timeout: HOT_QUERY_TIMEOUT_MS,
  text: `SELECT DISTINCT lease_owner FROM deliveries WHERE status = 'sending' AND lease_owner IS NOT NULL`,
};

const FIND_RECIPIENTS = {
  name: 'herald_find_recipients',
  query_timeout: HOT_QUERY_TIMEOUT_MS,
  text: `SELECT ${RECIPIENT_ADDRESS_COLUMNS} FROM recipients WHERE workspace_id = $1 AND id = ANY($2::text[])`,
};

/** Every hot-path statement above (the claim at one limit), for tests that check them as text. */
export const HOT_STATEMENTS: readonly { name?: string; text: string }[] = [
  INSERT_IDEMPOTENCY, INSERT_DEDUPE, INSERT_NOTIFICATIONS, INSERT_DELIVERIES, INSERT_FANOUTS, claimStatement(1), SETTLE, LOCK_NOTIFICATIONS, STATUS_COUNTS,
  SET_NOTIFICATION_STATUS, RELEASE, LEASE_OWNERS, FIND_RECIPIENTS, CLAIM_LEASES,
];

const TX_BEGIN = { text: 'BEGIN', query_timeout: HOT_QUERY_TIMEOUT_MS } as pg.QueryConfig;
const TX_COMMIT = { text: 'COMMIT', query_timeout: HOT_QUERY_TIMEOUT_MS } as pg.QueryConfig;
const TX_ROLLBACK = { text: 'ROLLBACK', query_timeout: HOT_QUERY_TIMEOUT_MS } as pg.QueryConfig;

type Queryable = pg.Pool | pg.PoolClient;

export class PostgresAdapter implements StoreAdapter {
  readonly dialect = 'postgres' as const;
  /** Each batch is its own transaction and round trip: one at a time makes the batches large. */
  readonly acceptBatching = { maxBatch: 256, maxInFlight: 1 };
  readonly db: Kysely<Database>;
  readonly #pool: pg.Pool;
  readonly #clientConfig: pg.ClientConfig;
  readonly #schema: string | undefined;
  readonly #listeners = new Set<() => Promise<void>>();

  constructor(connectionString: string, options: PostgresOptions = {}) {
    const { poolSize = 10, schema } = options;
    if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
      throw new Error(`invalid schema name "${schema}": use lowercase letters, digits and _ (at most 63), not starting with a digit`);
    }
    this.#schema = schema;
    this.#clientConfig = {
      ...connectionConfig(connectionString, schema),
      types,
      application_name: 'herald',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    };
    this.#pool = new pg.Pool({ ...this.#clientConfig, max: poolSize, query_timeout: QUERY_TIMEOUT_MS });
    // An idle pooled connection that drops (server restart) is discarded by the pool; the error
    // surfaces on the next query if the server is really gone. Without a listener it would crash
    // the process.
    this.#pool.on('error', () => undefined);
    // A checked-out connection that breaks emits 'error' too, which nothing else listens to there
    // (Kysely does not): the query in flight fails with the error, and the connection, marked
    // unqueryable, is discarded when released.
    this.#pool.on('connect', (client) => client.on('error', () => undefined));
    this.db = new Kysely<Database>({ dialect: new SchemaPostgresDialect({ pool: discardingPool(this.#pool) }, schema) });
  }

  /**
   * Applies pending migrations. Kysely's migrator holds a PostgreSQL advisory lock while it
   * migrates, so processes starting together migrate once; the others wait, then find nothing to
   * do. The migration bookkeeping tables are placed in the adapter's schema explicitly: Kysely
   * otherwise looks for them in every schema of the database and would take another schema's for
   * its own.
   */
  async migrate(): Promise<void> {
    let schema = this.#schema;
    if (schema === undefined) {
      const { rows } = await this.#pool.query<{ schema: string | null }>('SELECT current_schema() AS schema');
      schema = rows[0]?.schema ?? undefined;
      if (schema === undefined) throw new Error('PostgreSQL: no schema of the search_path exists; create one or set a schema');
    }
    // Without QUERY_TIMEOUT_MS: a migration, or waiting for another process's, may take long.
    const pool = new pg.Pool({ ...this.#clientConfig, max: 1 });
    pool.on('error', () => undefined);
    pool.on('connect', (client) => client.on('error', () => undefined));
    const db = new Kysely<Database>({ dialect: new SchemaPostgresDialect({ pool }, schema) });
    try {
      const { error } = await new Migrator({ db, provider: migrationProvider, migrationTableSchema: schema , allowUnorderedMigrations: true }).migrateToLatest();
      if (error) throw error;
    } finally {
      await db.destroy();
    }
  }

  async appliedMigration(): Promise<string | undefined> {
    try {
      const { rows } = await this.#pool.query<{ name: string }>({
        text: 'SELECT name FROM kysely_migration ORDER BY name DESC LIMIT 1',
        query_timeout: HOT_QUERY_TIMEOUT_MS,
      } as pg.QueryConfig);
      return rows[0]?.name;
    } catch (err) {
      if ((err as { code?: string }).code === '42P01') return undefined; // undefined_table: never migrated
      throw err;
    }
  }

  /**
   * SELECT 1 through the pool, raced against PING_TIMEOUT_MS: rejects by then whether connecting,
   * waiting for a free connection or the query is what hangs (error code HERALD_PING_TIMEOUT).
   */
  async ping(): Promise<void> {
    const query = this.#pool.query({ text: 'SELECT 1', query_timeout: PING_TIMEOUT_MS } as pg.QueryConfig);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        query.catch(() => undefined); // it ends on its own timeouts; its outcome no longer matters
        reject(Object.assign(new Error(`PostgreSQL did not answer within ${PING_TIMEOUT_MS}ms`), { code: 'HERALD_PING_TIMEOUT' }));
      }, PING_TIMEOUT_MS);
    });
    try {
      await Promise.race([query, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  isUnavailable(err: unknown): boolean {
    return isPostgresUnavailable(err);
  }

  /** Stops every listener, then closes the pool. */
  async close(): Promise<void> {
    await Promise.all([...this.#listeners].map((stop) => stop()));
    await this.db.destroy();
    // Kysely ends the pool only if it used it itself.
    if (!this.#pool.ended) await this.#pool.end();
  }

  transaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  async findRecipients(workspaceId: string, ids: string[]): Promise<RecipientAddresses[]> {
    if (ids.length === 0) return [];
    return (await this.#pool.query<RecipientAddresses>({ ...FIND_RECIPIENTS, values: [workspaceId, ids] })).rows;
  }

  /**
   * One transaction per batch: idempotency records first (see INSERT_IDEMPOTENCY), then the
   * notifications and deliveries of the items that got their key (or had none), then COMMIT, which
   * with synchronous_commit on (PostgreSQL's default) returns once the commit is durable. A batch
   * without idempotency keys is a single statement, its own transaction. Within one batch the first
   * item with a given key wins; later ones are conflicts (claimBatchKeys).
   */
  async acceptBatch(items: AcceptItem[]): Promise<AcceptOutcome[]> {
    if (items.length === 0) return [];
    const { outcomes, idempotency: keyed, dedupe: deduped } = claimBatchKeys(items);
    const fanouts = items.some((it) => it.fanout);
    if (keyed.size === 0 && deduped.size === 0 && !fanouts) {
      await this.#writeAccepted(this.#pool, items);
      return outcomes;
    }
    return this.#tx(async (c) => {
      const sorted = <K>(m: Map<string, K>) => [...m.entries()].filter(([, i]) => outcomes[i as number] === 'ok').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      if (keyed.size > 0) {
        const rows = sorted(keyed).map(([, i]) => items[i]!);
        const won = await c.query<{ workspace_id: string; key: string }>({
          ...INSERT_IDEMPOTENCY,
          values: columns(rows, [
            (it) => it.notification.workspace_id,
            (it) => it.idempotency!.key,
            (it) => it.idempotency!.requestHash,
            (it) => it.notification.id,
            (it) => it.idempotency!.response,
            (it) => it.notification.created_at,
            (it) => it.idempotency!.expiresAt,
          ]),
        });
        const ours = new Set(won.rows.map((r) => `${r.workspace_id}\u0000${r.key}`));
        for (const [k, i] of keyed) if (outcomes[i] === 'ok' && !ours.has(k)) outcomes[i] = 'idempotency_conflict';
      }
      if (deduped.size > 0) {
        const rows = sorted(deduped).map(([k, i]) => ({ item: items[i]!, recipient: k.split('\u0000')[1]! }));
        const won = await c.query<{ notification_id: string }>({
          ...INSERT_DEDUPE,
          values: columns(rows, [
            (r) => r.item.notification.workspace_id,
            (r) => r.recipient,
            (r) => r.item.dedupe!.key,
            (r) => r.item.notification.id,
            (r) => r.item.notification.created_at,
            (r) => r.item.dedupe!.expiresAt,
          ]),
        });
        const held = new Map<string, number>();
        for (const r of won.rows) held.set(r.notification_id, (held.get(r.notification_id) ?? 0) + 1);
        const lost: string[] = [];
        items.forEach((item, i) => {
          if (outcomes[i] !== 'ok' || !item.dedupe?.recipients.length) return;
          if ((held.get(item.notification.id) ?? 0) < item.dedupe.recipients.length) {
            outcomes[i] = 'dedupe_conflict';
            lost.push(item.notification.id);
          }
        });
        // What the losers took before losing (their idempotency record, their other keys) is given back.
        if (lost.length > 0) {
          await c.query({ text: 'DELETE FROM dedupe_keys WHERE notification_id = ANY($1::text[])', values: [lost] });
          await c.query({ text: 'DELETE FROM idempotency_keys WHERE notification_id = ANY($1::text[])', values: [lost] });
        }
      }
      const accepted = items.filter((_, i) => outcomes[i] === 'ok');
      if (accepted.length > 0) await this.#writeAccepted(c, accepted);
      const fanoutRows = accepted.flatMap((it) => (it.fanout ? [it.fanout] : []));
      if (fanoutRows.length > 0) {
        await c.query({
          ...INSERT_FANOUTS,
          values: columns(fanoutRows, [(f) => f.notification_id, (f) => f.workspace_id, (f) => f.topic, (f) => f.request, (f) => f.template_version,
            (f) => f.after, (f) => f.state, (f) => f.recipients, (f) => f.created_at, (f) => f.updated_at]),
        });
      }
      return outcomes;
    });
  }

  async #writeAccepted(q: Queryable, items: AcceptItem[]): Promise<void> {
    const ns = items.map((it) => it.notification);
    const ds = items.flatMap((it) => it.deliveries);
    const recipients = items.map((it) => recipientsOf(it.deliveries));
    await q.query({
      ...INSERT_NOTIFICATIONS,
      values: [
        ...columns(ns, [(n) => n.id, (n) => n.workspace_id, (n) => n.kind, (n) => n.title, (n) => n.body, (n) => n.data,
          (n) => n.metadata, (n) => n.status, (n) => n.idempotency_key, (n) => n.created_at, (n) => n.delivery_count,
          (n) => n.channel_options, (n) => n.fallback, (n) => n.routing, (n) => n.template]),
        pgArray(recipients.map((r) => r.recipientId)),
        ...deliveryColumns(ds),
        ...columns(recipients.flatMap((r) => r.rows), [(r) => r.workspace_id, (r) => r.recipient_id, (r) => r.notification_id]),
      ],
    });
  }

  async claim(channel: string, owner: string, limit: number, now: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    if (limit <= 0) return [];
    return (await this.#pool.query<ClaimedDelivery>({ ...claimStatement(limit), values: [channel, now, owner, now + leaseMs] })).rows;
  }

  /**
   * SETTLE for the batch. When every item's delivery is its notification's only one (deliveryCount
   * 1, the common case) that one statement is the whole write, its own transaction (autocommit).
   * Otherwise it runs in a transaction followed by #refresh of the other notifications touched.
   */
  async settle(items: SettleItem[]): Promise<number> {
    if (items.length === 0) return 0;
    const now = Date.now();
    const firstPerId = new Map<string, SettleItem>();
    for (const it of items) if (!firstPerId.has(it.id)) firstPerId.set(it.id, it);
    const moves = [...firstPerId.values()];
    const onRow = new Set(moves.filter(attemptOnRow));
    const row = (get: (a: SettleItem['attempt']) => unknown) => (it: SettleItem) => (onRow.has(it) ? get(it.attempt) : null);
    const logged = onRow.size === 0 ? items : items.filter((it) => !onRow.has(it));
    const query = {
      ...SETTLE,
      values: [
        now,
        ...columns(moves, [(it) => it.id, (it) => it.owner, (it) => it.status, (it) => it.runAt, (it) => it.reason,
          (it) => it.errorClass, (it) => it.error, (it) => it.providerMessageId, (it) => (it.status === 'failed' ? null : now),
          (it) => (it.deliveryCount === 1 ? summarizeNotification({ [it.status]: 1 }) : null)]),
        ...columns(moves, [(it) => (onRow.has(it) ? newId('att') : null), row((a) => a.attempt), row((a) => a.started_at),
          row((a) => a.duration_ms), row((a) => a.http_status), row((a) => a.smtp_reply), row((a) => a.response), row((a) => a.workspace_id)]),
        ...columns(logged, [() => newId('att'), (it) => it.attempt.delivery_id, (it) => it.attempt.workspace_id,
          (it) => it.attempt.attempt, (it) => it.attempt.started_at, (it) => it.attempt.duration_ms, (it) => it.attempt.outcome,
          (it) => it.attempt.error_class, (it) => it.attempt.error, (it) => it.attempt.http_status, (it) => it.attempt.smtp_reply,
          (it) => it.attempt.response]),
      ],
    };
    type Moved = { notification_id: string; notification_status: NotificationStatus | null };
    if (moves.every((it) => it.deliveryCount === 1)) return (await this.#pool.query<Moved>(query)).rows.length;
    return this.#tx(async (c) => {
      const { rows } = await c.query<Moved>(query);
      await this.#refresh(c, [...new Set(rows.filter((r) => r.notification_status === null).map((r) => r.notification_id))]);
      return rows.length;
    });
  }

  /**
   * Recomputes notifications.status of `ids` from their deliveries' status counts
   * (summarizeNotification) inside the caller's transaction, writing only those that change.
   */
  async #refresh(c: pg.PoolClient, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const current = await c.query<{ id: string; status: NotificationStatus }>({ ...LOCK_NOTIFICATIONS, values: [ids] });
    const counts = new Map<string, Partial<Record<DeliveryStatus, number>>>();
    for (const r of (await c.query<{ notification_id: string; status: DeliveryStatus; n: number }>({ ...STATUS_COUNTS, values: [ids] })).rows) {
      const m = counts.get(r.notification_id) ?? {};
      m[r.status] = (m[r.status] ?? 0) + r.n;
      counts.set(r.notification_id, m);
    }
    const changed = current.rows
      .map((r) => ({ id: r.id, from: r.status, to: summarizeNotification(counts.get(r.id) ?? {}) }))
      .filter((r) => r.from !== r.to);
    if (changed.length === 0) return;
    await c.query({ ...SET_NOTIFICATION_STATUS, values: [changed.map((r) => r.id), changed.map((r) => r.to)] });
  }

  async refreshNotificationStatus(notificationIds: string[]): Promise<void> {
    if (notificationIds.length === 0) return;
    await this.#tx((c) => this.#refresh(c, [...new Set(notificationIds)]));
  }

  async releaseLeases(owners: string[], now: number): Promise<number> {
    if (owners.length === 0) return 0;
    const { rows } = await this.#pool.query<{ n: number }>({ ...RELEASE, values: [now, owners] });
    return rows[0]!.n;
  }

  async insertDeliveries(db: Kysely<Database>, rows: readonly DeliveriesTable[]): Promise<void> {
    if (rows.length === 0) return;
    await db.executeQuery(CompiledQuery.raw(INSERT_DELIVERIES.text, deliveryColumns(rows)));
  }

  async claimLeases(kind: string, owner: string, limit: number, now: number, leaseMs: number): Promise<ClaimedLease[]> {
    if (limit <= 0) return [];
    return (await this.#pool.query<ClaimedLease>({ ...CLAIM_LEASES, values: [kind, now, limit, owner, now + leaseMs] })).rows;
  }

  async leaseOwners(): Promise<string[]> {
    return (await this.#pool.query<{ lease_owner: string }>(LEASE_OWNERS)).rows.map((r) => r.lease_owner);
  }

  /**
   * Subscribes to delivery wake-ups (hints only; see the top of this file) on a dedicated
   * connection doing LISTEN herald_deliveries. Resolves once listening; rejects if that first
   * connection fails. If the connection drops later it reconnects with exponential backoff
   * (100ms doubling to 30s, reset by a successful LISTEN); notifications sent meanwhile are lost.
   * The returned function stops listening; close() stops every listener still running.
   */
  async listen(onWake: (channel: string) => void): Promise<() => Promise<void>> {
    let stopped = false;
    let client: pg.Client | undefined;
    let timer: NodeJS.Timeout | undefined;
    let delay = LISTEN_BACKOFF_MIN_MS;

    const open = async (): Promise<void> => {
      const c = new pg.Client({ ...this.#clientConfig, application_name: 'herald-listen', keepAlive: true });
      c.on('error', () => undefined); // a broken connection also ends, and 'end' reconnects
      try {
        await c.connect();
        await c.query(`LISTEN ${WAKE_CHANNEL}`);
      } catch (err) {
        await c.end().catch(() => undefined);
        throw err;
      }
      if (stopped) {
        await c.end().catch(() => undefined);
        return;
      }
      c.on('notification', (m) => {
        if (m.channel === WAKE_CHANNEL && m.payload) onWake(m.payload);
      });
      c.once('end', () => {
        if (client !== c) return;
        client = undefined;
        if (!stopped) reconnect();
      });
      client = c;
      delay = LISTEN_BACKOFF_MIN_MS;
    };
    const reconnect = (): void => {
      timer = setTimeout(() => {
        timer = undefined;
        if (stopped) return;
        open().catch(() => {
          delay = Math.min(delay * 2, LISTEN_BACKOFF_MAX_MS);
          if (!stopped) reconnect();
        });
      }, delay);
      timer.unref();
    };

    await open();
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      this.#listeners.delete(stop);
      clearTimeout(timer);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    };
    this.#listeners.add(stop);
    return stop;
  }

  /**
   * Runs `fn` in a transaction on one pooled connection. A connection left unusable is discarded;
   * so is one whose statement failed as unavailable (e.g. timed out while still running on the
   * server): the server rolls back when it goes.
   */
  async #tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await c.query(TX_BEGIN);
      const result = await fn(c);
      await c.query(TX_COMMIT);
      return result;
    } catch (err) {
      if (isPostgresUnavailable(err)) broken = err as Error;
      else await c.query(TX_ROLLBACK).catch((e: Error) => (broken = e));
      throw err;
    } finally {
      c.release(broken);
    }
  }
}

/**
 * `pool` as Kysely uses it, except that a connection on which a query failed as unavailable (timed
 * out while perhaps still running, or broken) is discarded when released, instead of going back
 * to the pool where the next query would queue behind the stuck one. Kysely releases without
 * saying whether anything failed.
 */
function discardingPool(pool: pg.Pool): PostgresPool {
  const wrapped = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  return {
    async connect() {
      const c = await pool.connect();
      let w = wrapped.get(c);
      if (!w) {
        let failed: Error | undefined;
        const query = (...args: unknown[]): unknown => {
          const r = (c.query as (...a: unknown[]) => unknown)(...args);
          if (!(r instanceof Promise)) return r; // a cursor
          return r.catch((err: unknown) => {
            if (isPostgresUnavailable(err)) failed = err as Error;
            throw err;
          });
        };
        const release = () => {
          const err = failed;
          failed = undefined;
          c.release(err);
        };
        w = { query: query as PostgresPoolClient['query'], release };
        wrapped.set(c, w);
      }
      return w;
    },
    end: () => pool.end(),
  };
}

/**
 * The column arrays of `rows` for unnest(), one per getter (undefined counts as NULL), each encoded
 * by pgArray.
 */
function columns<R>(rows: readonly R[], getters: ((row: R) => unknown)[]): (string | null)[] {
  return getters.map((get) => pgArray(rows, get));
}

const NEEDS_ESCAPE = /["\\]/;
const ESCAPED = /["\\]/g;

/**
 * `rows` (each read through `get`, if given) as the text of a one-dimensional PostgreSQL array
 * literal, for a `$n::text[]`, `::int4[]` or `::int8[]` parameter of unnest(): strings
 * double-quoted with `"` and `\` escaped, numbers as they are, null and undefined as NULL. An array
 * of nothing but NULLs is sent as a NULL parameter instead: a multi-argument unnest() pads a NULL
 * array with NULLs like any shorter one, so the column still reads NULL in every row, and the
 * mostly-empty columns (metadata, error…) cost nothing to encode or send. The same literal pg would
 * build, without its per-element type dispatch and two regex replaces per string, which were a
 * tenth of the queue's client CPU; reading through `get` spares an intermediate array per column.
 */
export function pgArray<T>(rows: readonly T[], get?: (row: T) => unknown): string | null {
  const n = rows.length;
  // Leading NULLs are counted before anything is built: most all-NULL columns end here.
  let i = 0;
  while (i < n && (get ? get(rows[i]!) : rows[i]) == null) i++;
  if (i === n) return null;
  let out = '{' + 'NULL,'.repeat(i);
  for (let j = i; j < n; j++) {
    if (j > i) out += ',';
    const v = get ? get(rows[j]!) : rows[j];
    if (v === null || v === undefined) out += 'NULL';
    else if (typeof v === 'string') out += NEEDS_ESCAPE.test(v) ? `"${v.replace(ESCAPED, '\\$&')}"` : `"${v}"`;
    else if (typeof v === 'number' || typeof v === 'bigint') out += String(v);
    else throw new TypeError(`pgArray: unsupported element type ${typeof v}`);
  }
  return out + '}';
}

/**
 * The pg connection settings for `connectionString`, with `search_path` set to `schema` if given.
 * Options in the URL (`?options=...`) would replace a separate `options` setting, so the URL's
 * options are moved into it and Herald's are appended to them.
 *
 * random_page_cost=1.1 (the usual value for SSDs, unless the URL sets its own): with the default
 * 4, batches of a few hundred claims or settles on tables of tens of thousands of rows make the
 * planner switch from the queue's indexes to whole-table scans (measured: 2.6x slower drains).
 */
function connectionConfig(connectionString: string, schema: string | undefined): pg.ClientConfig {
  const url = new URL(connectionString);
  const own = url.searchParams.get('options');
  url.searchParams.delete('options');
  const options = [
    own,
    own?.includes('random_page_cost') ? undefined : '-c random_page_cost=1.1',
    schema === undefined ? undefined : `-c search_path=${schema}`,
  ];
  return { connectionString: url.href, options: options.filter(Boolean).join(' ') };
}
