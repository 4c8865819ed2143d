// The dead-letter queue: operator actions on exhausted deliveries, one at a time or in bulk jobs.
//
// Single actions (replay, discard) move one delivery and append its audit entry in one
// transaction: 404 when the delivery is not in the workspace, 409 (conflict) when it is not
// exhausted. After the commit the notification's summarized status is recomputed and, for a
// replay, the workers of its channel are woken.
//
// Bulk jobs (see store/dlq.ts for the job's set and state machine) are leased on the lease queue
// (queue/lease-queue.ts; kind dlq_job, key the job id). The process that creates a job enqueues it
// leased to itself, in the transaction that creates it, and runs it at once in the background, one
// chunk per transaction; each chunk's transaction extends the lease first, so a process that lost
// it (stalled past the lease, and another took over) writes nothing and stops. The last chunk
// completes the lease. stop() lets the chunk in progress commit, leaves the job `running` and
// releases its lease (due at once); every process polls the lease queue (every POLL_MS, and at
// start()) and resumes the jobs it claims: released ones, and those of a process that died once
// their lease expires. start() also enqueues any `running` job that has no lease row. A chunk that
// keeps failing (MAX_FAILURES in a row) marks the job `failed`; failures of an unavailable store do
// not count: the job waits for the database (backing off up to UNAVAILABLE_BACKOFF_MAX_MS) and goes
// on when it returns.

import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { newId } from '../domain/ids.ts';
import { enqueueLeases, LEASE_KINDS, LeaseQueue, leaseRow, Poller } from '../queue/lease-queue.ts';
import { Problem } from '../errors.ts';
import type { StoreAdapter } from '../store/adapter.ts';
import { recordAudit } from '../audit/store.ts';
import {
  countDlq,
  discardDeliveries,
  dlqIds,
  dlqStats,
  failJob,
  findDelivery,
  getDlqEntry,
  getJob,
  insertJob,
  JobProgressConflict,
  listDlq,
  parseJobScope,
  replayDeliveries,
  runJobChunk,
  runningJobIds,
  scopeFilter,
  type DlqAction,
  type DlqEntry,
  type DlqFilter,
  type MovedDelivery,
  type StatsRow,
} from './store.ts';
import type { DeliveriesTable, DlqJobsTable } from '../store/schema.ts';
import type { Events } from '../events/events.ts';
import { movedEvents } from '../events/delivery-events.ts';

const DEFAULT_CHUNK = 500;
const MAX_FAILURES = 5;
const UNAVAILABLE_BACKOFF_MAX_MS = 10_000;
const SAMPLE = 20;
const KIND = LEASE_KINDS.dlqJob;
/**
 * How often a process looks for jobs to resume. Jobs start at once where they are created; this
 * only finds those whose process stopped or died, so it need not be fast.
 */
const POLL_MS = 5_000;
const DEFAULT_LEASE_MS = 60_000;

/** This process no longer holds the job's lease: another runs it. */
class LostLease extends Error {}

export type { DlqFilter } from './store.ts';

export interface DryRun {
  count: number;
  /** The newest matching delivery ids, at most 20. */
  sample: string[];
}

export class DlqService {
  readonly #store: StoreAdapter;
  readonly #log: Logger;
  readonly #onReplayed: (channels: Set<string>) => void;
  readonly #chunkSize: number;
  readonly #events: Events | undefined;
  readonly #leases: LeaseQueue;
  readonly #leaseMs: number;
  readonly #poller: Poller;
  /** Jobs this process is running, by id. */
  readonly #running = new Map<string, Promise<void>>();
  #stopping = false;
  readonly #wakeSleepers = new Set<() => void>();

