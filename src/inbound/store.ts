// The webhook broker's queries (tables of migration 0018). Kysely, valid on both dialects, except
// the consumer claim, which is one hand-written statement per dialect (see claimConsumerEvents).

import { sql, type Kysely } from 'kysely';
import type { Dialect, StoreAdapter } from '../store/adapter.ts';
import type { Database, InboundConsumerEventsTable, InboundConsumersTable, InboundEventsTable, InboundSourcesTable } from '../store/schema.ts';

export type SourceRow = InboundSourcesTable;
export type EventRow = InboundEventsTable;
export type ConsumerRow = InboundConsumersTable;

export function sourceByPath(db: Kysely<Database>, path: string): Promise<SourceRow | undefined> {
  return db.selectFrom('inbound_sources').selectAll().where('path', '=', path).executeTakeFirst();
}

export function sourceById(db: Kysely<Database>, ws: string, id: string): Promise<SourceRow | undefined> {
  return db.selectFrom('inbound_sources').selectAll().where('workspace_id', '=', ws).where('id', '=', id).executeTakeFirst();
}

export function listSources(db: Kysely<Database>, ws: string, after: string | undefined, limit: number): Promise<SourceRow[]> {
  let q = db.selectFrom('inbound_sources').selectAll().where('workspace_id', '=', ws);
  if (after !== undefined) q = q.where('id', '>', after);
  return q.orderBy('id').limit(limit).execute();
}

/** Inserts or replaces a source; false when its path is taken by another source (unique index). */
export async function upsertSource(db: Kysely<Database>, row: SourceRow): Promise<void> {
  await db
    .insertInto('inbound_sources')
    .values(row)
    .onConflict((oc) =>
      oc.columns(['workspace_id', 'id']).doUpdateSet({
        path: row.path,
        provider: row.provider,
        secrets: row.secrets,
        options: row.options,
        visibility: row.visibility,
        owner_id: row.owner_id,
        retention_ms: row.retention_ms,
        event_type_path: row.event_type_path,
        github_repo: row.github_repo,
        updated_at: row.updated_at,
      }),
    )
    .execute();
}

