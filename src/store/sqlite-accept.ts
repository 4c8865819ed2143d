// The SQLite accept write, shared by the writer thread (sqlite-writer.ts) and the inline path.
//
// Contract (StoreAdapter.acceptBatch), for a list of batches written in one transaction, in order:
// per batch (whose items wanting a key an earlier item of the batch has are refused already:
// claimBatchKeys in adapter.ts),
//   1. the idempotency records, one statement: a key held by a live record (an earlier batch's or
//      transaction's) makes its item `idempotency_conflict`;
//   2. the dedupe keys of the items still in, one statement: an item that did not get every one of
//      its keys (another live notification holds one) is `dedupe_conflict`, and what it took (its
//      other keys, its idempotency record) is given back;
//   3. the notifications, fan-outs (with their lease-queue rows), deliveries and
//      notification_recipients rows of the items still in, one statement per table.
// Items that lose write nothing; the others are 'ok'. The transaction commits with
// synchronous=FULL, so when it returns every batch is on stable storage.
//
// A batch travels as JSON: per table, its rows as one array of arrays with the values in the
// INSERT's column order (packBatch). The statements read them with jsonb_each, so the rows are
// parsed by SQLite's JSON parser and bound column by column inside SQLite: no JavaScript object per
// row, no binding call per value. This is the SQLite counterpart of the PostgreSQL adapter's
// INSERT ... SELECT FROM unnest(arrays).

import type BetterSqlite3 from 'better-sqlite3';
import { claimBatchKeys, type AcceptItem, type AcceptOutcome } from './adapter.ts';
import { recipientsOf } from './delivery-keys.ts';
import { LEASE_COLUMNS, LEASE_KINDS, leaseRow } from './lease-queue.ts';
import { DELIVERY_COLUMNS, deliveryValues } from './delivery-write.ts';
import type { FanoutsTable, NotificationsTable } from './schema.ts';

/** Opens the pragmas every Herald SQLite connection uses. */
export function configureConnection(db: BetterSqlite3.Database): void {
  db.pragma('journal_mode = WAL');
  // FULL: a commit is on stable storage before it returns; Herald answers 202 only after that.
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.pragma('cache_size = -65536');
  db.pragma('temp_store = MEMORY');
}

// Column orders of the rows an accept writes: the INSERTs list these columns and packBatch() lays
// each row's values out in this order.
const NOTIFICATION_COLUMNS = [
  'id', 'workspace_id', 'kind', 'title', 'body', 'data', 'metadata', 'status', 'idempotency_key', 'delivery_count', 'created_at',
  'channel_options', 'fallback', 'routing', 'template', 'recipient_id',
] as const satisfies readonly (keyof NotificationsTable | 'recipient_id')[];
const FANOUT_COLUMNS = [
  'notification_id', 'workspace_id', 'topic', 'request', 'template_version', 'after', 'state', 'recipients', 'created_at', 'updated_at',
] as const satisfies readonly (keyof FanoutsTable)[];
const RECIPIENT_COLUMNS = ['workspace_id', 'recipient_id', 'notification_id'] as const;
const IDEMPOTENCY_COLUMNS = ['workspace_id', 'key', 'request_hash', 'notification_id', 'response', 'created_at', 'expires_at'] as const;
const DEDUPE_COLUMNS = ['workspace_id', 'recipient_id', 'key', 'notification_id', 'created_at', 'expires_at'] as const;

/**
 * A batch of AcceptItems laid out for the accept write. n, d, r, f, q, i, k: the rows of
 * notifications, deliveries, notification_recipients, fanouts, lease_queue (a fan-out's), idempotency_keys and dedupe_keys,
 * each table's as one JSON array of arrays in its *_COLUMNS order (null: no rows). `refused`: the
 * items already refused within the batch (a key an earlier item of the batch has), as [index in the
 * batch, outcome]; they have no rows. `keyed`: the other items the write may still refuse, as
 * [index, notification id, 1 if it has an idempotency key else 0, number of dedupe keys]. Every
 * other item is 'ok' once the batch commits.
 */
export interface PackedBatch {
  count: number;
  n: string;
  d: string;
  r: string | null;
  f: string | null;
  q: string | null;
  i: string | null;
  k: string | null;
  refused: [index: number, outcome: AcceptOutcome][];
  keyed: [index: number, notificationId: string, idempotency: 0 | 1, dedupeKeys: number][];
}

/**
 * JSON of `rows`. A lone surrogate, which JSON.stringify writes as a \udXXX escape, becomes U+FFFD
 * (as better-sqlite3 binds such a string): SQLite's JSON parser would otherwise store the escape's
 * code point as ill-formed UTF-8.
 */
