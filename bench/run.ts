// Herald benchmarks, one run, every server a separate child process on the pinned Node 24; the load
// generator (autocannon) runs here, in the orchestrator, so it never shares a server's event loop.
//
//   npm run bench                      the full run (about 3 minutes, 5 on a busy machine), writes latest.json
//   npm run bench -- --quick           a short smoke run (about 1 minute), writes bench/results/quick.json
//   npm run bench -- --profile         accept (--role api and api+worker) and e2e (webhook:64) with
//                                      Herald under --cpu-prof; writes bench/results/herald-*.cpuprofile,
//                                      prints a summary of each measurement window, writes profile.json
//   other flags: --duration S --warmup S --connections C --n N --concurrency 16,64,256
//                --mixed-concurrency C --only receiver,accept,e2e,pg,realtime --out FILE --keep
//                --accept-rounds R (bare and Herald --role api measured alternately R times; median ratio;
//                default 3 in the full run, 1 with --quick or --profile)
//                --loadgen autocannon|wrk (the accept phase's load generator; wrk must be on PATH)
//   pg phase:    --pg-parts accept,e2e,queue --pg-n N --pg-workers 1,2,4 --pg-concurrency C
//                --queue-n N --queue-enqueue-batch B --queue-in-flight F --queue-batch B
//                --queue-consumers C --queue-pool P --queue-libs herald,pgboss,bullmq --queue-rounds R
//                --queue-cold (no ANALYZE between enqueue and drain)
//
// Phases (see docs/benchmarks.md for how to read them):
//   receiver   the webhook receiver's own ceiling (autocannon straight at it)
//   accept     POST /v1/notifications: bare Fastify vs Herald --role api vs Herald api+worker
//              (the last also measures deliveries while accepting: the concurrent e2e mode)
//   e2e        N notifications pre-loaded by Herald --role api, then a worker-only Herald on a copy
//              of that data dir per webhook concurrency, timed until the receiver has counted N
//   pg         Herald on PostgreSQL (bench/pg-phase.ts): accept (--role api), e2e with 1, 2 and 4
//              worker processes, and the queue alone against pg-boss and BullMQ (bench/queue-*.ts)
//   realtime   idle WebSocket connections and memory per connection, then publish to subscribers
//              (bench/realtime.ts; alone: node bench/realtime.ts --nodes 3 for the Redis form)
// All traffic goes to 127.0.0.1. Data dirs are temporary directories, removed at the end; the pg
// phase's schemas (database `test`, HERALD_BENCH_DATABASE_URL) and BullMQ keys are dropped too.

import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import {
  cpuMeter,
  fsyncProbe,
  http,
  jsonLine,
  killChildren,
  load,
  loadWrk,
  machineInfo,
  ROOT,
  round,
  sleep,
  spawnNode,
  wallMs,
  type Child,
  type CpuReport,
  type LoadResult,
} from './lib.ts';
import { pgPhase, QUEUE_LIBRARIES, type PgParams } from './pg-phase.ts';
import { realtimeBench, realtimeReport, type RealtimeResult } from './realtime.ts';
import { NODE_FLAGS, RUNTIME_ENV } from '../bin/runtime.js';
import { formatSummary, summarise, type ProfileSummary, type Window } from './profile-summary.ts';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    n: { type: 'string' },
    concurrency: { type: 'string' },
    'mixed-concurrency': { type: 'string' },
    'receiver-duration': { type: 'string' },
    only: { type: 'string' },
    'pg-parts': { type: 'string' },
    'pg-n': { type: 'string' },
    'pg-workers': { type: 'string' },
    'pg-concurrency': { type: 'string' },
    'queue-n': { type: 'string' },
    'queue-enqueue-batch': { type: 'string' },
    'queue-in-flight': { type: 'string' },
    'queue-batch': { type: 'string' },
    'queue-consumers': { type: 'string' },
    'queue-pool': { type: 'string' },
    'queue-libs': { type: 'string' },
    'queue-rounds': { type: 'string' },
    'queue-cold': { type: 'boolean', default: false },
    'accept-rounds': { type: 'string' },
    loadgen: { type: 'string' },
    out: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
  strict: true,
});