export async function deleteSource(db: Kysely<Database>, ws: string, id: string): Promise<boolean> {
  const r = await db.deleteFrom('inbound_sources').where('workspace_id', '=', ws).where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/**
 * Writes a batch of received events in one transaction (the ingest group commit): one multi-row
 * INSERT … ON CONFLICT (workspace, source, delivery id) DO NOTHING RETURNING id, then one SELECT
 * for the rows it did not insert (replays of stored deliveries, or of another row of this batch),
 * whose existing event's id and received_at are the answer. Returns, per row in order, the stored
 * id and whether it is new.
 */
export async function insertEvents(store: StoreAdapter, rows: readonly EventRow[]): Promise<{ id: string; received_at: number; created: boolean }[]> {
  if (rows.length === 0) return [];
  return store.transaction(async (trx) => {
    const inserted = new Set<string>();
    // At most 256 rows of 16 columns: within both dialects' parameter limits.
    const returned = await trx
      .insertInto('inbound_events')
      .values([...rows])
      .onConflict((oc) => oc.columns(['workspace_id', 'source_id', 'delivery_id']).doNothing())
      .returning('id')
      .execute();
    for (const r of returned) inserted.add(r.id);
    // A row without a delivery id always inserts (NULLs never conflict).
    const replays = rows.filter((r): r is EventRow & { delivery_id: string } => !inserted.has(r.id) && r.delivery_id !== null);
    const existing = new Map<string, { id: string; received_at: number }>();
    if (replays.length > 0) {
      const found = await trx
        .selectFrom('inbound_events')
        .select(['id', 'received_at', 'workspace_id', 'source_id', 'delivery_id'])
        .where((eb) => eb.or(replays.map((r) => eb.and([eb('workspace_id', '=', r.workspace_id), eb('source_id', '=', r.source_id), eb('delivery_id', '=', r.delivery_id)]))))
        .execute();
      for (const f of found) existing.set(`${f.workspace_id}\n${f.source_id}\n${f.delivery_id}`, { id: f.id, received_at: Number(f.received_at) });
    }
    return rows.map((row) => {
      if (inserted.has(row.id)) return { id: row.id, received_at: row.received_at, created: true };
      const e = existing.get(`${row.workspace_id}\n${row.source_id}\n${row.delivery_id}`);
      if (!e) throw new Error(`event ${row.id} was neither inserted nor found by its delivery id`);
      return { ...e, created: false };
    });
  });
}

export function eventById(db: Kysely<Database>, id: string): Promise<EventRow | undefined> {
  return db.selectFrom('inbound_events').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Who may read which events (inbound/service.ts readScope). */
export type ReadScope =
  /** Every event of one organization (an API key with read). */
  | { readonly kind: 'workspace'; readonly workspaceId: string }
  /**
   * A user: their organizations' non-private events, their own events, public events, and the
   * events of the sources whose GitHub repository grant admits them (`sources`).
   */
  | { readonly kind: 'user'; readonly userId: string; readonly workspaceIds: readonly string[]; readonly sources: readonly SourceKey[] };

export interface SourceKey {
  readonly workspaceId: string;
  readonly sourceId: string;
}

/** Sources with a GitHub repository read grant, on the whole server (at most 1000). */
export function githubGrantSources(db: Kysely<Database>): Promise<{ workspace_id: string; id: string; github_repo: string }[]> {
  return db
    .selectFrom('inbound_sources')
    .select(['workspace_id', 'id', 'github_repo'])
    .where('github_repo', 'is not', null)
    .orderBy('workspace_id')
    .orderBy('id')
    .limit(1000)
    .execute() as Promise<{ workspace_id: string; id: string; github_repo: string }[]>;
}

export interface EventFilter {
  source?: string | undefined;
  path?: string | undefined;
  type?: string | undefined;
  /** Exclusive: newer than this id (order asc) or older (order desc). */
  after?: string | undefined;
  order: 'asc' | 'desc';
  limit: number;
}

export function listEvents(db: Kysely<Database>, scope: ReadScope, f: EventFilter): Promise<EventRow[]> {
  let q = db.selectFrom('inbound_events').selectAll();
  if (scope.kind === 'workspace') q = q.where('workspace_id', '=', scope.workspaceId);
  else {
    q = q.where((eb) =>
      eb.or([
        eb('visibility', '=', 'public'),
        eb('owner_id', '=', scope.userId),
        ...(scope.workspaceIds.length > 0 ? [eb.and([eb('workspace_id', 'in', [...scope.workspaceIds]), eb('visibility', '<>', 'private')])] : []),
        ...scope.sources.map((g) => eb.and([eb('workspace_id', '=', g.workspaceId), eb('source_id', '=', g.sourceId)])),
      ]),
    );
  }
  if (f.source !== undefined) q = q.where('source_id', '=', f.source);
  if (f.path !== undefined) q = q.where('path', '=', f.path);
  if (f.type !== undefined) q = q.where('event_type', '=', f.type);
  if (f.after !== undefined) q = q.where('id', f.order === 'asc' ? '>' : '<', f.after);
  return q.orderBy('id', f.order).limit(f.limit).execute();
}

/** Deletes up to `limit` events older than their source's retention; returns how many, and their bytes. */
export async function purgeExpired(db: Kysely<Database>, now: number, defaultRetentionMs: number, limit: number): Promise<{ deleted: number; bytes: number }> {
  // Per source: its retention or the default. Events whose source is gone age by the default.
  const expired = await db
    .selectFrom('inbound_events as e')
    .leftJoin('inbound_sources as s', (j) => j.onRef('s.workspace_id', '=', 'e.workspace_id').onRef('s.id', '=', 'e.source_id'))
    .select(['e.id', 'e.size'])
    .where((eb) => eb('e.received_at', '<', sql<number>`${now} - coalesce(${eb.ref('s.retention_ms')}, ${defaultRetentionMs})`))
    .limit(limit)
    .execute();
  if (expired.length === 0) return { deleted: 0, bytes: 0 };
  const ids = expired.map((r) => r.id);
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('inbound_consumer_events').where('event_id', 'in', ids).execute();
    await trx.deleteFrom('inbound_events').where('id', 'in', ids).execute();
  });
  return { deleted: ids.length, bytes: expired.reduce((n, r) => n + Number(r.size), 0) };
}

/** Stored events and their bytes, per workspace (for the metrics scrape). */
export function storedTotals(db: Kysely<Database>): Promise<{ workspace_id: string; count: number | string | bigint; bytes: number | string | bigint | null }[]> {
  return db
    .selectFrom('inbound_events')
    .select((eb) => ['workspace_id', eb.fn.countAll().as('count'), eb.fn.sum<number>('size').as('bytes')])
    .groupBy('workspace_id')
    .execute();
}

// Consumers.

export function consumerByName(db: Kysely<Database>, ws: string, name: string): Promise<ConsumerRow | undefined> {
  return db.selectFrom('inbound_consumers').selectAll().where('workspace_id', '=', ws).where('name', '=', name).executeTakeFirst();
}

export function listConsumers(db: Kysely<Database>): Promise<ConsumerRow[]> {
  return db.selectFrom('inbound_consumers').selectAll().execute();
}

