// Dead-letter queue queries: exhausted deliveries and the bulk jobs that act on them.
//
// The DLQ is the set of deliveries with status = 'exhausted'; every read goes through the partial
// index deliveries_dlq (workspace_id, id) WHERE status = 'exhausted'. The status test is written as
// a literal, not a bound parameter, so the planner can prove the index applies. Listings are newest
// first by delivery id (ids sort by creation time) with keyset paging, never OFFSET.
//
// Operator moves (see domain/delivery-status.ts), each guarded by status = 'exhausted' so a row
// that left the DLQ meanwhile is never touched:
//   exhausted --replay--> pending   due now, attempts 0 (a fresh retry budget), lease/error cleared
//   exhausted --discard-> discarded with the operator's reason
//
// Bulk job (dlq_jobs row), a state machine:
//   running --last chunk done--> completed        running --gave up on errors--> failed
// Its `filters` column holds the filter, `max_id` (the newest matching delivery id when the job was
// created: the job's set is the matching rows with id <= max_id) and `below` (progress: every
// matching row with id >= below has been handled). Chunks walk the set newest first; each chunk
// acts on its rows, advances `below` and adds to `processed` in one transaction, and the job row
// is updated only if its progress is still what the chunk read (compare-and-set), so two processes
// resuming the same job never act on a chunk twice. `processed` counts rows acted on; rows that
// left the DLQ before the job reached them are not counted, so a completed job may have
// processed < total.

import { sql, type Expression, type ExpressionBuilder, type Kysely, type SqlBool } from 'kysely';
import type { Database, DeliveriesTable, DeliveryAttemptsTable, DlqJobsTable, NotificationsTable } from '../store/schema.ts';

export interface DlqFilter {
  channel?: string | undefined;
  /** completed_at >= from (ms). */
  from?: number | undefined;
  /** completed_at < to (ms). */
  to?: number | undefined;
  errorClass?: string | undefined;
}

/** A delivery an operator action moved. */
export interface MovedDelivery {
  id: string;
  workspace_id: string;
  notification_id: string;
  recipient_id: string;
  channel: string;
}

export interface DlqEntry {
  delivery: DeliveriesTable;
  attempts: DeliveryAttemptsTable[];
  notification: Pick<NotificationsTable, 'id' | 'kind' | 'title' | 'body'>;
}

export type DlqAction = DlqJobsTable['action'];

/** The parsed `filters` column of a job. */
export interface JobScope {
  channel?: string;
  from?: number;
  to?: number;
  error?: string;
  /** Inclusive upper bound on delivery id; null when nothing matched at creation. */
  max_id: string | null;
  /** Exclusive upper bound reached so far; absent before the first chunk. */
  below?: string;
}

function dlqWhere(workspaceId: string, f: DlqFilter, bound: { before?: string | undefined; maxId?: string | undefined } = {}) {
  return (eb: ExpressionBuilder<Database, 'deliveries'>) => {
    const c: Expression<SqlBool>[] = [eb('workspace_id', '=', workspaceId), sql<SqlBool>`${sql.ref('status')} = 'exhausted'`];
    if (f.channel !== undefined) c.push(eb('channel', '=', f.channel));
    if (f.errorClass !== undefined) c.push(eb('error_class', '=', f.errorClass));
    if (f.from !== undefined) c.push(eb('completed_at', '>=', f.from));
    if (f.to !== undefined) c.push(eb('completed_at', '<', f.to));
    if (bound.before !== undefined) c.push(eb('id', '<', bound.before));
    if (bound.maxId !== undefined) c.push(eb('id', '<=', bound.maxId));
    return eb.and(c);
  };
}

/** One page of the DLQ, newest first, strictly older than `before`. */
export async function listDlq(db: Kysely<Database>, workspaceId: string, f: DlqFilter, page: { before?: string | undefined; limit: number }): Promise<DeliveriesTable[]> {
  return db.selectFrom('deliveries').selectAll().where(dlqWhere(workspaceId, f, { before: page.before })).orderBy('id', 'desc').limit(page.limit).execute();
}

/** The ids of the newest `limit` matching entries. */
export async function dlqIds(db: Kysely<Database>, workspaceId: string, f: DlqFilter, limit: number): Promise<string[]> {
  const rows = await db.selectFrom('deliveries').select('id').where(dlqWhere(workspaceId, f)).orderBy('id', 'desc').limit(limit).execute();
  return rows.map((r) => r.id);
}

