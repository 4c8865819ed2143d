// The queue-alone benchmark's common part: one workload, run by each of bench/queue-herald.ts,
// bench/queue-pgboss.ts and bench/queue-bullmq.ts in a process of its own (started by
// bench/pg-phase.ts), so the three are driven the same way:
//
//   enqueue  `n` jobs in batches of `enqueueBatch`, `enqueueInFlight` batches in flight at once,
//            with each library's batch API; timed from the first batch sent to the last one
//            acknowledged (durably committed on PostgreSQL; Redis acknowledges from memory).
//   drain    `consumers` concurrent consumers in this process claim up to `drainBatch` jobs at a
//            time, run a no-op handler and mark them completed; timed from the start of the
//            consumers to the moment the n-th job's completion is acknowledged by the store.
//
// Every job carries the same payload: the benchmark's notification (the accept phase's request).
//
// Protocol with the orchestrator: the parameters come as JSON in BENCH_QUEUE; progress is one JSON
// line per event on stdout ({"event": "ready" | "enqueue-start" | "enqueue-end" | "drain-start" |
// "drain-end"}), the orchestrator starting and stopping its CPU meters on them, then one line
// {"event": "result", ...}. The script cleans up what it created (schema, Redis keys) itself; the
// orchestrator checks again afterwards.

export interface QueueParams {
  /** Jobs enqueued, then drained. */
  n: number;
  enqueueBatch: number;
  enqueueInFlight: number;
  drainBatch: number;
  consumers: number;
  /** PostgreSQL connections of the library's pool (Herald and pg-boss). */
  poolSize: number;
  /** postgres:// URL of the database (no search_path), for Herald and pg-boss. */
  databaseUrl: string;
  /** The schema to create, use and drop (Herald and pg-boss). */
  schema: string;
  /** redis:// URL (BullMQ). */
  redisUrl: string;
  /** Key prefix (BullMQ); every key it creates starts with `${prefix}:`. */
  prefix: string;
  /**
   * ANALYZE the PostgreSQL queues' tables between enqueue and drain (untimed). Fresh tables filled
   * within a second have no planner statistics yet (autovacuum analyzes them within a minute or
   * so); a long-running deployment's tables have them.
   */
  analyze: boolean;
}

export interface PhaseTiming {
  jobs: number;
  seconds: number;
  jobsPerS: number;
}

export interface QueueResult {
  library: string;
  version: string;
  enqueue: PhaseTiming & { walBytesPerJob?: number };
  drain: PhaseTiming & { batches: number; meanBatch: number; walBytesPerJob?: number };
  /** Extra facts about how the library was driven. */
  settings: Record<string, unknown>;
  checks: Record<string, unknown>;
}

export function readParams(): QueueParams {
  const raw = process.env.BENCH_QUEUE;
  if (!raw) throw new Error('BENCH_QUEUE (JSON parameters) is not set; this script is started by bench/run.ts --only pg');
  return JSON.parse(raw) as QueueParams;
}

/** The payload of every job: the same notification the accept benchmark sends. */
export const PAYLOAD = {
  to: 'bench-1',
  title: 'Benchmark notification',
  body: 'Hello from the Herald benchmark. This body has the length of a typical short notification.',
  data: { order: 12345, amount: '19.99', currency: 'EUR' },
} as const;

export const emit = (event: string, extra: Record<string, unknown> = {}) => process.stdout.write(JSON.stringify({ event, ...extra }) + '\n');
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const round = (x: number, d = 0) => Math.round(x * 10 ** d) / 10 ** d;

export function timing(jobs: number, ms: number): PhaseTiming {
  return { jobs, seconds: round(ms / 1000, 3), jobsPerS: round(jobs / (ms / 1000), 0) };
}

/**
 * Runs `count` batches of `size` (the last one shorter) through `send`, at most `inFlight` at once.
 * `send` gets the batch's index range [from, to). Returns the elapsed milliseconds.
 */
export async function enqueueAll(p: QueueParams, send: (from: number, to: number) => Promise<void>): Promise<number> {
  emit('enqueue-start');
  await sleep(20); // lets the orchestrator start its CPU meter first
  const t0 = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < p.n) {
      const from = next;
      const to = Math.min(p.n, from + p.enqueueBatch);
      next = to;
      await send(from, to);
    }
  };
  await Promise.all(Array.from({ length: p.enqueueInFlight }, lane));
  const ms = performance.now() - t0;
  emit('enqueue-end');
  return ms;
}

/** ANALYZE every table of `schema` (see QueueParams.analyze). */
export async function analyzeSchema(p: QueueParams): Promise<void> {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: p.databaseUrl });
  await c.connect();
  try {
    const { rows } = await c.query<{ t: string }>(`SELECT c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`, [p.schema]);
    for (const { t } of rows) await c.query(`ANALYZE ${p.schema}."${t}"`);
  } finally {
    await c.end();
  }
}

/**
 * PostgreSQL's WAL position in bytes. The WAL written per job is a measure of write amplification
 * that does not depend on CPU noise; it is cluster-wide, so other clients' writes during the
 * phase add to it (a few percent on a busy shared server).
 */
export async function walBytes(p: QueueParams): Promise<number> {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: p.databaseUrl });
  await c.connect();
  try {
    return Number((await c.query<{ b: string }>(`SELECT pg_current_wal_lsn() - '0/0'::pg_lsn AS b`)).rows[0]!.b);
  } finally {
    await c.end();
  }
}

/** Announces the drain, waits for the orchestrator's meter, and returns the start time. */
export async function drainStart(): Promise<number> {
  await sleep(300); // a pause between the phases, so their CPU windows do not overlap
  emit('drain-start');
  await sleep(20);
  return performance.now();
}

/** Runs `main`, prints its result line, and exits non-zero on failure (after `cleanup`). */
export function run(main: () => Promise<QueueResult>, cleanup: () => Promise<void>): void {
  main()
    .then(async (r) => {
      await cleanup();
      emit('result', { result: r });
      process.exit(0);
    })
    .catch(async (err: unknown) => {
      process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
      await cleanup().catch((e: unknown) => process.stderr.write(`cleanup failed: ${String(e)}\n`));
      process.exit(1);
    });
}
