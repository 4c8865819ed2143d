// Operational statistics of one organization for the dashboard's overview and for scripts: what
// was accepted and how deliveries ended per time bucket, and the queue and dead letters now. Read
// from the store, so the answer is the same on every node of a cluster.

import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import { acceptedPerBucket, deadLetterCount, finishedPerBucket, queuePerChannel, type AcceptedRow, type FinishedRow, type QueueRow } from './store.ts';

export interface Stats {
  accepted: AcceptedRow[];
  deliveries: FinishedRow[];
  queue: QueueRow[];
  deadLetters: number;
}

export class StatsService {
  readonly #db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Counts over [from, to) per bucket of `bucketMs`, and the queue and DLQ at `now`. */
  async read(workspaceId: string, q: { from: number; to: number; bucketMs: number; now: number }): Promise<Stats> {
    const [accepted, deliveries, queue, deadLetters] = await Promise.all([
      acceptedPerBucket(this.#db, workspaceId, q),
      finishedPerBucket(this.#db, workspaceId, q),
      queuePerChannel(this.#db, workspaceId, q.now),
      deadLetterCount(this.#db, workspaceId),
    ]);
    return { accepted, deliveries, queue, deadLetters };
  }
}