/** How many entries match, optionally only those with id <= maxId. */
export async function countDlq(db: Kysely<Database>, workspaceId: string, f: DlqFilter, maxId?: string): Promise<number> {
  const row = await db
    .selectFrom('deliveries')
    .select((eb) => eb.fn.countAll().as('n'))
    .where(dlqWhere(workspaceId, f, { maxId }))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** An exhausted delivery of the workspace with its attempt log and notification content. */
export async function getDlqEntry(db: Kysely<Database>, workspaceId: string, id: string): Promise<DlqEntry | undefined> {
  const delivery = await db.selectFrom('deliveries').selectAll().where(dlqWhere(workspaceId, {})).where('id', '=', id).executeTakeFirst();
  if (!delivery) return undefined;
  const notification = await db.selectFrom('notifications').select(['id', 'kind', 'title', 'body']).where('id', '=', delivery.notification_id).executeTakeFirstOrThrow();
  const attempts = await db.selectFrom('attempt_log').selectAll().where('delivery_id', '=', id).orderBy('id').execute();
  return { delivery, attempts, notification };
}

/** A delivery of the workspace in any status. */
export async function findDelivery(db: Kysely<Database>, workspaceId: string, id: string): Promise<DeliveriesTable | undefined> {
  return db.selectFrom('deliveries').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
}

/** Moves those of `ids` still exhausted back to pending, due at `now`, with a fresh retry budget. */
export async function replayDeliveries(db: Kysely<Database>, workspaceId: string, ids: string[], now: number): Promise<MovedDelivery[]> {
  if (ids.length === 0) return [];
  return db
    .updateTable('deliveries')
    .set({ status: 'pending', attempts: 0, run_at: now, lease_owner: null, reason: null, error_class: null, last_error: null, completed_at: null, updated_at: now })
    .where(dlqWhere(workspaceId, {}))
    .where('id', 'in', ids)
    .returning(['id', 'workspace_id', 'notification_id', 'recipient_id', 'channel'])
    .execute();
}

/** Moves those of `ids` still exhausted to discarded with `reason`. completed_at becomes the discard time. */
export async function discardDeliveries(db: Kysely<Database>, workspaceId: string, ids: string[], reason: string, now: number): Promise<MovedDelivery[]> {
  if (ids.length === 0) return [];
  return db
    .updateTable('deliveries')
    .set({ status: 'discarded', reason, lease_owner: null, updated_at: now, completed_at: now })
    .where(dlqWhere(workspaceId, {}))
    .where('id', 'in', ids)
    .returning(['id', 'workspace_id', 'notification_id', 'recipient_id', 'channel'])
    .execute();
}

export interface StatsRow {
  start: number;
  channel: string;
  error_class: string | null;
  count: number;
}

/**
 * DLQ entries with completed_at in [from, to), counted per bucket of `bucketMs` (aligned to
 * multiples of bucketMs since the epoch), channel and error class. Empty groups are not returned.
 */
export async function dlqStats(db: Kysely<Database>, workspaceId: string, q: { from: number; to: number; bucketMs: number }): Promise<StatsRow[]> {
  if (!Number.isSafeInteger(q.bucketMs) || q.bucketMs <= 0) throw new RangeError('bucketMs must be a positive integer');
  // Both operands are integers (completed_at is BIGINT/INTEGER, the bucket an inlined integer
  // literal), so `/` is integer division on both dialects. The literal is inlined rather than bound
  // so the SELECT and GROUP BY expressions are textually identical (PostgreSQL requires it).
  const bucket = sql.lit(q.bucketMs);
  const start = sql<number>`(${sql.ref('completed_at')} / ${bucket}) * ${bucket}`;
  const rows = await db
    .selectFrom('deliveries')
    .select((eb) => [start.as('start'), 'channel', 'error_class', eb.fn.countAll().as('count')])
    .where(dlqWhere(workspaceId, { from: q.from, to: q.to }))
    .groupBy([start, 'channel', 'error_class'])
    .execute();
  return rows
    .map((r) => ({ start: Number(r.start), channel: r.channel, error_class: r.error_class, count: Number(r.count) }))
    .sort((a, b) => a.start - b.start || cmp(a.channel, b.channel) || cmp(a.error_class ?? '', b.error_class ?? ''));
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function parseJobScope(filters: string): JobScope {
  return JSON.parse(filters) as JobScope;
}

export function scopeFilter(s: JobScope): DlqFilter {
  return { channel: s.channel, from: s.from, to: s.to, errorClass: s.error };
}

/**
 * Inserts a running job whose set is the entries matching `f` now: max_id is the newest of them,
 * total their count. Run inside the transaction that also records the audit entry.
 */
export async function insertJob(
  db: Kysely<Database>,
  job: { id: string; workspaceId: string; action: DlqAction; filter: DlqFilter; reason: string | null; actor: string; now: number },
): Promise<DlqJobsTable> {
  const [maxId] = await dlqIds(db, job.workspaceId, job.filter, 1);
  const total = maxId === undefined ? 0 : await countDlq(db, job.workspaceId, job.filter, maxId);
  const { channel, from, to, errorClass } = job.filter;
  const scope: JobScope = {
    ...(channel !== undefined && { channel }),
    ...(from !== undefined && { from }),
    ...(to !== undefined && { to }),
    ...(errorClass !== undefined && { error: errorClass }),
    max_id: maxId ?? null,
  };
  const row: DlqJobsTable = {
    id: job.id,
    workspace_id: job.workspaceId,
    action: job.action,
    filters: JSON.stringify(scope),
    reason: job.reason,
    status: 'running',
    total,
    processed: 0,
    actor: job.actor,
    created_at: job.now,
    updated_at: job.now,
    finished_at: null,
  };
  await db.insertInto('dlq_jobs').values(row).execute();
  return row;
}

export async function getJob(db: Kysely<Database>, workspaceId: string, id: string): Promise<DlqJobsTable | undefined> {
  return db.selectFrom('dlq_jobs').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
}

/** Ids of jobs in status running, of every workspace, oldest first. */
export async function runningJobIds(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('dlq_jobs').select('id').where('status', '=', 'running').orderBy('id').execute();
  return rows.map((r) => r.id);
}

/** The job row moved on (another process advanced or finished it) after this chunk read it. */
export class JobProgressConflict extends Error {
  constructor(jobId: string) {
    super(`dlq job ${jobId} progressed concurrently`);
  }
}

export type ChunkResult = { state: 'not_running' } | { state: 'running' | 'completed'; action: DlqAction; moved: MovedDelivery[] };

/**
 * Runs the next chunk of a running job; call inside one transaction. Acts on up to `size` rows of
 * the job's set still in the DLQ below its progress mark, newest first, then records the progress.
 * Throws JobProgressConflict (roll back) if the job row changed since it was read.
 */
export async function runJobChunk(db: Kysely<Database>, jobId: string, size: number, now: number): Promise<ChunkResult> {
  const job = await db.selectFrom('dlq_jobs').selectAll().where('id', '=', jobId).executeTakeFirst();
  if (!job || job.status !== 'running') return { state: 'not_running' };
  const scope = parseJobScope(job.filters);
  let ids: string[] = [];
  if (scope.max_id !== null) {
    const rows = await db
      .selectFrom('deliveries')
      .select('id')
      .where(dlqWhere(job.workspace_id, scopeFilter(scope), { maxId: scope.max_id, before: scope.below }))
      .orderBy('id', 'desc')
      .limit(size)
      .execute();
    ids = rows.map((r) => r.id);
  }
  const moved =
    job.action === 'replay'
      ? await replayDeliveries(db, job.workspace_id, ids, now)
      : await discardDeliveries(db, job.workspace_id, ids, job.reason ?? '', now);
  const done = ids.length < size;
  const next: JobScope = ids.length > 0 ? { ...scope, below: ids.at(-1)! } : scope;
  const r = await db
    .updateTable('dlq_jobs')
    .set({
      processed: job.processed + moved.length,
      filters: JSON.stringify(next),
      updated_at: now,
      ...(done && { status: 'completed' as const, finished_at: now }),
    })
    .where('id', '=', jobId)
    .where('status', '=', 'running')
    .where('processed', '=', job.processed)
    .where('filters', '=', job.filters)
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) throw new JobProgressConflict(jobId);
  return { state: done ? 'completed' : 'running', action: job.action, moved };
}

/** Marks a running job failed. */
export async function failJob(db: Kysely<Database>, jobId: string, now: number): Promise<void> {
  await db.updateTable('dlq_jobs').set({ status: 'failed', updated_at: now, finished_at: now }).where('id', '=', jobId).where('status', '=', 'running').execute();
}