/** Creates or updates a consumer; an update keeps where it has got to (scanned_to) and its events' states. */
export async function upsertConsumer(db: Kysely<Database>, row: ConsumerRow): Promise<void> {
  await db
    .insertInto('inbound_consumers')
    .values(row)
    .onConflict((oc) =>
      oc.columns(['workspace_id', 'name']).doUpdateSet({ filter: row.filter, ack_timeout_ms: row.ack_timeout_ms, max_deliveries: row.max_deliveries, updated_at: row.updated_at }),
    )
    .execute();
}

export async function deleteConsumer(db: Kysely<Database>, ws: string, name: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await trx.deleteFrom('inbound_consumer_events').where('workspace_id', '=', ws).where('consumer', '=', name).execute();
    const r = await trx.deleteFrom('inbound_consumers').where('workspace_id', '=', ws).where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  });
}

/** A candidate event for a consumer, with what its filter needs. */
export type Candidate = Pick<EventRow, 'id' | 'path' | 'event_type' | 'payload' | 'headers' | 'source_id' | 'provider'>;

/**
 * Events after `scannedTo` that the consumer has no row for yet: the consumer's organization, the
 * path under `pathPrefix` (case-blind on SQLite; the caller matches exactly), of `types` when given,
 * and (when `ownerId` is set: a user's consumer) not another user's private event. Oldest first.
 */
export function unscannedEvents(
  db: Kysely<Database>,
  c: { workspaceId: string; name: string; scannedTo: string; pathPrefix: string; types: readonly string[] | undefined; ownerId: string | null },
  limit: number,
): Promise<Candidate[]> {
  let q = db
    .selectFrom('inbound_events as e')
    .select(['e.id', 'e.path', 'e.event_type', 'e.payload', 'e.headers', 'e.source_id', 'e.provider'])
    .where('e.workspace_id', '=', c.workspaceId)
    .where('e.id', '>', c.scannedTo)
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('inbound_consumer_events as ce')
            .select(sql`1`.as('one'))
            .where('ce.workspace_id', '=', c.workspaceId)
            .where('ce.consumer', '=', c.name)
            .whereRef('ce.event_id', '=', 'e.id'),
        ),
      ),
    );
  if (c.pathPrefix !== '') q = q.where(sql<boolean>`e.path LIKE ${likePrefix(c.pathPrefix)} ESCAPE '\\'`);
  if (c.types && c.types.length > 0) q = q.where('e.event_type', 'in', [...c.types]);
  if (c.ownerId !== null) {
    const owner = c.ownerId;
    q = q.where((eb) => eb.or([eb('e.visibility', '<>', 'private'), eb('e.owner_id', '=', owner)]));
  }
  return q.orderBy('e.id').limit(limit).execute();
}