const quick = flags.quick;
const params = {
  connections: Number(flags.connections ?? 50),
  warmupS: Number(flags.warmup ?? (quick ? 1 : 2)),
  durationS: Number(flags.duration ?? (quick ? 3 : 10)),
  receiverDurationS: Number(flags['receiver-duration'] ?? (quick ? 2 : 5)),
  e2eN: Number(flags.n ?? (quick ? 5000 : 30_000)),
  e2eConcurrency: (flags.concurrency ?? (quick ? '64' : flags.profile ? '64' : '16,64,256')).split(',').map(Number),
  mixedConcurrency: Number(flags['mixed-concurrency'] ?? 128),
  // The full run measures the ratio three times (bare and Herald in turn) and reports the median: one
  // 10 s pair moves by ±0.1 on a shared virtual machine.
  acceptRounds: Math.max(1, Number(flags['accept-rounds'] ?? (quick || flags.profile ? 1 : 3))),
  // The accept ratio's load generator: autocannon (in this process) or wrk (a C process).
  loadgen: (flags.loadgen ?? 'autocannon') as 'autocannon' | 'wrk',
  // Time caps that keep a whole run under 5 minutes on a slow or busy machine. A capped pre-load
  // delivers what it stored; a capped e2e run reports the rate it reached, marked incomplete.
  preloadCapS: quick ? 15 : 25,
  e2eCapS: quick ? 15 : 20,
  drainCapS: quick ? 10 : 15,
  phases: (flags.only ?? (flags.profile ? 'accept,e2e' : 'receiver,accept,e2e,pg,realtime')).split(','),
  profile: flags.profile,
  // The request every accept measurement sends, to Herald and to the bare server alike.
  body: JSON.stringify({
    to: 'bench-1',
    title: 'Benchmark notification',
    body: 'Hello from the Herald benchmark. This body has the length of a typical short notification.',
    data: { order: 12345, amount: '19.99', currency: 'EUR' },
  }),
  heraldEnv: {
    HOST: '127.0.0.1',
    PORT: '0',
    HERALD_ALLOW_NETWORKS: '127.0.0.0/8',
    // info only adds the start/stop lines (the hot paths log nothing below warn); the orchestrator
    // reads the "herald started" line for the URL and the moment the server is ready.
    HERALD_LOG_LEVEL: 'info',
    HERALD_SHUTDOWN_GRACE: '2s',
    HERALD_SECRET_KEY: 'bench-secret-key-bench-secret-key-0123456789',
  },
};
for (const [k, v] of Object.entries(params)) if (typeof v === 'number' && !(v > 0)) throw new Error(`bad --${k}: ${v}`);
if (params.e2eConcurrency.some((c) => !(c >= 1 && c <= 4096))) throw new Error('bad --concurrency');
if (params.loadgen !== 'autocannon' && params.loadgen !== 'wrk') throw new Error(`bad --loadgen: ${params.loadgen} (autocannon or wrk)`);

// The pg phase (bench/pg-phase.ts). The queue workload is the same for Herald, pg-boss and BullMQ.
const pgParams: PgParams = {
  parts: (flags['pg-parts'] ?? 'accept,e2e,queue').split(','),
  e2eN: Number(flags['pg-n'] ?? (quick ? 5000 : 20_000)),
  workers: (flags['pg-workers'] ?? '1,2,4').split(',').map(Number),
  webhookConcurrency: Number(flags['pg-concurrency'] ?? 64),
  preloadCapS: quick ? 15 : 25,
  e2eCapS: quick ? 15 : 20,
  queue: {
    n: Number(flags['queue-n'] ?? (quick ? 5000 : 20_000)),
    enqueueBatch: Number(flags['queue-enqueue-batch'] ?? 250),
    enqueueInFlight: Number(flags['queue-in-flight'] ?? 4),
    drainBatch: Number(flags['queue-batch'] ?? 64),
    consumers: Number(flags['queue-consumers'] ?? 4),
    poolSize: Number(flags['queue-pool'] ?? 10),
    libraries: (flags['queue-libs'] ?? QUEUE_LIBRARIES.join(',')).split(','),
    rounds: Number(flags['queue-rounds'] ?? 1),
    // ANALYZE between enqueue and drain, as autovacuum has done on a long-running deployment's tables.
    analyze: !flags['queue-cold'],
    capS: 60,
  },
};
for (const [k, v] of [...Object.entries(pgParams), ...Object.entries(pgParams.queue)]) if (typeof v === 'number' && !(Number.isInteger(v) && v > 0)) throw new Error(`bad pg parameter ${k}: ${v}`);
if (pgParams.workers.some((w) => !(Number.isInteger(w) && w >= 1 && w <= 16))) throw new Error('bad --pg-workers');

const ADMIN_KEY = 'hk_bench_0123456789abcdef0123456789';
const AUTH = { authorization: `Bearer ${ADMIN_KEY}` };
const RECIPIENT = 'bench-1';
const RESULTS = join(ROOT, 'bench/results');
// Profiles go next to the results, where .gitignore's bench/results/*.cpuprofile keeps them out of git.
const PROFILES = RESULTS;
const out = flags.out ?? join(RESULTS, flags.profile ? 'profile.json' : quick ? 'quick.json' : 'latest.json');

/** Per profiled process: the measurement window, in ms after its spawn (~ after its profile starts). */
const profileWindows = new Map<string, Window>();
const markWindow = (h: HeraldProc, fromWall: number, toWall: number) => {
  if (h.profiled) profileWindows.set(h.child.name, { fromMs: Math.round(fromWall - h.spawnedAt), toMs: Math.round(toWall - h.spawnedAt) });
};

const tmpRoot = mkdtempSync(join(tmpdir(), 'herald-bench-'));
const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const cleanup = () => {
  killChildren();
  if (!flags.keep) rmSync(tmpRoot, { recursive: true, force: true });
};
process.once('SIGINT', () => {
  cleanup();
  process.exit(130);
});

// ---------------------------------------------------------------------------------------------
// Servers

async function startPortServer(name: string, script: string): Promise<{ child: Child; url: string }> {
  const child = spawnNode(name, script, { env: { PORT: '0' } });
  const port = await child.waitForLine((l) => jsonLine(l)?.port as number | undefined, 20_000, 'its port');
  return { child, url: `http://127.0.0.1:${port}` };
}

interface HeraldProc {
  child: Child;
  url: string;
  dataDir: string;
  spawnedAt: number;
  readyAt: number;
  /** Running under --cpu-prof. */
  profiled: boolean;
}