export function rowsJson(rows: unknown[][]): string {
  const json = JSON.stringify(rows);
  return json.includes('\\ud') ? json.replace(LONE_SURROGATE_ESCAPE, '$1\\ufffd') : json;
}
/** A \udXXX escape (never a pair: JSON.stringify writes those as they are), not preceded by an escaped backslash. */
const LONE_SURROGATE_ESCAPE = /(?<!\\)((?:\\\\)*)\\ud[89a-f][0-9a-f]{2}/g;

/**
 * Lays `items` out for the write. Items refused within the batch (claimBatchKeys: a key an earlier
 * item of the batch has) get no rows.
 */
export function packBatch(items: AcceptItem[]): PackedBatch {
  const n: unknown[][] = [];
  const d: unknown[][] = [];
  const r: unknown[][] = [];
  const f: unknown[][] = [];
  const q: unknown[][] = [];
  const i: unknown[][] = [];
  const k: unknown[][] = [];
  const refused: PackedBatch['refused'] = [];
  const keyed: PackedBatch['keyed'] = [];
  const { outcomes } = claimBatchKeys(items);
  items.forEach((item, index) => {
    if (outcomes[index] !== 'ok') return void refused.push([index, outcomes[index]!]);
    const no = item.notification;
    const idem = item.idempotency;
    const dedupe = item.dedupe && item.dedupe.recipients.length > 0 ? item.dedupe : undefined;
    const recipients = recipientsOf(item.deliveries);
    n.push(NOTIFICATION_COLUMNS.map((c) => (c === 'recipient_id' ? recipients.recipientId : no[c])));
    for (const x of item.deliveries) d.push(deliveryValues(x));
    for (const x of recipients.rows) r.push(RECIPIENT_COLUMNS.map((c) => x[c]));
    if (item.fanout) {
      f.push(FANOUT_COLUMNS.map((c) => item.fanout![c]));
      const lease = leaseRow(LEASE_KINDS.fanout, no.id, no.created_at, no.created_at);
      q.push(LEASE_COLUMNS.map((c) => lease[c]));
    }
    if (idem) i.push([no.workspace_id, idem.key, idem.requestHash, no.id, idem.response, no.created_at, idem.expiresAt]);
    if (dedupe) for (const rc of dedupe.recipients) k.push([no.workspace_id, rc, dedupe.key, no.id, no.created_at, dedupe.expiresAt]);
    if (idem || dedupe) keyed.push([index, no.id, idem ? 1 : 0, dedupe?.recipients.length ?? 0]);
  });
  const some = (rows: unknown[][]) => (rows.length > 0 ? rowsJson(rows) : null);
  return { count: items.length, n: rowsJson(n), d: rowsJson(d), r: some(r), f: some(f), q: some(q), i: some(i), k: some(k), refused, keyed };
}

/** `SELECT value->>0, value->>1, … FROM jsonb_each(?)`: the rows of a PackedBatch table. */
const selectRows = (columns: readonly string[]) => `SELECT ${columns.map((_, j) => `value->>${j}`).join(', ')} FROM jsonb_each(?)`;

/**
 * SQLite's one delivery write (store/delivery-write.ts): the deliveries given as JSON (rowsJson of
 * deliveryValues rows), one parameter. The accept write's insertRows builds the same text.
 */
export const INSERT_DELIVERIES = `INSERT INTO deliveries (${DELIVERY_COLUMNS.join(', ')}) ${selectRows(DELIVERY_COLUMNS)}`;

/**
 * The INSERT of a PackedBatch table's rows (null: none), leaving out the rows of `lost`
 * notifications, whose id is in column `idColumn`: one prepared statement with that filter, one
 * without for the common batch where nothing was lost.
 */
function insertRows(db: BetterSqlite3.Database, table: string, columns: readonly string[], idColumn: string) {
  // For deliveries this is INSERT_DELIVERIES.
  const into = `INSERT INTO ${table} (${columns.join(', ')}) ${selectRows(columns)}`;
  const at = columns.indexOf(idColumn);
  const all = db.prepare(into);
  const some = db.prepare(`${into} WHERE value->>${at} NOT IN (SELECT value FROM json_each(?))`);
  return (rows: string | null, lost: Set<string>) => {
    if (rows === null) return;
    if (lost.size === 0) all.run(rows);
    else some.run(rows, JSON.stringify([...lost]));
  };
}

