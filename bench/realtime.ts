// Real-time benchmark (docs/benchmarks.md, "Real time"):
//
//   node bench/realtime.ts                          18,000 idle connections, then 10,000 of them
//                                                   subscribed to one room and 20 publications
//   --connections N --subscribers M --publications P --interval MS --clients K
//   --nodes 3                                       3 Herald processes on PostgreSQL + Redis; clients
//                                                   spread round-robin over them, publishing to one
//   --out FILE                                      also write the result as JSON
//
// Method. Herald runs as users run it (src/cli/main.ts serve, the launcher's flags and
// environment), on SQLite in a temporary directory (or, with --nodes, on a fresh PostgreSQL schema
// and Redis key prefix, dropped afterwards). K client processes (bench/realtime-clients.ts, `ws`)
// open the connections with one connection token (any number of sessions per recipient is
// allowed), each authenticated (`welcome`) before it counts.
//   Memory: VmRSS of the Herald process(es) from /proc after start and a 5 s settle, and again
//   5 s after the last connection was welcomed; per connection = the difference / connections.
//   RSS includes garbage not yet collected, so it overstates what a connection holds.
//   Publish: M connections subscribe to room:bench; after one warm-up publication (not counted:
//   it pays the first fan-out's compilation and allocation), the orchestrator publishes P times
//   (POST /v1/realtime/publish, one every MS ms, data {"sent": wall time in ms}); every client
//   records receipt minus `sent` for every publication it gets. Reported: receipts (of P x M),
//   and p50/p99/max over all of them, and the CPU time Herald and the clients used per publication
//   (from /proc, the window from the first publish to the last receipt: steadier than latency on a
//   shared machine). All processes share the machine's cores, so the figures
//   include the clients' own CPU; the load average at start is recorded.

import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NODE_FLAGS, RUNTIME_ENV } from '../bin/runtime.js';
import { http, jsonLine, killChildren, NODE, processCpuS, quantile, round, sleep, spawnNode, wallMs, type Child } from './lib.ts';
import { BENCH_REDIS_URL, benchName, dropSchemas, schemaUrl, withDb } from './pg-lib.ts';

export interface RealtimeParams {
  connections: number;
  subscribers: number;
  publications: number;
  intervalMs: number;
  clients: number;
  nodes: number;
}

export interface RealtimeResult {
  params: RealtimeParams;
  loadavgAtStart: number[];
  cpus: number;
  connected: number;
  failed: number;
  connectSeconds: number;
  rssBeforeKb: number;
  rssAfterKb: number;
  perConnectionKb: number;
  subscribed: number;
  receipts: number;
  expectedReceipts: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** CPU ms per publication (warm-up excluded) from the first publish until the last receipt, Herald's processes and the clients'. */
  cpuMsPerPublication: { herald: number; clients: number };
  /** Wall seconds of that window. */
  publishWindowS: number;
}

