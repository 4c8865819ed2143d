// The `pg` phase of `npm run bench` (bench/run.ts): Herald on PostgreSQL, and its queue against
// pg-boss and BullMQ. Every PostgreSQL object lives in a schema of its own in the test database
// (herald_bench_<random>_<what>), dropped at the end; BullMQ's keys live under a prefix of their
// own, deleted at the end. See docs/benchmarks.md for how to read the figures.
//
//   accept   Herald --role api with DATABASE_URL on a fresh schema: the same autocannon load as the
//            SQLite accept phase; rows read back afterwards.
//   e2e      Herald --role api pre-loads N notifications into a seed schema; then, per worker
//            count W (1, 2, 4): a fresh schema migrated and filled with a copy of the seed, W
//            `herald serve --role worker` processes on it (HERALD_CONCURRENCY webhook:C each),
//            timed until the receiver has counted N.
//   queue    the queue alone, no HTTP: bench/queue-herald.ts (PostgresAdapter's acceptBatch, then
//            claim + settle), bench/queue-pgboss.ts and bench/queue-bullmq.ts, each its own process,
//            the same workload (bench/queue-lib.ts), one after the other, a CHECKPOINT before each.

import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { PostgresAdapter } from '../src/store/postgres.ts';
import { jsonLine, load, round, sleep, spawnNode, wallMs, type Child, type CpuReport, type LoadOptions, type LoadResult } from './lib.ts';
import {
  BENCH_DATABASE_URL,
  BENCH_REDIS_URL,
  benchName,
  checkpoint,
  copySchemaData,
  dropSchemas,
  fullCpuMeter,
  heraldCounts,
  pgVersion,
  schemaUrl,
  withDb,
  type ServerCpu,
} from './pg-lib.ts';
import type { QueueParams, QueueResult } from './queue-lib.ts';

type Cpu = CpuReport & { servers: ServerCpu };

/** What bench/run.ts lends this phase: its settings and its Herald process helpers. */
export interface PgContext {
  log(msg: string): void;
  tmpRoot: string;
  receiverUrl: string;
  receiver: Child;
  connections: number;
  warmupS: number;
  durationS: number;
  loadOpts(url: string): Omit<LoadOptions, 'duration' | 'amount'>;
  checkLoad(label: string, r: LoadResult): void;
  startHerald(name: string, o: { dataDir: string; role: 'api' | 'worker'; concurrency?: number; env?: Record<string, string> }): Promise<HeraldProc>;
  stopHerald(h: HeraldProc): Promise<void>;
  putRecipient(h: HeraldProc, receiverUrl: string): Promise<void>;
  receiverReset(url: string): Promise<void>;
  waitForCount(url: string, n: number, timeoutS: number): Promise<{ reached: boolean; at: number; last: { count: number; firstAt: number; lastAt: number } }>;
}

interface HeraldProc {
  child: Child;
  url: string;
  spawnedAt: number;
  readyAt: number;
}

export interface PgParams {
  /** Which of accept, e2e, queue to run. */
  parts: string[];
  /** Notifications pre-loaded for the e2e runs. */
  e2eN: number;
  /** Worker process counts of the e2e runs. */
  workers: number[];
  /** HERALD_CONCURRENCY webhook:<this> of each worker process. */
  webhookConcurrency: number;
  preloadCapS: number;
  e2eCapS: number;
  queue: Omit<QueueParams, 'databaseUrl' | 'schema' | 'redisUrl' | 'prefix'> & { libraries: string[]; capS: number; rounds: number };
}

const QUEUE_SCRIPTS: Record<string, string> = {
  herald: 'bench/queue-herald.ts',
  pgboss: 'bench/queue-pgboss.ts',
  bullmq: 'bench/queue-bullmq.ts',
};
export const QUEUE_LIBRARIES = Object.keys(QUEUE_SCRIPTS);