  constructor(opts: {
    store: StoreAdapter;
    log: Logger;
    onReplayed: (channels: Set<string>) => void;
    chunkSize?: number;
    /** This process's lease owner id (default: one of its own). */
    owner?: string;
    /** How long a job's lease lasts without a chunk committing (default 1m). */
    leaseMs?: number;
    events?: Events | undefined;
  }) {
    this.#events = opts.events;
    this.#store = opts.store;
    this.#log = opts.log;
    this.#onReplayed = opts.onReplayed;
    this.#chunkSize = opts.chunkSize ?? DEFAULT_CHUNK;
    this.#leases = new LeaseQueue(opts.store, opts.owner ?? `dlq-${randomUUID()}`);
    this.#leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    this.#poller = new Poller({ tick: () => this.#claimJobs(), intervalMs: POLL_MS, onError: (err) => this.#log.warn({ err }, 'dlq: looking for jobs to resume failed') });
  }
  /** A page of the workspace's dead-lettered deliveries matching `f`, newest first (`limit` rows at most, before `before`). */
  list(workspaceId: string, f: DlqFilter, page: { before?: string | undefined; limit: number }): Promise<DeliveriesTable[]> {
    return listDlq(this.#store.db, workspaceId, f, page);
  }

  /** Dead-letter counts per time bucket, channel and error class in [from, to). */
  stats(workspaceId: string, q: { from: number; to: number; bucketMs: number }): Promise<StatsRow[]> {
    return dlqStats(this.#store.db, workspaceId, q);
  }

  /** A bulk job of the workspace, or undefined (another workspace's job included). */
  job(workspaceId: string, id: string): Promise<DlqJobsTable | undefined> {
    return getJob(this.#store.db, workspaceId, id);
  }

  /** A dead-lettered delivery of the workspace with its attempts and notification, or undefined. */
  entry(workspaceId: string, deliveryId: string): Promise<DlqEntry | undefined> {
    return getDlqEntry(this.#store.db, workspaceId, deliveryId);
  }


  /** Enqueues running jobs that have no lease row, then polls for jobs to resume (at once, then every POLL_MS). */
  async start(): Promise<void> {
    this.#stopping = false;
    const now = Date.now();
    const ids = await runningJobIds(this.#store.db);
    await enqueueLeases(this.#store.db, ids.map((id) => leaseRow(KIND, id, now, now)), { ifAbsent: true });
    this.#poller.start();
  }

  /**
   * Stops running bulk jobs at a chunk boundary; they stay `running`, and their leases are released
   * for whichever process polls next.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const wake of this.#wakeSleepers) wake();
    await this.#poller.stop();
    await Promise.allSettled([...this.#running.values()]);
    await this.#leases.release(KIND).catch((err: unknown) => this.#log.warn({ err }, 'dlq: could not release job leases'));
  }

  /** Claims due jobs and runs them; whether there were any. */
  async #claimJobs(): Promise<boolean> {
    const claimed = await this.#leases.claim(KIND, 10, this.#leaseMs);
    if (claimed.length > 0) this.#log.info({ jobs: claimed.map((l) => l.key) }, 'resuming dlq jobs');
    for (const l of claimed) this.#launch(l.key);
    return claimed.length > 0;
  }

  /** Puts an exhausted delivery back in the queue, due now, with a fresh retry budget. */
  async replay(workspaceId: string, deliveryId: string, actor: string, reason: string | null): Promise<DeliveriesTable> {
    const now = Date.now();
    const moved = await this.#store.transaction(async (trx) => {
      await this.#requireExhausted(trx, workspaceId, deliveryId, 'replayed');
      const [m] = await replayDeliveries(trx, workspaceId, [deliveryId], now);
      if (!m) throw notExhausted(deliveryId, 'replayed');
      await recordAudit(trx, { workspaceId, actor, action: 'dlq.replay', target: deliveryId, reason });
      return m;
    });
    await this.#afterMove([moved], 'replay');
    return this.#reload(workspaceId, deliveryId);
  }

  /** Discards an exhausted delivery for good, keeping `reason` on it. */
  async discard(workspaceId: string, deliveryId: string, actor: string, reason: string): Promise<DeliveriesTable> {
    const now = Date.now();
    const moved = await this.#store.transaction(async (trx) => {
      await this.#requireExhausted(trx, workspaceId, deliveryId, 'discarded');
      const [m] = await discardDeliveries(trx, workspaceId, [deliveryId], reason, now);
      if (!m) throw notExhausted(deliveryId, 'discarded');
      await recordAudit(trx, { workspaceId, actor, action: 'dlq.discard', target: deliveryId, reason });
      return m;
    });
    await this.#afterMove([moved], 'discard', reason);
    return this.#reload(workspaceId, deliveryId);
  }

  /** What a bulk action with `filter` would act on now; changes nothing. */
  async preview(workspaceId: string, filter: DlqFilter): Promise<DryRun> {
    const [count, sample] = await Promise.all([countDlq(this.#store.db, workspaceId, filter), dlqIds(this.#store.db, workspaceId, filter, SAMPLE)]);
    return { count, sample };
  }

  /**
   * Creates a bulk job over the entries matching `filter` now, records the audit entry (filter and
   * count) in the same transaction, and starts running it in the background.
   */
  async createJob(workspaceId: string, action: DlqAction, filter: DlqFilter, actor: string, reason: string | null): Promise<DlqJobsTable> {
    const now = Date.now();
    const stopping = this.#stopping;
    const job = await this.#store.transaction(async (trx) => {
      const row = await insertJob(trx, { id: newId('job'), workspaceId, action, filter, reason, actor, now });
      // Leased to this process, which runs it at once; free and due if it is stopping.
      await enqueueLeases(trx, [stopping ? leaseRow(KIND, row.id, now, now) : leaseRow(KIND, row.id, now + this.#leaseMs, now, { owner: this.#leases.owner })]);
      await recordAudit(trx, {
        workspaceId,
        actor,
        action: action === 'replay' ? 'dlq.bulk_replay' : 'dlq.bulk_discard',
        target: row.id,
        reason,
        details: { filters: filterDetails(filter), count: row.total },
      });
      return row;
    });
    if (!stopping) this.#launch(job.id);
    return job;
  }

  async #requireExhausted(trx: StoreAdapter['db'], workspaceId: string, deliveryId: string, verb: string): Promise<void> {
    const d = await findDelivery(trx, workspaceId, deliveryId);
    if (!d) throw new Problem('not_found', `No delivery "${deliveryId}"`);
    if (d.status !== 'exhausted') throw notExhausted(deliveryId, verb, d.status);
  }

  async #reload(workspaceId: string, deliveryId: string): Promise<DeliveriesTable> {
    const d = await findDelivery(this.#store.db, workspaceId, deliveryId);
    if (!d) throw new Error(`delivery ${deliveryId} vanished`);
    return d;
  }

  /**
   * After a committed move: announce it (delivery.status from exhausted), wake workers for replays,
   * recompute notification statuses. A failed
   * recomputation is logged, not thrown: the move stands, and a replayed delivery's next settle
   * recomputes its notification anyway (a discard does not change the summary: exhausted and
   * discarded count alike).
   */
  async #afterMove(moved: MovedDelivery[], action: DlqAction, reason: string | null = null): Promise<void> {
    if (moved.length === 0) return;
    this.#events?.emit(movedEvents(moved.map((m) => ({ ...m, from: 'exhausted' as const })), action === 'replay' ? 'pending' : 'discarded', action === 'replay' ? 'replayed' : reason));
    if (action === 'replay') this.#onReplayed(new Set(moved.map((m) => m.channel)));
    const notifications = [...new Set(moved.map((m) => m.notification_id))];
    try {
      await this.#store.refreshNotificationStatus(notifications);
    } catch (err) {
      this.#log.warn({ err, notifications: notifications.length }, 'could not refresh notification statuses after a dlq action');
    }
  }

  #launch(jobId: string): void {
    if (this.#running.has(jobId)) return;
    const run = this.#run(jobId)
      .catch((err: unknown) => this.#log.error({ err, job: jobId }, 'dlq job crashed'))
      .finally(() => this.#running.delete(jobId));
    this.#running.set(jobId, run);
  }

  async #run(jobId: string): Promise<void> {
    let failures = 0;
    let outages = 0;
    while (!this.#stopping) {
      let result;
      try {
        result = await this.#store.transaction(async (trx) => {
          const now = Date.now();
          if (!(await this.#leases.extend(KIND, jobId, this.#leaseMs, trx, now))) throw new LostLease();
          const r = await runJobChunk(trx, jobId, this.#chunkSize, now);
          if (r.state !== 'running') await this.#leases.complete(KIND, jobId, trx);
          return r;
        });
        failures = 0;
        outages = 0;
      } catch (err) {
        if (err instanceof LostLease) return;
        if (err instanceof JobProgressConflict) continue;
        if (this.#store.isUnavailable(err)) {
          outages++;
          if (outages === 1) this.#log.warn({ err, job: jobId }, 'dlq job paused: the database is unavailable');
          await this.#sleep(Math.min(100 * 2 ** outages, UNAVAILABLE_BACKOFF_MAX_MS));
          continue;
        }
        failures++;
        if (failures >= MAX_FAILURES) {
          this.#log.error({ err, job: jobId, failures }, 'dlq job failed');
          await failJob(this.#store.db, jobId, Date.now());
          await this.#leases.complete(KIND, jobId);
          return;
        }
        this.#log.warn({ err, job: jobId, failures }, 'dlq job chunk failed; retrying');
        await this.#sleep(100 * 2 ** failures);
        continue;
      }
      if (result.state === 'not_running') return;
      await this.#afterMove(result.moved, result.action);
      if (result.state === 'completed') {
        this.#log.info({ job: jobId }, 'dlq job completed');
        return;
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.#wakeSleepers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#wakeSleepers.add(done);
    });
  }
}

function notExhausted(deliveryId: string, verb: string, status?: string): Problem {
  return new Problem('conflict', `Delivery "${deliveryId}" is ${status ? `"${status}"` : 'no longer exhausted'}; only exhausted deliveries can be ${verb}`);
}

/** The filter as recorded in audit details and job views: ISO times, API field names. */
/** A job's scope as shown to people: its filters and the id it stops at. */
export function jobScope(j: DlqJobsTable): { filters: Record<string, string>; max_id: string | null } {
  const scope = parseJobScope(j.filters);
  return { filters: filterDetails(scopeFilter(scope)), max_id: scope.max_id };
}

export function filterDetails(f: DlqFilter): Record<string, string> {
  return {
    ...(f.channel !== undefined && { channel: f.channel }),
    ...(f.from !== undefined && { from: new Date(f.from).toISOString() }),
    ...(f.to !== undefined && { to: new Date(f.to).toISOString() }),
    ...(f.errorClass !== undefined && { error: f.errorClass }),
  };
}