/** Prepares the accept statements on `db` and returns the write: one transaction for `batches`, their outcomes in order. */
export function prepareAcceptWrite(db: BetterSqlite3.Database): (batches: PackedBatch[]) => AcceptOutcome[][] {
  // `WHERE true`: SQLite's parser needs a WHERE before ON CONFLICT in an INSERT ... SELECT.
  // RETURNING lists the records this statement took: inserted, or replacing an expired one.
  const takeIdempotency = db
    .prepare(`
      INSERT INTO idempotency_keys (${IDEMPOTENCY_COLUMNS.join(', ')}) ${selectRows(IDEMPOTENCY_COLUMNS)} WHERE true
      ON CONFLICT (workspace_id, key) DO UPDATE SET
        request_hash = excluded.request_hash, notification_id = excluded.notification_id,
        response = excluded.response, created_at = excluded.created_at, expires_at = excluded.expires_at
      WHERE idempotency_keys.expires_at <= excluded.created_at
      RETURNING notification_id`)
    .pluck();
  const takeDedupe = db
    .prepare(`
      INSERT INTO dedupe_keys (${DEDUPE_COLUMNS.join(', ')}) ${selectRows(DEDUPE_COLUMNS)}
      WHERE value->>3 NOT IN (SELECT value FROM json_each(?))
      ON CONFLICT (workspace_id, recipient_id, key) DO UPDATE SET
        notification_id = excluded.notification_id, created_at = excluded.created_at, expires_at = excluded.expires_at
      WHERE dedupe_keys.expires_at <= excluded.created_at
      RETURNING notification_id`)
    .pluck();
  // Giving back what a dedupe loser took: only rows it holds, by primary key.
  const releaseIdempotency = db.prepare('DELETE FROM idempotency_keys WHERE workspace_id = ? AND key = ? AND notification_id = ?');
  const releaseDedupe = db.prepare('DELETE FROM dedupe_keys WHERE workspace_id = ? AND recipient_id = ? AND key = ? AND notification_id = ?');
  const insertNotifications = insertRows(db, 'notifications', NOTIFICATION_COLUMNS, 'id');
  const insertFanouts = insertRows(db, 'fanouts', FANOUT_COLUMNS, 'notification_id');
  const insertLeases = insertRows(db, 'lease_queue', LEASE_COLUMNS, 'key');
  const insertDeliveries = insertRows(db, 'deliveries', DELIVERY_COLUMNS, 'notification_id');
  const insertRecipients = insertRows(db, 'notification_recipients', RECIPIENT_COLUMNS, 'notification_id');

  const writeBatch = (b: PackedBatch): AcceptOutcome[] => {
    const outcomes: AcceptOutcome[] = new Array(b.count).fill('ok');
    for (const [index, outcome] of b.refused) outcomes[index] = outcome;
    const lost = new Set<string>();
    if (b.i !== null) {
      const took = new Set(takeIdempotency.all(b.i) as string[]);
      for (const [index, id, idem] of b.keyed) {
        if (idem === 1 && !took.has(id)) {
          outcomes[index] = 'idempotency_conflict';
          lost.add(id);
        }
      }
    }
    if (b.k !== null) {
      const held = new Map<string, number>();
      for (const id of takeDedupe.all(b.k, JSON.stringify([...lost])) as string[]) held.set(id, (held.get(id) ?? 0) + 1);
      const losers = new Set<string>();
      for (const [index, id, , keys] of b.keyed) {
        if (keys > 0 && !lost.has(id) && (held.get(id) ?? 0) < keys) {
          outcomes[index] = 'dedupe_conflict';
          losers.add(id);
        }
      }
      if (losers.size > 0) {
        for (const row of JSON.parse(b.k) as string[][]) if (losers.has(row[3]!)) releaseDedupe.run(row[0], row[1], row[2], row[3]);
        if (b.i !== null) for (const row of JSON.parse(b.i) as string[][]) if (losers.has(row[3]!)) releaseIdempotency.run(row[0], row[1], row[3]);
        for (const id of losers) lost.add(id);
      }
    }
    insertNotifications(b.n, lost);
    insertFanouts(b.f, lost);
    insertLeases(b.q, lost);
    insertDeliveries(b.d, lost);
    insertRecipients(b.r, lost);
    return outcomes;
  };
  const write = db.transaction((batches: PackedBatch[]) => batches.map(writeBatch));
  // IMMEDIATE: take the write lock at BEGIN, so the busy timeout applies instead of a lock-upgrade
  // failure when another connection wrote in between.
  return (batches) => write.immediate(batches);
}