async function startHerald(
  name: string,
  o: { dataDir: string; role: 'api' | 'worker' | 'api,worker'; concurrency?: number; profile?: boolean; env?: Record<string, string> },
): Promise<HeraldProc> {
  const spawnedAt = wallMs();
  // Herald runs with the launcher's flags and environment (bin/runtime.js), as users run it.
  const nodeArgs = [...NODE_FLAGS, ...(o.profile ? ['--cpu-prof', '--cpu-prof-dir', PROFILES, '--cpu-prof-name', `${name}.cpuprofile`] : [])];
  const child = spawnNode(name, 'src/cli/main.ts', {
    args: ['serve', '--role', o.role],
    nodeArgs,
    env: {
      ...RUNTIME_ENV,
      ...params.heraldEnv,
      HERALD_DATA_DIR: o.dataDir,
      HERALD_ADMIN_KEY: ADMIN_KEY,
      ...(o.concurrency !== undefined && { HERALD_CONCURRENCY: `webhook:${o.concurrency}` }),
      ...o.env,
    },
  });
  const started = await child.waitForLine((l) => {
    const j = jsonLine(l);
    return j?.msg === 'herald started' ? j : undefined;
  }, 120_000, '"herald started"');
  return { child, url: String(started.url ?? ''), dataDir: o.dataDir, spawnedAt, readyAt: wallMs(), profiled: o.profile === true };
}

async function stopHerald(h: HeraldProc): Promise<void> {
  const clean = await h.child.stop(20_000);
  if (!clean) log(`warning: ${h.child.name} did not exit within 20 s of SIGTERM and was killed${params.profile ? ' (its profile is lost)' : ''}`);
}

async function putRecipient(h: HeraldProc, receiverUrl: string): Promise<void> {
  const res = await http('PUT', `${h.url}/v1/recipients/${RECIPIENT}`, { name: 'Benchmark', webhook: { url: `${receiverUrl}/hook` } }, AUTH);
  if (res.status !== 200 && res.status !== 201) throw new Error(`PUT recipient: ${res.status} ${JSON.stringify(res.body)}`);
}

/** Row counts of a stopped Herald's database: what was durably stored. */
function dbCounts(dataDir: string): { notifications: number; deliveries: Record<string, number>; attempts: number } {
  const Database = createRequire(import.meta.url)('better-sqlite3') as new (p: string, o: object) => {
    prepare(s: string): { get(): unknown; all(): unknown[] };
    close(): void;
  };
  const db = new Database(join(dataDir, 'herald.db'), { readonly: true, fileMustExist: true });
  try {
    const notifications = (db.prepare('SELECT COUNT(*) AS n FROM notifications').get() as { n: number }).n;
    const deliveries = Object.fromEntries((db.prepare('SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status').all() as { status: string; n: number }[]).map((r) => [r.status, r.n]));
    const attempts = (db.prepare('SELECT COUNT(*) AS n FROM attempt_log').get() as { n: number }).n;
    return { notifications, deliveries, attempts };
  } finally {
    db.close();
  }
}

interface ReceiverCount {
  count: number;
  bytes: number;
  firstAt: number;
  lastAt: number;
}
/** herald_notifications_accepted_total from GET /metrics. */
async function acceptedTotal(url: string): Promise<number> {
  const text = (await http<string>('GET', `${url}/metrics`)).body;
  const m = /^herald_notifications_accepted_total (\d+)/m.exec(text);
  if (!m) throw new Error('herald_notifications_accepted_total not found in /metrics');
  return Number(m[1]);
}

const receiverCount = async (url: string) => (await http<ReceiverCount>('GET', `${url}/_count`)).body;
const receiverReset = async (url: string) => void (await http('POST', `${url}/_reset`));