const ADMIN_KEY = `hk_bench_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
const log = (msg: string) => process.stderr.write(`[realtime ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/** VmRSS of a Herald process; throws with its last output if it has exited. */
function rssKb(n: { child: Child }): number {
  if (n.child.proc.exitCode !== null || n.child.proc.signalCode !== null) throw new Error(`${n.child.name} exited (${n.child.proc.exitCode ?? n.child.proc.signalCode}):\n${n.child.tail()}`);
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${n.child.pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

interface Worker {
  proc: ChildProcess;
  ask<T>(msg: Record<string, unknown>): Promise<T>;
}

function startWorker(): Promise<Worker> {
  const proc = fork(new URL('./realtime-clients.ts', import.meta.url).pathname, [], { execPath: NODE, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let pending: ((m: unknown) => void) | undefined;
  proc.on('message', (m) => {
    const p = pending;
    pending = undefined;
    p?.(m);
  });
  const ask = <T>(msg: Record<string, unknown>) =>
    new Promise<T>((resolve) => {
      pending = resolve as (m: unknown) => void;
      proc.send(msg);
    });
  return new Promise((resolve) => {
    pending = () => resolve({ proc, ask });
  });
}

async function startNode(name: string, env: Record<string, string>): Promise<{ child: Child; url: string }> {
  const child = spawnNode(name, 'src/cli/main.ts', {
    args: ['serve'],
    nodeArgs: [...NODE_FLAGS],
    env: { ...RUNTIME_ENV, PORT: '0', HOST: '127.0.0.1', HERALD_LOG_LEVEL: 'info', HERALD_ADMIN_KEY: ADMIN_KEY, HERALD_REALTIME_FRAME_RATE: '', ...env },
  });
  const started = await child.waitForLine((l) => (jsonLine(l)?.msg === 'herald started' ? jsonLine(l) : undefined), 120_000, '"herald started"');
  return { child, url: String(started.url) };
}

export async function realtimeBench(p: RealtimeParams): Promise<RealtimeResult> {
  const loadavgAtStart = loadavg().map((x) => round(x, 2));
  log(`load average ${loadavgAtStart.join(' ')} on ${cpus().length} cores`);
  const dataRoot = mkdtempSync(join(tmpdir(), 'herald-bench-rt-'));
  const schema = p.nodes > 1 ? benchName('rt') : undefined;
  const nodes: { child: Child; url: string }[] = [];
  const workers: Worker[] = [];
  try {
    if (schema) {
      await withDb((c) => c.query(`CREATE SCHEMA ${schema}`));
      const env = { DATABASE_URL: schemaUrl(schema), REDIS_URL: BENCH_REDIS_URL, HERALD_REDIS_PREFIX: `${schema}:`, HERALD_SECRET_KEY: randomBytes(32).toString('hex') };
      nodes.push(await startNode('herald-1', env)); // migrates first
      for (let i = 2; i <= p.nodes; i++) nodes.push(await startNode(`herald-${i}`, env));
    } else {
      nodes.push(await startNode('herald', { HERALD_DATA_DIR: dataRoot }));
    }
    const api = nodes[0]!.url;
    const auth = { authorization: `Bearer ${ADMIN_KEY}` };
    await http('PUT', `${api}/v1/recipients/bench`, { name: 'bench' }, auth);
    const r = await http<{ token: string }>('POST', `${api}/v1/realtime/tokens`, { recipient: 'bench', rooms: ['bench'], ttl: 86_400 }, auth);
    const tok = r.body;
    if (!tok?.token) throw new Error(`no connection token: ${JSON.stringify(r)}`);

    await sleep(5000);
    const rssBeforeKb = nodes.reduce((s, n) => s + rssKb(n), 0);
    for (let i = 0; i < p.clients; i++) workers.push(await startWorker());
    const wsUrls = nodes.map((n) => `${n.url.replace(/^http/, 'ws')}/v1/realtime`);
    const per = Math.ceil(p.connections / p.clients);
    log(`opening ${p.connections} connections from ${p.clients} client processes to ${nodes.length} node(s)`);
    const t0 = wallMs();
    const opened = await Promise.all(workers.map((w, i) => w.ask<{ connected: number; failed: number }>({ cmd: 'connect', urls: wsUrls, token: tok.token, n: Math.min(per, p.connections - i * per), concurrency: 50 })));
    const connectSeconds = (wallMs() - t0) / 1000;
    const connected = opened.reduce((s, o) => s + o.connected, 0);
    const failed = opened.reduce((s, o) => s + o.failed, 0);
    log(`${connected} connected, ${failed} failed, in ${round(connectSeconds, 1)} s`);
    await sleep(5000);
    const rssAfterKb = nodes.reduce((s, n) => s + rssKb(n), 0);
    const perConnectionKb = round((rssAfterKb - rssBeforeKb) / Math.max(connected, 1), 2);
    log(`RSS ${rssBeforeKb} kB -> ${rssAfterKb} kB: ${perConnectionKb} kB per connection`);

    const subPer = Math.ceil(p.subscribers / p.clients);
    const subs = await Promise.all(workers.map((w, i) => w.ask<{ subscribed: number }>({ cmd: 'subscribe', channel: 'room:bench', n: Math.max(0, Math.min(subPer, p.subscribers - i * subPer)) })));
    const subscribed = subs.reduce((s, o) => s + o.subscribed, 0);
    log(`${subscribed} subscribed to room:bench; one warm-up publication, then ${p.publications}, one every ${p.intervalMs} ms`);
    await http('POST', `${api}/v1/realtime/publish`, { channel: 'room:bench', data: { warmup: true } }, auth);
    await sleep(Math.max(p.intervalMs, 2000));
    for (const w of workers) await w.ask({ cmd: 'collect' });
    const cpu = () => ({ herald: nodes.reduce((t, n) => t + processCpuS(n.child.pid), 0), clients: workers.reduce((t, w) => t + processCpuS(w.proc.pid!), 0) });
    const cpu0 = cpu();
    const w0 = wallMs();
    for (let i = 0; i < p.publications; i++) {
      const res = await http('POST', `${api}/v1/realtime/publish`, { channel: 'room:bench', data: { sent: wallMs() } }, auth);
      if (res.status !== 200) throw new Error(`publish answered ${res.status}: ${JSON.stringify(res.body)}`);
      await sleep(p.intervalMs);
    }
    const expectedReceipts = p.publications * subscribed;
    let lat: number[] = [];
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      for (const w of workers) lat = lat.concat((await w.ask<{ latencies: number[] }>({ cmd: 'collect' })).latencies);
      if (lat.length >= expectedReceipts) break;
      await sleep(1000);
    }
    const cpu1 = cpu();
    const publishWindowS = round((wallMs() - w0) / 1000, 1);
    const sorted = Float64Array.from(lat).sort();
    const result: RealtimeResult = {
      params: p,
      loadavgAtStart,
      cpus: cpus().length,
      connected,
      failed,
      connectSeconds: round(connectSeconds, 1),
      rssBeforeKb,
      rssAfterKb,
      perConnectionKb,
      subscribed,
      receipts: lat.length,
      expectedReceipts,
      latencyMs: { p50: round(quantile(sorted, 0.5), 1), p99: round(quantile(sorted, 0.99), 1), max: round(sorted[sorted.length - 1] ?? NaN, 1) },
      cpuMsPerPublication: { herald: round(((cpu1.herald - cpu0.herald) * 1000) / p.publications, 1), clients: round(((cpu1.clients - cpu0.clients) * 1000) / p.publications, 1) },
      publishWindowS,
    };
    log(`receipts ${result.receipts}/${expectedReceipts}; publish->receipt p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, max ${result.latencyMs.max} ms; CPU per publication: Herald ${result.cpuMsPerPublication.herald} ms, clients ${result.cpuMsPerPublication.clients} ms`);
    return result;
  } finally {
    for (const w of workers) w.proc.kill('SIGKILL');
    for (const n of nodes) await n.child.stop(20_000);
    rmSync(dataRoot, { recursive: true, force: true });
    if (schema) await dropSchemas([schema]);
  }
}

/** The lines bench/run.ts prints. */
export function realtimeReport(r: RealtimeResult): string[] {
  const p = r.params;
  const where = p.nodes > 1 ? `${p.nodes} Herald processes on PostgreSQL + Redis` : 'one Herald process (SQLite)';
  return [
    `Real time: ${where}, ${p.clients} client processes, load average at start ${r.loadavgAtStart.join(' ')} on ${r.cpus} cores`,
    `  idle connections: ${r.connected} welcomed (${r.failed} failed) in ${r.connectSeconds} s; RSS ${round(r.rssBeforeKb / 1024)} -> ${round(r.rssAfterKb / 1024)} MB, ${r.perConnectionKb} KB per connection`,
    `  publish to ${r.subscribed} subscribers: ${r.receipts}/${r.expectedReceipts} received; publish->receipt p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms`,
    `  CPU per publication: Herald ${r.cpuMsPerPublication.herald} ms, clients ${r.cpuMsPerPublication.clients} ms (over ${r.publishWindowS} s)`,
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values: f } = parseArgs({
    options: {
      connections: { type: 'string', default: '18000' },
      subscribers: { type: 'string', default: '10000' },
      publications: { type: 'string', default: '20' },
      interval: { type: 'string', default: '500' },
      clients: { type: 'string', default: '4' },
      nodes: { type: 'string', default: '1' },
      out: { type: 'string' },
    },
    strict: true,
  });
  const params: RealtimeParams = {
    connections: Number(f.connections),
    subscribers: Number(f.subscribers),
    publications: Number(f.publications),
    intervalMs: Number(f.interval),
    clients: Number(f.clients),
    nodes: Number(f.nodes),
  };
  process.on('SIGINT', () => {
    killChildren();
    process.exit(130);
  });
  try {
    const result = await realtimeBench(params);
    console.log(JSON.stringify(result, null, 2));
    if (f.out) writeFileSync(f.out, `${JSON.stringify(result, null, 2)}\n`);
  } catch (err) {
    killChildren();
    throw err;
  }
}
