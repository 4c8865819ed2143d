// The queries behind GET /v1/stats: counts read from the store, so every node of a cluster answers
// the same. Buckets are aligned to multiples of the bucket size since the epoch; the bucket size is
// inlined as an integer literal so the SELECT and GROUP BY expressions are textually identical
// (PostgreSQL requires it) and `/` is integer division on both dialects (the times are integers).

import { sql, type Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';

export interface AcceptedRow {
  start: number;
  count: number;
}
export interface FinishedRow {
  start: number;
  channel: string;
  status: string;
  count: number;
}
export interface QueueRow {
  channel: string;
  /** Deliveries waiting for an attempt (pending, failed between retries, scheduled, throttled). */
  waiting: number;
  /** Of those, the ones whose time has come. */
  due: number;
  /** run_at of the oldest due one; null when none is due. */
  oldest_due_at: number | null;
}

const bucketOf = (column: 'created_at' | 'completed_at', bucketMs: number) => {
  const b = sql.lit(bucketMs);
  return sql<number>`(${sql.ref(column)} / ${b}) * ${b}`;
};

/** Notifications accepted (created_at) in [from, to), per bucket; empty buckets omitted. */
export async function acceptedPerBucket(db: Kysely<Database>, workspaceId: string, q: { from: number; to: number; bucketMs: number }): Promise<AcceptedRow[]> {
  const start = bucketOf('created_at', q.bucketMs);
  const rows = await db
    .selectFrom('notifications')
    .select((eb) => [start.as('start'), eb.fn.countAll().as('count')])
    .where('workspace_id', '=', workspaceId)
    .where('created_at', '>=', q.from)
    .where('created_at', '<', q.to)
    .groupBy(start)
    .execute();
  return rows.map((r) => ({ start: Number(r.start), count: Number(r.count) })).sort((a, b) => a.start - b.start);
}

/** Deliveries that reached an end (completed_at) in [from, to), per bucket, channel and status. */
export async function finishedPerBucket(db: Kysely<Database>, workspaceId: string, q: { from: number; to: number; bucketMs: number }): Promise<FinishedRow[]> {
  const start = bucketOf('completed_at', q.bucketMs);
  const rows = await db
    .selectFrom('deliveries')
    .select((eb) => [start.as('start'), 'channel', 'status', eb.fn.countAll().as('count')])
    .where('workspace_id', '=', workspaceId)
    .where('completed_at', '>=', q.from)
    .where('completed_at', '<', q.to)
    .groupBy([start, 'channel', 'status'])
    .execute();
  return rows
    .map((r) => ({ start: Number(r.start), channel: r.channel, status: r.status, count: Number(r.count) }))
    .sort((a, b) => a.start - b.start || cmp(a.channel, b.channel) || cmp(a.status, b.status));
}

/** The waiting deliveries per channel now: how many, how many are due, the oldest due time. */
export async function queuePerChannel(db: Kysely<Database>, workspaceId: string, now: number): Promise<QueueRow[]> {
  const n = sql.lit(Math.floor(now));
  const rows = await db
    .selectFrom('deliveries')
    .select((eb) => [
      'channel',
      eb.fn.countAll().as('waiting'),
      sql<number>`sum(case when ${sql.ref('run_at')} <= ${n} then 1 else 0 end)`.as('due'),
      sql<number | null>`min(case when ${sql.ref('run_at')} <= ${n} then ${sql.ref('run_at')} end)`.as('oldest_due_at'),
    ])
    .where('workspace_id', '=', workspaceId)
    .where('status', 'in', ['pending', 'failed', 'scheduled', 'throttled'])
    .groupBy('channel')
    .execute();
  return rows
    .map((r) => ({ channel: r.channel, waiting: Number(r.waiting), due: Number(r.due ?? 0), oldest_due_at: r.oldest_due_at === null ? null : Number(r.oldest_due_at) }))
    .sort((a, b) => cmp(a.channel, b.channel));
}

/** Deliveries in the dead-letter queue (exhausted) now. */
export async function deadLetterCount(db: Kysely<Database>, workspaceId: string): Promise<number> {
  const row = await db
    .selectFrom('deliveries')
    .select((eb) => eb.fn.countAll().as('count'))
    .where('workspace_id', '=', workspaceId)
    .where('status', '=', 'exhausted')
    .executeTakeFirst();
  return Number(row?.count ?? 0);
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
