// The lease queue's writes other than claim (table lease_queue, migration 0015; the contract is in
// queue/lease-queue.ts). Claims are hand-written per dialect (StoreAdapter.claimLeases); everything
// here is the same SQL on both dialects and takes the executor to run on, so that a caller can
// make it part of its own transaction (`trx`), e.g. extending a lease in the transaction that
// writes the work it guards.
//
// Every write but enqueue is guarded by `owner = <this worker>`: a worker whose lease expired and
// was claimed by another writes nothing, and learns it from the result (false / 0).

import type { Kysely } from 'kysely';
import type { Database, LeaseQueueTable } from './schema.ts';

/** The kinds of work on the lease queue. */
export const LEASE_KINDS = {
  /** A topic send's member expansion; key: the notification id (table fanouts). */
  fanout: 'fanout',
  /** A vendor receipt to check; key: the delivery id (table receipts). */
  receipt: 'receipt',
  /** A DLQ bulk job; key: the job id (table dlq_jobs). */
  dlqJob: 'dlq_job',
  /** The audit log's retention purge; one row, key "all" (audit/jobs.ts). */
  auditPurge: 'audit_purge',
  /** The broker's retention purge (inbound/jobs.ts); one row, key "all". */
  inboundRetention: 'inbound_retention',
} as const;

/** The columns of a lease_queue row, in the order the adapters' accept writes list them. */
export const LEASE_COLUMNS = ['kind', 'key', 'due_at', 'owner', 'attempts', 'payload', 'created_at', 'updated_at'] as const satisfies readonly (keyof LeaseQueueTable)[];

/** A new row: free and due at dueAt, or with `owner` leased to it until dueAt (a claim already). */
export function leaseRow(kind: string, key: string, dueAt: number, now: number, o: { owner?: string; payload?: string | null } = {}): LeaseQueueTable {
  return { kind, key, due_at: dueAt, owner: o.owner ?? null, attempts: o.owner ? 1 : 0, payload: o.payload ?? null, created_at: now, updated_at: now };
}

/**
 * Adds `rows`. A (kind, key) already queued is left as it is when `ifAbsent`; otherwise a free one
 * takes the new due_at and payload, and one that is leased is left to its holder.
 */
export async function enqueueLeases(db: Kysely<Database>, rows: readonly LeaseQueueTable[], o: { ifAbsent?: boolean } = {}): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('lease_queue')
    .values([...rows])
    .onConflict((oc) =>
      o.ifAbsent
        ? oc.columns(['kind', 'key']).doNothing()
        : oc
            .columns(['kind', 'key'])
            .doUpdateSet((eb) => ({ due_at: eb.ref('excluded.due_at'), payload: eb.ref('excluded.payload'), updated_at: eb.ref('excluded.updated_at') }))
            .where('lease_queue.owner', 'is', null),
    )
    .execute();
}

/** Extends `owner`'s lease on (kind, key) to expire at `until`. False if `owner` does not hold it. */
export async function extendLease(db: Kysely<Database>, kind: string, key: string, owner: string, until: number, now: number): Promise<boolean> {
  const r = await db.updateTable('lease_queue').set({ due_at: until, updated_at: now }).where('kind', '=', kind).where('key', '=', key).where('owner', '=', owner).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Removes (kind, key), done, if `owner` holds it. False if it does not. */
export async function completeLease(db: Kysely<Database>, kind: string, key: string, owner: string): Promise<boolean> {
  const r = await db.deleteFrom('lease_queue').where('kind', '=', kind).where('key', '=', key).where('owner', '=', owner).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Frees (kind, key), due again at `nextDueAt`, if `owner` holds it. False if it does not. */
export async function failLease(db: Kysely<Database>, kind: string, key: string, owner: string, nextDueAt: number, now: number): Promise<boolean> {
  const r = await db
    .updateTable('lease_queue')
    .set({ owner: null, due_at: nextDueAt, updated_at: now })
    .where('kind', '=', kind)
    .where('key', '=', key)
    .where('owner', '=', owner)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/**
 * Frees `owner`'s leases of `kind` (those of `keys`, or all of them), due at once, the claim not
 * counted. Returns how many.
 */
export async function releaseLeases(db: Kysely<Database>, kind: string, owner: string, now: number, keys?: readonly string[]): Promise<number> {
  if (keys?.length === 0) return 0;
  let q = db
    .updateTable('lease_queue')
    .set((eb) => ({ owner: null, due_at: now, attempts: eb('attempts', '-', 1), updated_at: now }))
    .where('kind', '=', kind)
    .where('owner', '=', owner);
  if (keys) q = q.where('key', 'in', [...keys]);
  const r = await q.executeTakeFirst();
  return Number(r.numUpdatedRows);
}
