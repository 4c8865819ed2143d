// Queue alone, pg-boss, on the same PostgreSQL as Herald, in a schema of its own (created by
// pg-boss at start, dropped at the end). See bench/queue-lib.ts for the workload and the protocol.
//
// Version: pg-boss 12.35.0, pinned in package.json. The newest on the npm registry, 12.38.0, cannot
// be installed there: it depends on rrule-temporal ^2.2.8, which the registry does not have (its
// newest is 2.2.7). 12.35.0 is the version before it.
//
// Driven with its batch APIs: insert(name, jobs[]) per enqueue batch (one INSERT ... SELECT from a
// JSON array); work(name, { batchSize, localConcurrency, burstWhenBatchFull }) with a no-op batch
// handler, which fetches up to batchSize jobs per poll (SELECT ... FOR UPDATE SKIP LOCKED) and
// completes the whole batch in one statement when the handler resolves. burstWhenBatchFull makes a
// worker fetch again at once while its batches come back full, instead of waiting for the polling
// interval (that is pg-boss's recommended setting for draining a backlog). Everything else is
// pg-boss's default (standard queue policy, supervision and maintenance on, LISTEN/NOTIFY off).

import { createRequire } from 'node:module';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { analyzeSchema, drainStart, emit, enqueueAll, PAYLOAD, readParams, run, sleep, timing, walBytes, type QueueResult } from './queue-lib.ts';

const p = readParams();
const QUEUE = 'bench';
const version = (createRequire(import.meta.url)('pg-boss/package.json') as { version: string }).version;

let boss: PgBoss | undefined;

async function main(): Promise<QueueResult> {
  boss = new PgBoss({ connectionString: p.databaseUrl, schema: p.schema, max: p.poolSize, application_name: 'herald-bench-pgboss' });
  const errors: unknown[] = [];
  boss.on('error', (err) => errors.push(err));
  await boss.start();
  await boss.createQueue(QUEUE);
  const b = boss;
  emit('ready');

  const wal0 = await walBytes(p);
  const enqueueMs = await enqueueAll(p, async (from, to) => {
    const jobs = [];
    for (let i = from; i < to; i++) jobs.push({ data: PAYLOAD });
    await b.insert(QUEUE, jobs);
  });

  // The completion of a batch is written by pg-boss after the handler resolves; the drain ends when
  // the database counts n completed jobs (polled only once the handler has seen all n).
  const counter = new pg.Client({ connectionString: p.databaseUrl });
  await counter.connect();
  const completed = async () =>
    Number((await counter.query<{ n: string }>(`SELECT count(*) AS n FROM ${p.schema}.job WHERE name = $1 AND state = 'completed'`, [QUEUE])).rows[0]!.n);

  const wal1 = await walBytes(p);
  if (p.analyze) await analyzeSchema(p);
  const wal2 = await walBytes(p);
  const t0 = await drainStart();
  let handled = 0;
  let batches = 0;
  let allHandled!: () => void;
  const seen = new Promise<void>((r) => (allHandled = r));
  await b.work(
    QUEUE,
    { batchSize: p.drainBatch, localConcurrency: p.consumers, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
    async (jobs) => {
      // The no-op handler.
      batches++;
      handled += jobs.length;
      if (handled >= p.n) allHandled();
    },
  );
  await seen;
  let n = 0;
  while ((n = await completed()) < p.n) await sleep(2);
  const drainMs = performance.now() - t0;
  emit('drain-end');
  const wal3 = await walBytes(p);
  await b.offWork(QUEUE, { wait: true });
  await counter.end();

  const states = await b.getDb().executeSql(`SELECT state, count(*)::int AS n FROM ${p.schema}.job WHERE name = $1 GROUP BY state`, [QUEUE]);
  if (errors.length > 0) throw new Error(`pg-boss reported errors: ${String(errors[0])}`);
  return {
    library: 'pg-boss',
    version,
    enqueue: { ...timing(p.n, enqueueMs), walBytesPerJob: Math.round((wal1 - wal0) / p.n) },
    drain: { ...timing(n, drainMs), batches, meanBatch: Math.round((handled / batches) * 10) / 10, walBytesPerJob: Math.round((wal3 - wal2) / p.n) },
    settings: {
      enqueue: `insert('${QUEUE}', ${p.enqueueBatch} jobs), ${p.enqueueInFlight} in flight`,
      drain: `work('${QUEUE}', { batchSize: ${p.drainBatch}, localConcurrency: ${p.consumers}, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 }, no-op)`,
      poolSize: p.poolSize,
      analyzedBeforeDrain: p.analyze,
      handled,
    },
    checks: { jobs: Object.fromEntries((states.rows as { state: string; n: number }[]).map((r) => [r.state, r.n])) },
  };
}

run(main, async () => {
  await boss?.stop({ graceful: false, close: true, timeout: 2000 }).catch(() => undefined);
  boss = undefined;
  const c = new pg.Client({ connectionString: p.databaseUrl });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${p.schema} CASCADE`);
  } finally {
    await c.end();
  }
});