export async function pgPhase(ctx: PgContext, p: PgParams) {
  const schemas = new Set<string>();
  const prefixes = new Set<string>();
  const newSchema = async (what: string) => {
    const s = benchName(what);
    schemas.add(s);
    await withDb((c) => c.query(`CREATE SCHEMA ${s}`));
    return s;
  };
  const server = await pgVersion();
  ctx.log(`PostgreSQL ${server.version} at ${redact(BENCH_DATABASE_URL)}; Redis at ${BENCH_REDIS_URL}`);
  try {
    const accept = p.parts.includes('accept') ? await acceptRun(ctx, await newSchema('accept')) : undefined;
    const e2e = p.parts.includes('e2e') ? await e2eRuns(ctx, p, newSchema) : undefined;
    const queue = p.parts.includes('queue') ? await queueRuns(ctx, p, schemas, prefixes) : undefined;
    return { postgres: server, databaseUrl: redact(BENCH_DATABASE_URL), accept, e2e, queue };
  } finally {
    await dropSchemas(schemas).catch((err: unknown) => ctx.log(`warning: could not drop the benchmark schemas ${[...schemas].join(', ')}: ${String(err)}`));
    for (const prefix of prefixes) {
      const left = await deleteRedisKeys(prefix).catch(() => -1);
      if (left !== 0) ctx.log(`warning: ${left < 0 ? 'could not check' : `deleted ${left}`} Redis keys left under ${prefix}:`);
    }
  }
}

function pgEnv(schema: string): Record<string, string> {
  return { DATABASE_URL: schemaUrl(schema) };
}

// ---------------------------------------------------------------------------------------------
// Accept

