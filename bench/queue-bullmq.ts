// Queue alone, BullMQ, on the machine's Redis, under a key prefix of its own (every key is
// `${prefix}:bench:...`; the queue is obliterated and any key left under the prefix deleted at the
// end). See bench/queue-lib.ts for the workload and the protocol.
//
// Driven with its batch API for adding, Queue.addBulk(jobs[]) (one MULTI of addJob scripts per
// batch), and a Worker with a no-op processor and concurrency = consumers x drainBatch, the same
// number of jobs in flight as the PostgreSQL queues' consumers hold. Open-source BullMQ has no
// batch fetch (batches are a BullMQ Pro feature): the Worker fetches and completes jobs one by one,
// completing a job and fetching the next in one script call. Defaults otherwise (completed jobs are
// kept, as the PostgreSQL queues keep theirs). Redis acknowledges from memory: whether it is
// durable depends on its appendonly/appendfsync settings, reported in the result.

import { createRequire } from 'node:module';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { drainStart, emit, enqueueAll, PAYLOAD, readParams, run, timing, type QueueResult } from './queue-lib.ts';

const p = readParams();
const QUEUE = 'bench';
const version = (createRequire(import.meta.url)('bullmq/package.json') as { version: string }).version;
const url = new URL(p.redisUrl);
const connection = { host: url.hostname, port: Number(url.port || 6379), db: Number(url.pathname.slice(1) || 0) };

let queue: Queue | undefined;
let worker: Worker | undefined;

async function main(): Promise<QueueResult> {
  queue = new Queue(QUEUE, { connection, prefix: p.prefix });
  await queue.waitUntilReady();
  const q = queue;
  const admin = new Redis({ ...connection, lazyConnect: true });
  await admin.connect();
  const config = (await admin.config('GET', 'appendonly')) as string[];
  const fsync = (await admin.config('GET', 'appendfsync')) as string[];
  const save = (await admin.config('GET', 'save')) as string[];
  const redisVersion = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1] ?? 'unknown';
  await admin.quit();
  emit('ready');

  const enqueueMs = await enqueueAll(p, async (from, to) => {
    const jobs = [];
    for (let i = from; i < to; i++) jobs.push({ name: 'notify', data: PAYLOAD });
    await q.addBulk(jobs);
  });

  const t0 = await drainStart();
  let completed = 0;
  let allDone!: () => void;
  const done = new Promise<void>((r) => (allDone = r));
  worker = new Worker(
    QUEUE,
    async () => {
      // The no-op processor.
    },
    { connection: { ...connection, maxRetriesPerRequest: null }, prefix: p.prefix, concurrency: p.consumers * p.drainBatch },
  );
  const errors: unknown[] = [];
  worker.on('error', (err) => errors.push(err));
  worker.on('failed', (_job, err) => errors.push(err));
  // 'completed' is emitted once the job's completion (moveToFinished) has been acknowledged by Redis.
  worker.on('completed', () => {
    if (++completed === p.n) allDone();
  });
  await done;
  const drainMs = performance.now() - t0;
  emit('drain-end');
  await worker.close();
  worker = undefined;

  const counts = await q.getJobCounts('completed', 'waiting', 'active', 'failed', 'delayed');
  if (errors.length > 0) throw new Error(`BullMQ reported errors: ${String(errors[0])}`);
  if (counts.completed !== p.n) throw new Error(`after the drain: ${JSON.stringify(counts)}`);
  return {
    library: 'bullmq',
    version,
    enqueue: timing(p.n, enqueueMs),
    drain: { ...timing(completed, drainMs), batches: completed, meanBatch: 1 },
    settings: {
      enqueue: `addBulk(${p.enqueueBatch} jobs), ${p.enqueueInFlight} in flight`,
      drain: `Worker(no-op, { concurrency: ${p.consumers * p.drainBatch} }): fetches and completes one job per call`,
      redis: { version: redisVersion, appendonly: config[1], appendfsync: fsync[1], save: save[1] },
    },
    checks: { jobs: counts },
  };
}

run(main, async () => {
  await worker?.close(true).catch(() => undefined);
  worker = undefined;
  if (queue) {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close().catch(() => undefined);
    queue = undefined;
  }
  // Anything still under the prefix (obliterate leaves the meta and event keys of some versions).
  const admin = new Redis({ ...connection, lazyConnect: true });
  await admin.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${p.prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== '0');
  } finally {
    await admin.quit();
  }
});