function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (m) => `\\${m}`)}%`;
}

/** Adds the consumer's rows for events it has now considered: pending (due now) or skipped (its filter refused them; never handed out). */
export async function addConsumerEvents(db: Kysely<Database>, rows: readonly InboundConsumerEventsTable[]): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('inbound_consumer_events')
    .values([...rows])
    .onConflict((oc) => oc.columns(['workspace_id', 'consumer', 'event_id']).doNothing())
    .execute();
}

/** Moves the consumer's scan mark forward (never back). */
export async function advanceScan(db: Kysely<Database>, ws: string, name: string, to: string): Promise<void> {
  await db.updateTable('inbound_consumers').set({ scanned_to: to }).where('workspace_id', '=', ws).where('name', '=', name).where('scanned_to', '<', to).execute();
}

/**
 * Moves to `dead` the consumer's events that are due (free, or their lease expired) and have been
 * handed out max_deliveries times already. Returns their ids.
 */
export async function deadLetterExhausted(db: Kysely<Database>, ws: string, name: string, maxDeliveries: number, now: number): Promise<string[]> {
  const rows = await db
    .updateTable('inbound_consumer_events')
    .set({ state: 'dead', owner: null, updated_at: now })
    .where('workspace_id', '=', ws)
    .where('consumer', '=', name)
    .where('state', 'in', ['pending', 'leased'])
    .where('due_at', '<=', now)
    .where('deliveries', '>=', maxDeliveries)
    .returning('event_id')
    .execute();
  return rows.map((r) => r.event_id);
}

/**
 * Claims up to `limit` of a consumer's due events for `leaseMs`: one statement per dialect.
 *
 * Contract: returns rows that were pending or leased with an expired lease (due_at <= now), fewer
 * than maxDeliveries times handed out, oldest event first, each now `leased` to `owner` until
 * now + leaseMs with its delivery count incremented. Two concurrent claims never return the same
 * row: on PostgreSQL a MATERIALIZED CTE picks and locks the rows FOR UPDATE SKIP LOCKED (a row
 * another claimer holds is skipped, not waited for) and the UPDATE joins exactly those; an
 * `IN (subquery … LIMIT … FOR UPDATE)` form is not used because the planner may run such a
 * subquery more than once and lease more than `limit` rows;
 * on SQLite the statement runs alone under the database's single writer lock, so the subquery and
 * the update see the same state.
 */
export async function claimConsumerEvents(
  store: StoreAdapter,
  c: { workspaceId: string; name: string; maxDeliveries: number },
  owner: string,
  limit: number,
  now: number,
  leaseMs: number,
): Promise<{ event_id: string; deliveries: number }[]> {
  const dialect: Dialect = store.dialect;
  const until = now + leaseMs;
  const pick = sql`SELECT event_id FROM inbound_consumer_events
      WHERE workspace_id = ${c.workspaceId} AND consumer = ${c.name} AND state IN ('pending', 'leased') AND due_at <= ${now} AND deliveries < ${c.maxDeliveries}
      ORDER BY event_id LIMIT ${limit}`;
  const q =
    dialect === 'postgres'
      ? sql<{ event_id: string; deliveries: number }>`WITH picked AS MATERIALIZED (${pick} FOR UPDATE SKIP LOCKED)
          UPDATE inbound_consumer_events AS ce
          SET state = 'leased', due_at = ${until}, deliveries = ce.deliveries + 1, owner = ${owner}, updated_at = ${now}
          FROM picked
          WHERE ce.workspace_id = ${c.workspaceId} AND ce.consumer = ${c.name} AND ce.event_id = picked.event_id
          RETURNING ce.event_id, ce.deliveries`
      : sql<{ event_id: string; deliveries: number }>`UPDATE inbound_consumer_events
          SET state = 'leased', due_at = ${until}, deliveries = deliveries + 1, owner = ${owner}, updated_at = ${now}
          WHERE workspace_id = ${c.workspaceId} AND consumer = ${c.name} AND event_id IN (${pick})
          RETURNING event_id, deliveries`;
  const r = await q.execute(store.db);
  return r.rows.map((x) => ({ event_id: x.event_id, deliveries: Number(x.deliveries) })).sort((a, b) => (a.event_id < b.event_id ? -1 : 1));
}

/** Acknowledges the consumer's events among `ids` that are pending or leased; returns those acked. */
export async function ackConsumerEvents(db: Kysely<Database>, ws: string, name: string, ids: readonly string[], now: number): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .updateTable('inbound_consumer_events')
    .set({ state: 'acked', owner: null, updated_at: now })
    .where('workspace_id', '=', ws)
    .where('consumer', '=', name)
    .where('event_id', 'in', [...ids])
    .where('state', 'in', ['pending', 'leased'])
    .returning('event_id')
    .execute();
  return rows.map((r) => r.event_id);
}

/** Gives leased events among `ids` back, due at `dueAt`; returns those released. */
export async function nackConsumerEvents(db: Kysely<Database>, ws: string, name: string, ids: readonly string[], dueAt: number, now: number): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .updateTable('inbound_consumer_events')
    .set({ state: 'pending', owner: null, due_at: dueAt, updated_at: now })
    .where('workspace_id', '=', ws)
    .where('consumer', '=', name)
    .where('event_id', 'in', [...ids])
    .where('state', '=', 'leased')
    .returning('event_id')
    .execute();
  return rows.map((r) => r.event_id);
}

/** Unacked (pending or leased) and dead counts, and the oldest unacked event id. */
export async function consumerLag(db: Kysely<Database>, ws: string, name: string): Promise<{ unacked: number; dead: number; oldest: string | null }> {
  const rows = await db
    .selectFrom('inbound_consumer_events')
    .select((eb) => ['state', eb.fn.countAll().as('n'), eb.fn.min('event_id').as('oldest')])
    .where('workspace_id', '=', ws)
    .where('consumer', '=', name)
    .where('state', 'in', ['pending', 'leased', 'dead'])
    .groupBy('state')
    .execute();
  let unacked = 0;
  let dead = 0;
  let oldest: string | null = null;
  for (const r of rows) {
    const n = Number(r.n);
    if (r.state === 'dead') dead += n;
    else {
      unacked += n;
      const o = r.oldest as string | null;
      if (o !== null && (oldest === null || o < oldest)) oldest = o;
    }
  }
  return { unacked, dead, oldest };
}

/** The consumer's dead-lettered event ids, oldest first. */
export async function deadLetters(db: Kysely<Database>, ws: string, name: string, limit: number): Promise<{ event_id: string; deliveries: number; updated_at: number }[]> {
  const rows = await db
    .selectFrom('inbound_consumer_events')
    .select(['event_id', 'deliveries', 'updated_at'])
    .where('workspace_id', '=', ws)
    .where('consumer', '=', name)
    .where('state', '=', 'dead')
    .orderBy('event_id')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ event_id: r.event_id, deliveries: Number(r.deliveries), updated_at: Number(r.updated_at) }));
}