async function acceptRun(ctx: PgContext, schema: string) {
  const dataDir = mkdtempSync(join(ctx.tmpRoot, 'pg-accept-'));
  const h = await ctx.startHerald('herald-pg-accept-api', { dataDir, role: 'api', env: pgEnv(schema) });
  try {
    await ctx.putRecipient(h, ctx.receiverUrl);
    const opts = ctx.loadOpts(h.url);
    const warmup = await load({ ...opts, duration: ctx.warmupS });
    const meter = fullCpuMeter([h.child]);
    const measured = await load({ ...opts, duration: ctx.durationS });
    const cpu = meter.stop();
    ctx.checkLoad('herald --role api (PostgreSQL)', measured);
    await ctx.stopHerald(h);
    const db = await heraldCounts(schema);
    const stored = { notifications: db.notifications, deliveries: db.deliveries, answered202: warmup.ok + measured.ok };
    const serverCores = cpu.processes['herald-pg-accept-api'] ?? NaN;
    ctx.log(
      `herald --role api on PostgreSQL: ${measured.rps} req/s, p50 ${measured.latencyMs.p50} ms, p99 ${measured.latencyMs.p99} ms ` +
        `(herald ${serverCores} cores, postgres ${cpu.processes.postgres} cores, other load ${cpu.otherBusyCores} cores)`,
    );
    if (stored.notifications < stored.answered202) ctx.log(`warning: PostgreSQL accept stored ${stored.notifications} notifications for ${stored.answered202} answers 202`);
    return {
      label: 'herald --role api (PostgreSQL)',
      warmup,
      measured,
      cpu,
      stored,
      requestsPerHeraldCoreS: round(measured.rps / serverCores, 0),
      requestsPerCoreSInclPostgres: round(measured.rps / (serverCores + (cpu.processes.postgres ?? 0)), 0),
    };
  } finally {
    await ctx.stopHerald(h);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// End to end with 1, 2, 4 worker processes

async function e2eRuns(ctx: PgContext, p: PgParams, newSchema: (what: string) => Promise<string>) {
  // Pre-load: Herald --role api accepts N notifications into the seed schema, then stops.
  const seed = await newSchema('seed');
  const seedDir = mkdtempSync(join(ctx.tmpRoot, 'pg-seed-'));
  const api = await ctx.startHerald('herald-pg-preload', { dataDir: seedDir, role: 'api', env: pgEnv(seed) });
  let preload: LoadResult;
  try {
    await ctx.putRecipient(api, ctx.receiverUrl);
    preload = await load({ ...ctx.loadOpts(api.url), amount: p.e2eN, maxDurationS: p.preloadCapS });
    ctx.checkLoad('pg preload', preload);
  } finally {
    await ctx.stopHerald(api);
    rmSync(seedDir, { recursive: true, force: true });
  }
  const seeded = await heraldCounts(seed);
  const N = seeded.notifications;
  if (seeded.deliveries.pending !== N || N < preload.ok) {
    throw new Error(`PostgreSQL pre-load stored ${N} notifications / ${JSON.stringify(seeded.deliveries)} for ${preload.ok} answers 202`);
  }
  if (N < p.e2eN) ctx.log(`warning: PostgreSQL pre-load capped at ${p.preloadCapS} s: ${N} of ${p.e2eN} notifications`);
  ctx.log(`pre-loaded ${N} notifications into PostgreSQL at ${preload.rps} req/s`);

  const runs = [];
  for (const w of p.workers) {
    const schema = await newSchema(`w${w}`);
    const migrator = new PostgresAdapter(BENCH_DATABASE_URL, { schema, poolSize: 1 });
    try {
      await migrator.migrate();
    } finally {
      await migrator.close();
    }
    await copySchemaData(seed, schema);
    await ctx.receiverReset(ctx.receiverUrl);
    const dirs = Array.from({ length: w }, () => mkdtempSync(join(ctx.tmpRoot, `pg-w${w}-`)));
    const names = dirs.map((_, i) => `herald-pg-worker-${w}x-${i + 1}`);
    const spawnedAt = wallMs();
    const workers: HeraldProc[] = [];
    let done: Awaited<ReturnType<PgContext['waitForCount']>>;
    let cpu: Cpu;
    let readyAt: number;
    try {
      // All W processes start at once; each begins claiming as soon as it is ready.
      const started = await Promise.allSettled(
        dirs.map((dataDir, i) => ctx.startHerald(names[i]!, { dataDir, role: 'worker', concurrency: p.webhookConcurrency, env: pgEnv(schema) })),
      );
      for (const s of started) if (s.status === 'fulfilled') workers.push(s.value);
      const failed = started.find((s) => s.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      readyAt = Math.max(...workers.map((x) => x.readyAt));
      const meter = fullCpuMeter([...workers.map((x) => x.child), ctx.receiver]);
      done = await ctx.waitForCount(ctx.receiverUrl, N, p.e2eCapS);
      cpu = meter.stop();
    } finally {
      await Promise.all(workers.map((x) => ctx.stopHerald(x)));
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
    const stored = await heraldCounts(schema);
    await dropSchemas([schema]);
    const r = done.last;
    const workerCores = round(names.reduce((a, n) => a + (cpu.processes[n] ?? 0), 0), 2);
    const run = {
      workers: w,
      webhookConcurrencyEach: p.webhookConcurrency,
      completed: done.reached,
      delivered: r.count,
      deliveriesPerS: round((r.count - 1) / ((r.lastAt - r.firstAt) / 1000), 1),
      deliveriesPerSFromSpawn: round(r.count / ((done.at - spawnedAt) / 1000), 1),
      startupMs: round(readyAt - spawnedAt, 0),
      deliverySpanS: round((r.lastAt - r.firstAt) / 1000, 3),
      duplicates: Math.max(0, r.count - N),
      workerCores,
      deliveriesPerWorkerCoreS: round(r.count / (workerCores * cpu.wallS), 0),
      deliveriesPerCoreSInclPostgres: round(r.count / ((workerCores + (cpu.processes.postgres ?? 0)) * cpu.wallS), 0),
      cpu,
      stored,
    };
    if (!done.reached) ctx.log(`warning: ${w} PostgreSQL worker(s) delivered ${r.count} of ${N} within the ${p.e2eCapS} s cap; the rate is over those`);
    if (stored.deliveries.sent !== r.count && done.reached) ctx.log(`warning: ${w} worker(s): receiver counted ${r.count}, database has ${JSON.stringify(stored.deliveries)}`);
    ctx.log(
      `e2e PostgreSQL, ${w} worker process(es) x webhook:${p.webhookConcurrency}: ${run.deliveriesPerS} deliveries/s (${run.deliveriesPerSFromSpawn}/s from spawn; ` +
        `workers ${workerCores} cores, postgres ${cpu.processes.postgres} cores, receiver ${cpu.processes.receiver} cores, other ${cpu.otherBusyCores})`,
    );
    runs.push(run);
  }
  return { n: N, nRequested: p.e2eN, preload: { ...preload, stored: seeded }, runs };
}

// ---------------------------------------------------------------------------------------------
// The queue alone: Herald vs pg-boss vs BullMQ

async function queueRuns(ctx: PgContext, p: PgParams, schemas: Set<string>, prefixes: Set<string>) {
  const runs: (QueueResult & { round: number; cpu: { enqueue: Cpu; drain: Cpu }; cpuMicrosPerJob: Record<'enqueue' | 'drain', CpuPerJob>; checkpoint: boolean; elapsedS: number })[] = [];
  const { libraries, capS, rounds, ...workload } = p.queue;
  for (let roundNo = 1; roundNo <= rounds; roundNo++) {
    for (const lib of libraries) {
      const script = QUEUE_SCRIPTS[lib];
      if (!script) throw new Error(`unknown queue library ${lib} (have ${QUEUE_LIBRARIES.join(', ')})`);
      const schema = benchName(`q_${lib}`);
      const prefix = benchName(`q_${lib}`).replaceAll('_', '-');
      schemas.add(schema);
      if (lib === 'bullmq') prefixes.add(prefix);
      const qp: QueueParams = { ...workload, databaseUrl: BENCH_DATABASE_URL, schema, redisUrl: BENCH_REDIS_URL, prefix };
      const cp = await checkpoint();
      const t0 = wallMs();
      const child = spawnNode(`queue-${lib}`, script, { env: { BENCH_QUEUE: JSON.stringify(qp) } });
      try {
        const ev = (name: string, timeoutS: number) => child.waitForLine((l) => (jsonLine(l)?.event === name ? jsonLine(l) : undefined), timeoutS * 1000, `"${name}"`);
        await ev('ready', 60);
        await ev('enqueue-start', 10);
        const enqMeter = fullCpuMeter([child], { countRedis: lib === 'bullmq' });
        await ev('enqueue-end', capS);
        const enqueueCpu = enqMeter.stop();
        await ev('drain-start', 10);
        const drainMeter = fullCpuMeter([child], { countRedis: lib === 'bullmq' });
        await ev('drain-end', capS);
        const drainCpu = drainMeter.stop();
        const result = (await ev('result', 60)).result as QueueResult;
        await child.exited;
        const server = lib === 'bullmq' ? 'redis' : 'postgres';
        // CPU time per job: the queue's process and its store (PostgreSQL backends and auxiliary
        // processes, or Redis), over the phase's measured window.
        const perJob = (c: Cpu, jobs: number): CpuPerJob => {
          const client = ((c.processes[`queue-${lib}`] ?? NaN) * c.wallS * 1e6) / jobs;
          const store = ((c.processes[server] ?? NaN) * c.wallS * 1e6) / jobs;
          return { client: round(client, 0), store: round(store, 0), total: round(client + store, 0) };
        };
        const cpuMicrosPerJob = { enqueue: perJob(enqueueCpu, result.enqueue.jobs), drain: perJob(drainCpu, result.drain.jobs) };
        const run = { ...result, round: roundNo, cpu: { enqueue: enqueueCpu, drain: drainCpu }, cpuMicrosPerJob, checkpoint: cp, elapsedS: round((wallMs() - t0) / 1000, 1) };
        runs.push(run);
        ctx.log(
          `queue ${result.library}: enqueue ${result.enqueue.jobsPerS} jobs/s (${result.enqueue.seconds} s), drain ${result.drain.jobsPerS} jobs/s (${result.drain.seconds} s); ` +
            `drain cores: client ${drainCpu.processes[`queue-${lib}`]}, ${server} ${drainCpu.processes[server]}, other ${drainCpu.otherBusyCores}; ` +
            `CPU per job: enqueue ${cpuMicrosPerJob.enqueue.total} µs, drain ${cpuMicrosPerJob.drain.total} µs`,
        );
      } finally {
        await child.stop(10_000);
        await dropSchemas([schema]);
      }
      await sleep(200);
    }
  }
  const best = (lib: string, phase: 'enqueue' | 'drain') => Math.max(...runs.filter((r) => r.library === lib).map((r) => r[phase].jobsPerS));
  const leastCpu = (lib: string, phase: 'enqueue' | 'drain') => Math.min(...runs.filter((r) => r.library === lib).map((r) => r.cpuMicrosPerJob[phase].total));
  const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? round(a / b, 2) : undefined);
  const versus = (other: string) => ({
    // Throughput, best of the rounds per library (one round: that run): > 1 means Herald is faster.
    enqueue: ratio(best('herald', 'enqueue'), best(other, 'enqueue')),
    drain: ratio(best('herald', 'drain'), best(other, 'drain')),
    // CPU time per job (client + store), least of the rounds: > 1 means Herald costs more.
    cpuPerJobEnqueue: ratio(leastCpu('herald', 'enqueue'), leastCpu(other, 'enqueue')),
    cpuPerJobDrain: ratio(leastCpu('herald', 'drain'), leastCpu(other, 'drain')),
  });
  return { workload: { ...workload, libraries, rounds }, runs, heraldOverPgBoss: versus('pg-boss'), heraldOverBullmq: versus('bullmq') };
}

interface CpuPerJob {
  client: number;
  store: number;
  total: number;
}

/** Deletes every key under `${prefix}:`; returns how many there were. */
async function deleteRedisKeys(prefix: string): Promise<number> {
  const r = new Redis(BENCH_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
  try {
    let cursor = '0';
    let n = 0;
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) n += await r.del(...keys);
    } while (cursor !== '0');
    return n;
  } finally {
    r.disconnect();
  }
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '****';
  return u.href;
}