/** Polls the receiver every 20 ms until it has counted `n`; resolves with the time it saw it. */
async function waitForCount(url: string, n: number, timeoutS: number): Promise<{ reached: boolean; at: number; last: ReceiverCount }> {
  const until = wallMs() + timeoutS * 1000;
  for (;;) {
    const c = await receiverCount(url);
    if (c.count >= n) return { reached: true, at: wallMs(), last: c };
    if (wallMs() > until) return { reached: false, at: wallMs(), last: c };
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------------------------
// Phases

const loadOpts = (url: string) => ({ url: `${url}/v1/notifications`, body: params.body, headers: AUTH, connections: params.connections });

interface AcceptRun {
  label: string;
  warmup: LoadResult;
  measured: LoadResult;
  cpu: CpuReport;
}

/** The accept measurements' load, from the chosen load generator (--loadgen). */
const acceptLoad = (url: string, duration: number): Promise<LoadResult | (LoadResult & { loadgenCpuS: number })> =>
  params.loadgen === 'wrk' ? loadWrk({ ...loadOpts(url), duration }) : load({ ...loadOpts(url), duration });

/** wrk runs in a child of a shell, not in this process: its CPU moves from "other" to the load generator. */
function countLoadgen(cpu: CpuReport, measured: LoadResult | (LoadResult & { loadgenCpuS: number })): void {
  if (!('loadgenCpuS' in measured)) return;
  const cores = measured.loadgenCpuS / cpu.wallS;
  cpu.processes.loadgen = round(cpu.processes.loadgen! + cores, 2);
  cpu.otherBusyCores = round(Math.max(0, cpu.otherBusyCores - cores), 2);
}

async function acceptRun(label: string, url: string, procs: Child[], herald?: HeraldProc): Promise<AcceptRun> {
  const warmup = await acceptLoad(url, params.warmupS);
  const meter = cpuMeter(procs);
  const t0 = wallMs();
  const measured = await acceptLoad(url, params.durationS);
  if (herald) markWindow(herald, t0, wallMs());
  const cpu = meter.stop();
  countLoadgen(cpu, measured);
  checkLoad(label, measured);
  log(`${label}: ${measured.rps} req/s, p50 ${measured.latencyMs.p50} ms, p99 ${measured.latencyMs.p99} ms (other load ${cpu.otherBusyCores} cores)`);
  return { label, warmup, measured, cpu };
}

function checkLoad(label: string, r: LoadResult): void {
  if (r.non2xx > 0 || r.errors > 0 || r.timeouts > 0) {
    log(`warning: ${label}: ${r.non2xx} non-2xx (${JSON.stringify(r.statusCodes)}), ${r.errors} errors, ${r.timeouts} timeouts`);
  }
}

async function receiverCeiling(receiverUrl: string, receiver: Child) {
  // A body and headers like one of Herald's webhook deliveries.
  const payload = JSON.stringify({
    type: 'notification',
    id: 'ntf_01JBENCH0000000000000000000',
    delivery_id: 'dlv_01JBENCH0000000000000000000',
    recipient: RECIPIENT,
    kind: 'transactional',
    title: 'Benchmark notification',
    body: 'Hello from the Herald benchmark. This body has the length of a typical short notification.',
    data: { order: 12345, amount: '19.99', currency: 'EUR' },
    created_at: new Date().toISOString(),
  });
  const headers = {
    'user-agent': 'Herald-Webhooks/1',
    'webhook-id': 'dlv_01JBENCH0000000000000000000',
    'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
    'webhook-signature': 'v1,' + 'A'.repeat(44),
  };
  const o = { url: `${receiverUrl}/hook`, body: payload, headers, connections: params.connections };
  await load({ ...o, duration: 1 });
  const meter = cpuMeter([receiver]);
  const measured = await load({ ...o, duration: params.receiverDurationS });
  const cpu = meter.stop();
  checkLoad('receiver', measured);
  await receiverReset(receiverUrl);
  log(`receiver ceiling: ${measured.rps} req/s (receiver ${cpu.processes.receiver} cores, load generator ${cpu.processes.loadgen} cores)`);
  return { measured, cpu, note: 'autocannon straight at the receiver; the load generator shares the 2 cores, so this is a lower bound' };
}

/**
 * Bare Fastify then Herald --role api, `acceptRounds` times in turn (each Herald run on a fresh data
 * dir), so a machine whose speed drifts during the run (a shared or virtualised one) affects both
 * alike. The ratio is the median of the rounds' ratios (the lower middle one for an even count);
 * `bare` and `heraldApi` are that round's runs.
 */
async function acceptPhase(receiverUrl: string, receiver: Child) {
  const rounds: { bare: AcceptRun; heraldApi: AcceptRun & { stored: ReturnType<typeof dbCounts> & { answered202: number } }; ratio: number }[] = [];
  for (let n = 1; n <= params.acceptRounds; n++) {
    // 1. bare Fastify
    const bare = await startPortServer('bare', 'bench/bare-server.ts');
    const bareRun = await acceptRun('bare fastify', bare.url, [bare.child]);
    await bare.child.stop();

    // 2. Herald --role api (no worker: deliveries stay pending)
    const apiDir = join(tmpRoot, `accept-api-${n}`);
    const api = await startHerald('herald-accept-api', { dataDir: apiDir, role: 'api', profile: params.profile && n === 1 });
    await putRecipient(api, receiverUrl);
    const apiRun = await acceptRun('herald --role api', api.url, [api.child], api);
    await stopHerald(api);
    const apiStored = { ...dbCounts(apiDir), answered202: apiRun.warmup.ok + apiRun.measured.ok };
    rmSync(apiDir, { recursive: true, force: true });
    rounds.push({ bare: bareRun, heraldApi: { ...apiRun, stored: apiStored }, ratio: round(apiRun.measured.rps / bareRun.measured.rps, 3) });
    if (params.acceptRounds > 1) log(`accept round ${n}: herald / bare ${rounds.at(-1)!.ratio}`);
  }
  const median = [...rounds].sort((x, y) => x.ratio - y.ratio)[Math.floor((rounds.length - 1) / 2)]!;
  const bareRun = median.bare;
  const apiRun = median.heraldApi;

  // 3. Herald api+worker: accepting while delivering (the concurrent e2e mode). Timed from the
  // start of the warm-up until the receiver has counted every accepted notification.
  const mixed = await mixedRun(receiverUrl, receiver);

  const ratio = (r: AcceptRun) => round(r.measured.rps / bareRun.measured.rps, 3);
  const perCore = (r: AcceptRun, name: string) => r.measured.rps / (r.cpu.processes[name] ?? NaN);
  return {
    bare: bareRun,
    heraldApi: apiRun,
    heraldApiWorker: mixed,
    // Every round when there were several (bare and Herald in turn), for the spread.
    ...(rounds.length > 1 && { rounds: rounds.map((r) => ({ bareRps: r.bare.measured.rps, heraldRps: r.heraldApi.measured.rps, ratio: r.ratio, otherCores: [r.bare.cpu.otherBusyCores, r.heraldApi.cpu.otherBusyCores] })) }),
    ratio: {
      heraldApiOverBare: median.ratio,
      heraldApiWorkerOverBare: ratio(mixed.accept),
      // The same, per CPU-second of the server process (how much more CPU a Herald request costs).
      perCoreHeraldApiOverBare: round(perCore(apiRun, 'herald-accept-api') / perCore(bareRun, 'bare'), 3),
    },
  };
}

async function mixedRun(receiverUrl: string, receiver: Child) {
  const dir = join(tmpRoot, 'accept-mixed');
  const c = params.mixedConcurrency;
  const h = await startHerald('herald-api-worker', { dataDir: dir, role: 'api,worker', concurrency: c, profile: params.profile });
  await putRecipient(h, receiverUrl);
  await receiverReset(receiverUrl);
  const t0 = wallMs();
  const warmup = await acceptLoad(h.url, params.warmupS);
  const before = await receiverCount(receiverUrl);
  const meter = cpuMeter([h.child, receiver]);
  const tm0 = wallMs();
  const measured = await acceptLoad(h.url, params.durationS);
  const tm1 = wallMs();
  markWindow(h, tm0, tm1);
  const after = await receiverCount(receiverUrl);
  const cpu = meter.stop();
  countLoadgen(cpu, measured);
  checkLoad('herald api+worker', measured);
  // Requests in flight when the load generator stopped are still committed; count what Herald accepted.
  await sleep(300);
  const accepted = await acceptedTotal(h.url);
  const drained = await waitForCount(receiverUrl, accepted, params.drainCapS);
  await stopHerald(h);
  const stored = dbCounts(dir);
  rmSync(dir, { recursive: true, force: true });
  const deliveredDuring = after.count - before.count;
  const accept: AcceptRun = { label: `herald api+worker (webhook:${c})`, warmup, measured, cpu };
  const concurrent = {
    webhookConcurrency: c,
    acceptedPerS: measured.rps,
    deliveredPerSWhileAccepting: round(deliveredDuring / ((tm1 - tm0) / 1000), 1),
    backlogAtLoadEnd: Math.max(0, accepted - after.count),
    drainS: round((drained.at - tm1) / 1000, 2),
    drained: drained.reached,
    accepted,
    delivered: drained.last.count,
    overallDeliveriesPerS: round(drained.last.count / ((drained.at - t0) / 1000), 1),
    stored,
  };
  log(
    `herald api+worker: accept ${measured.rps} req/s, p50 ${measured.latencyMs.p50} ms, p99 ${measured.latencyMs.p99} ms; ` +
      `delivered ${concurrent.deliveredPerSWhileAccepting}/s while accepting, backlog ${concurrent.backlogAtLoadEnd} drained in ${concurrent.drainS} s`,
  );
  return { accept, concurrent };
}

async function e2ePhase(receiverUrl: string, receiver: Child) {
  // Pre-load: Herald --role api accepts e2eN notifications (deliveries stay pending), then stops.
  const seed = join(tmpRoot, 'e2e-seed');
  const api = await startHerald('herald-preload', { dataDir: seed, role: 'api' });
  await putRecipient(api, receiverUrl);
  const preload = await load({ ...loadOpts(api.url), amount: params.e2eN, maxDurationS: params.preloadCapS });
  checkLoad('preload', preload);
  await stopHerald(api);
  const seeded = dbCounts(seed);
  const N = seeded.notifications;
  if (seeded.deliveries.pending !== N || N < preload.ok) {
    throw new Error(`pre-load stored ${N} notifications / ${JSON.stringify(seeded.deliveries)} for ${preload.ok} answers 202`);
  }
  if (N < params.e2eN) log(`warning: pre-load capped at ${params.preloadCapS} s: ${N} of ${params.e2eN} notifications`);
  log(`pre-loaded ${N} notifications at ${preload.rps} req/s`);

  const runs = [];
  for (const c of params.e2eConcurrency) {
    // Every run starts from an identical copy of the pre-loaded data dir.
    const dir = join(tmpRoot, `e2e-c${c}`);
    cpSync(seed, dir, { recursive: true });
    await receiverReset(receiverUrl);
    const name = `herald-e2e-worker-c${c}`;
    const w = await startHerald(name, { dataDir: dir, role: 'worker', concurrency: c, profile: params.profile });
    const meter = cpuMeter([w.child, receiver]);
    const done = await waitForCount(receiverUrl, N, params.e2eCapS);
    const cpu = meter.stop();
    markWindow(w, w.readyAt, done.at);
    await stopHerald(w);
    const stored = dbCounts(dir);
    rmSync(dir, { recursive: true, force: true });
    const r = done.last;
    const run = {
      webhookConcurrency: c,
      completed: done.reached,
      delivered: r.count,
      // Receiver-side: from its first delivery to its N-th (or last) delivery.
      deliveriesPerS: round((r.count - 1) / ((r.lastAt - r.firstAt) / 1000), 1),
      // Including the worker's process start (node, migrations check, lease recovery).
      deliveriesPerSFromSpawn: round(r.count / ((done.at - w.spawnedAt) / 1000), 1),
      startupMs: round(w.readyAt - w.spawnedAt, 0),
      deliverySpanS: round((r.lastAt - r.firstAt) / 1000, 3),
      duplicates: Math.max(0, r.count - N),
      // Deliveries per CPU-second of the worker: less sensitive to other load than the rate.
      deliveriesPerWorkerCoreS: round(r.count / ((cpu.processes[name] ?? NaN) * cpu.wallS), 0),
      cpu,
      stored,
    };
    if (!done.reached) log(`warning: webhook:${c} delivered ${r.count} of ${N} within the ${params.e2eCapS} s cap; its rate is over those`);
    log(`e2e webhook:${c}: ${run.deliveriesPerS} deliveries/s (${run.deliveriesPerSFromSpawn}/s from spawn; worker ${cpu.processes[name]} cores, receiver ${cpu.processes.receiver} cores, other ${cpu.otherBusyCores})`);
    runs.push(run);
  }
  rmSync(seed, { recursive: true, force: true });
  return { n: N, nRequested: params.e2eN, preload: { ...preload, stored: seeded }, runs };
}

// ---------------------------------------------------------------------------------------------
// Report

function fmt(n: number | undefined, d = 0): string {
  return n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(d);
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ')).join('\n');
}

type Results = {
  receiver?: Awaited<ReturnType<typeof receiverCeiling>>;
  accept?: Awaited<ReturnType<typeof acceptPhase>>;
  e2e?: Awaited<ReturnType<typeof e2ePhase>>;
  pg?: Awaited<ReturnType<typeof pgPhase>>;
  realtime?: RealtimeResult;
};

/** Where a run's CPU went per request: the server's threads by role, and the load generator. */
function cpuPerRequest(run: AcceptRun): string {
  const us = (cores: number) => fmt((cores / run.measured.rps) * 1e6, 1);
  const server = Object.keys(run.cpu.threads)[0];
  const threads = server ? run.cpu.threads[server]! : {};
  const role = (name: string) => (name === 'MainThread' ? 'event loop' : name === 'WorkerThread' ? 'worker thread (SQLite writer)' : name === 'V8Worker' ? 'V8 helpers (GC, compiler)' : 'other');
  const byRole: Record<string, number> = {};
  for (const [name, cores] of Object.entries(threads)) byRole[role(name)] = (byRole[role(name)] ?? 0) + cores;
  const parts = Object.entries(byRole).filter(([, c]) => c > 0).sort((x, y) => y[1] - x[1]).map(([r, c]) => `${r} ${us(c)}`);
  return `${run.label}: ${parts.join(', ')}; load generator ${us(run.cpu.processes.loadgen ?? NaN)}`;
}

function report(r: Results): string {
  const lines: string[] = [];
  if (r.accept) {
    const a = r.accept;
    lines.push(`Accept: POST /v1/notifications, ${params.connections} connections, ${params.durationS} s after a ${params.warmupS} s warm-up, durable (WAL, synchronous=FULL), load from ${params.loadgen}`);
    const row = (run: AcceptRun, ratio?: number) => {
      const serverCores = run.cpu.processes[Object.keys(run.cpu.processes).find((k) => k !== 'loadgen' && k !== 'receiver')!];
      return [
        run.label,
        fmt(run.measured.rps),
        fmt(run.measured.latencyMs.p50, 2),
        fmt(run.measured.latencyMs.p99, 2),
        String(run.measured.non2xx + run.measured.errors + run.measured.timeouts),
        ratio === undefined ? '' : fmt(ratio, 2),
        fmt(serverCores, 2),
        fmt(serverCores ? run.measured.rps / serverCores : undefined),
        fmt(run.cpu.processes.loadgen, 2),
        fmt(run.cpu.otherBusyCores, 2),
      ];
    };
    if (a.rounds) {
      lines.push(`${a.rounds.length} rounds, bare and Herald --role api in turn; x bare per round: ${a.rounds.map((x) => fmt(x.ratio, 3)).join(', ')}; the rows below are the median round`);
    }
    const rows = [row(a.bare), row(a.heraldApi, a.ratio.heraldApiOverBare)];
    rows.push(row(a.heraldApiWorker.accept, a.ratio.heraldApiWorkerOverBare));
    lines.push(table(['server', 'req/s', 'p50 ms', 'p99 ms', 'failed', 'x bare', 'server cores', 'req/core-s', 'loadgen cores', 'other cores'], rows));
    lines.push(`CPU per request, µs (a thread's cores / req/s): ${[a.bare, a.heraldApi].map(cpuPerRequest).join('; ')}`);
    const st = a.heraldApi.stored;
    lines.push(
      `  herald --role api stored ${st.notifications} notifications for ${st.answered202} answers 202 seen by ${params.loadgen} ` +
        (st.notifications >= st.answered202
          ? `(ok: the ${st.notifications - st.answered202} extra were in flight when ${params.loadgen} stopped, at most ${2 * params.connections})`
          : '(MISSING ROWS: a 202 was answered for a notification that is not stored)'),
    );
    {
      const c = a.heraldApiWorker.concurrent;
      lines.push('');
      lines.push(`Concurrent (accept + deliver in one Herald, webhook:${c.webhookConcurrency})`);
      lines.push(
        `  accepted ${fmt(c.acceptedPerS)}/s, delivered ${fmt(c.deliveredPerSWhileAccepting)}/s meanwhile; backlog ${c.backlogAtLoadEnd} at load end, ` +
          `drained in ${fmt(c.drainS, 1)} s${c.drained ? '' : ' (NOT fully)'}; overall ${fmt(c.overallDeliveriesPerS)} deliveries/s for ${c.accepted} notifications`,
      );
    }
    lines.push('');
  }
  if (r.e2e) {
    const e = r.e2e;
    lines.push(`End to end: ${e.n} notifications pre-loaded (by --role api at ${fmt(e.preload.rps)}/s), delivered by a worker-only Herald`);
    lines.push(
      table(
        ['webhook concurrency', 'deliveries/s', 'incl. startup', 'span s', 'worker cores', 'deliveries/core-s', 'receiver cores', 'other cores', 'complete'],
        e.runs.map((x) => [
          String(x.webhookConcurrency),
          fmt(x.deliveriesPerS),
          fmt(x.deliveriesPerSFromSpawn),
          fmt(x.deliverySpanS, 2),
          fmt(x.cpu.processes[`herald-e2e-worker-c${x.webhookConcurrency}`], 2),
          fmt(x.deliveriesPerWorkerCoreS),
          fmt(x.cpu.processes.receiver, 2),
          fmt(x.cpu.otherBusyCores, 2),
          x.completed ? (x.duplicates ? `yes, ${x.duplicates} dup` : 'yes') : `capped at ${x.delivered}`,
        ]),
      ),
    );
    lines.push('');
  }
  if (r.pg) {
    lines.push(...pgReport(r.pg, r.accept?.heraldApi.measured.rps));
    lines.push('');
  }
  if (r.realtime) {
    lines.push(...realtimeReport(r.realtime));
    lines.push('');
  }
  if (r.receiver) {
    lines.push(`Receiver ceiling: ${fmt(r.receiver.measured.rps)} req/s with ${params.connections} connections (receiver ${fmt(r.receiver.cpu.processes.receiver, 2)} cores, load generator ${fmt(r.receiver.cpu.processes.loadgen, 2)} cores)`);
  }
  return lines.join('\n');
}

function pgReport(pg: NonNullable<Results['pg']>, sqliteAcceptRps: number | undefined): string[] {
  const lines: string[] = [];
  lines.push(`PostgreSQL ${pg.postgres.version} (${pg.databaseUrl}, a fresh schema per run); "postgres cores": the backends serving the run plus PostgreSQL's own processes`);
  if (pg.accept) {
    const a = pg.accept;
    const cores = a.cpu.processes['herald-pg-accept-api'];
    lines.push(`Accept on PostgreSQL: POST /v1/notifications, ${params.connections} connections, ${params.durationS} s after a ${params.warmupS} s warm-up`);
    lines.push(
      table(
        ['server', 'req/s', 'p50 ms', 'p99 ms', 'failed', 'x SQLite', 'server cores', 'postgres cores', 'req/core-s', 'loadgen cores', 'other cores'],
        [
          [
            'herald --role api (PostgreSQL)',
            fmt(a.measured.rps),
            fmt(a.measured.latencyMs.p50, 2),
            fmt(a.measured.latencyMs.p99, 2),
            String(a.measured.non2xx + a.measured.errors + a.measured.timeouts),
            sqliteAcceptRps ? fmt(a.measured.rps / sqliteAcceptRps, 2) : '',
            fmt(cores, 2),
            fmt(a.cpu.processes.postgres, 2),
            fmt(a.requestsPerHeraldCoreS),
            fmt(a.cpu.processes.loadgen, 2),
            fmt(a.cpu.otherBusyCores, 2),
          ],
        ],
      ),
    );
    lines.push(
      `  stored ${a.stored.notifications} notifications for ${a.stored.answered202} answers 202` +
        (a.stored.notifications >= a.stored.answered202 ? ' (ok)' : ' (MISSING ROWS: a 202 was answered for a notification that is not stored)'),
    );
    lines.push('');
  }
  if (pg.e2e) {
    const e = pg.e2e;
    lines.push(`End to end on PostgreSQL: ${e.n} notifications pre-loaded (by --role api at ${fmt(e.preload.rps)}/s), delivered by worker-only Herald processes, webhook:${pgParams.webhookConcurrency} each`);
    lines.push(
      table(
        ['workers', 'deliveries/s', 'incl. startup', 'span s', 'worker cores', 'postgres cores', 'deliveries/worker-core-s', 'receiver cores', 'other cores', 'complete'],
        e.runs.map((x) => [
          String(x.workers),
          fmt(x.deliveriesPerS),
          fmt(x.deliveriesPerSFromSpawn),
          fmt(x.deliverySpanS, 2),
          fmt(x.workerCores, 2),
          fmt(x.cpu.processes.postgres, 2),
          fmt(x.deliveriesPerWorkerCoreS),
          fmt(x.cpu.processes.receiver, 2),
          fmt(x.cpu.otherBusyCores, 2),
          x.completed ? (x.duplicates ? `yes, ${x.duplicates} dup` : 'yes') : `capped at ${x.delivered}`,
        ]),
      ),
    );
    lines.push('');
  }
  if (pg.queue) {
    const q = pg.queue;
    const w = q.workload;
    lines.push(
      `Queue alone: ${w.n} no-op jobs; enqueue in batches of ${w.enqueueBatch}, ${w.enqueueInFlight} in flight; drain by ${w.consumers} consumers x batches of ${w.drainBatch} ` +
        `(BullMQ: worker concurrency ${w.consumers * w.drainBatch}); PostgreSQL pools of ${w.poolSize}${w.analyze ? '; tables ANALYZEd before the drain' : '; no ANALYZE (cold statistics)'}`,
    );
    lines.push(
      table(
        ['queue', 'round', 'enqueue jobs/s', 'drain jobs/s', 'CPU µs/job enqueue (client+store)', 'CPU µs/job drain (client+store)', 'WAL B/job (enq/drain)', 'other cores (enq/drain)'],
        q.runs.map((r) => {
          const us = (c: { client: number; store: number; total: number }) => `${fmt(c.total)} (${fmt(c.client)}+${fmt(c.store)})`;
          return [
            `${r.library} ${r.version.split(' ')[0]}`,
            String(r.round),
            fmt(r.enqueue.jobsPerS),
            fmt(r.drain.jobsPerS),
            us(r.cpuMicrosPerJob.enqueue),
            us(r.cpuMicrosPerJob.drain),
            r.enqueue.walBytesPerJob === undefined ? '' : `${fmt(r.enqueue.walBytesPerJob)} / ${fmt(r.drain.walBytesPerJob)}`,
            `${fmt(r.cpu.enqueue.otherBusyCores, 2)} / ${fmt(r.cpu.drain.otherBusyCores, 2)}`,
          ];
        }),
      ),
    );
    for (const [name, v] of [['pg-boss', q.heraldOverPgBoss], ['BullMQ', q.heraldOverBullmq]] as const) {
      lines.push(
        `  Herald / ${name}: throughput enqueue x${fmt(v.enqueue, 2)}, drain x${fmt(v.drain, 2)} (> 1: Herald faster); ` +
          `CPU per job enqueue x${fmt(v.cpuPerJobEnqueue, 2)}, drain x${fmt(v.cpuPerJobDrain, 2)} (> 1: Herald costlier)`,
      );
    }
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = new Date();
  const t0 = wallMs();
  if (params.profile) {
    mkdirSync(PROFILES, { recursive: true });
    for (const f of readdirSync(PROFILES)) if (f.startsWith('herald-') && f.endsWith('.cpuprofile')) rmSync(join(PROFILES, f));
  }
  const machine = machineInfo(tmpRoot);
  const fsync = fsyncProbe(tmpRoot);
  log(`${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}, sqlite ${machine.sqlite}, fdatasync median ${fsync.medianMs} ms; load average ${machine.loadavgAtStart.join(' ')}`);

  const receiver = await startPortServer('receiver', 'bench/receiver.ts');
  const results: Results = {};
  try {
    if (params.phases.includes('receiver')) results.receiver = await receiverCeiling(receiver.url, receiver.child);
    if (params.phases.includes('accept')) results.accept = await acceptPhase(receiver.url, receiver.child);
    if (params.phases.includes('e2e')) results.e2e = await e2ePhase(receiver.url, receiver.child);
    if (params.phases.includes('pg')) {
      results.pg = await pgPhase(
        {
          log,
          tmpRoot,
          receiverUrl: receiver.url,
          receiver: receiver.child,
          connections: params.connections,
          warmupS: params.warmupS,
          durationS: params.durationS,
          loadOpts,
          checkLoad,
          startHerald,
          stopHerald,
          putRecipient,
          receiverReset,
          waitForCount,
        },
        pgParams,
      );
    }
    if (params.phases.includes('realtime')) {
      results.realtime = await realtimeBench(
        quick
          ? { connections: 2000, subscribers: 1000, publications: 5, intervalMs: 500, clients: 2, nodes: 1 }
          : { connections: 18_000, subscribers: 10_000, publications: 20, intervalMs: 500, clients: 4, nodes: 1 },
      );
    }
  } finally {
    await receiver.child.stop();
    cleanup();
  }

  let profiles: ProfileSummary[] | undefined;
  if (params.profile) {
    profiles = [...profileWindows].map(([name, window]) => summarise(join(PROFILES, `${name}.cpuprofile`), 25, window));
  }

  const record = {
    date: started.toISOString(),
    elapsedS: round((wallMs() - t0) / 1000, 1),
    command: `node bench/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
    parameters: {
      ...params,
      heraldEnv: { ...params.heraldEnv, HERALD_ADMIN_KEY: '(bench key)', HERALD_DATA_DIR: '(temporary directory)' },
      ...(params.phases.includes('pg') && { pg: pgParams }),
    },
    machine: { ...machine, fsyncProbe: fsync, loadavgAtEnd: loadavg().map((x) => round(x, 2)) },
    results,
    ...(profiles && { profiles: profiles.map((p) => ({ ...p, file: relative(ROOT, p.file) })) }),
  };
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(out, JSON.stringify(record, null, 2) + '\n');

  console.log('');
  console.log(`Herald benchmark ${record.date} (${record.elapsedS} s), ${machine.cpuModel} x${machine.cores}, ${machine.memoryGiB} GiB, node ${machine.node}, sqlite ${machine.sqlite}`);
  console.log(`data dir on ${machine.dataDirFs}, 4 KiB write+fdatasync median ${fsync.medianMs} ms (p99 ${fsync.p99Ms} ms); load average at start ${machine.loadavgAtStart.join(' ')}, at end ${record.machine.loadavgAtEnd.join(' ')}`);
  console.log('"other cores": CPU used by processes outside this benchmark during the measurement (noise); "req/core-s",');
  console.log('"deliveries/core-s": work done per CPU-second of the server process, steadier than rates when the machine is shared');
  console.log('');
  console.log(report(results));
  if (profiles) {
    for (const p of profiles) {
      console.log('');
      console.log(formatSummary({ ...p, file: relative(ROOT, p.file) }));
    }
  }
  console.log('');
  console.log(`raw figures: ${relative(ROOT, out)}`);
}

main().catch((err: unknown) => {
  cleanup();
  console.error(err);
  process.exitCode = 1;
});
