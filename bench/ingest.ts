// The ingest benchmark: POST /hooks/{path} of a GitHub-signed event (X-Hub-Signature-256 over the
// body, a fresh X-GitHub-Delivery per request so every request stores a new event), against a bare
// Fastify route doing the same HTTP work (bench/bare-hooks-server.ts) in the same run. Herald runs
// as `herald serve --role api` on SQLite with its defaults (synchronous=FULL: each 202 follows a
// durable group commit); every server is its own child process; autocannon runs here.
//
//   node bench/ingest.ts [--rounds 3] [--duration 10] [--warmup 2] [--connections 50]
//                        [--profile] [--out FILE]
//
// Rounds alternate bare and Herald; the reported ratio is the median round's. After each Herald
// round the stopped server's database is counted: every 202 must be a stored event. --profile runs
// Herald under --cpu-prof (in a temporary directory) and prints the hottest functions of the first
// measured window. --out writes the record as JSON (never bench/results/latest.json by default).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHmac, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuMeter, http, jsonLine, killChildren, machineInfo, quantile, round, spawnNode, wallMs, type Child, type CpuReport } from './lib.ts';
import { formatSummary, summarise } from './profile-summary.ts';
import { NODE_FLAGS, RUNTIME_ENV } from '../bin/runtime.js';

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '50' },
    profile: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const params = { rounds: Number(flags.rounds), durationS: Number(flags.duration), warmupS: Number(flags.warmup), connections: Number(flags.connections) };
for (const [k, v] of Object.entries(params)) if (!(v > 0)) throw new Error(`bad --${k}: ${v}`);

const ADMIN_KEY = 'hk_bench_0123456789abcdef0123456789';
const SECRET = 'bench-github-webhook-secret-0123456789';
const PATH = '/github/acme/api';
// A GitHub push event of a typical size (about 2 KB), signed once: the signature covers the body only.
const BODY = JSON.stringify({
  ref: 'refs/heads/main',
  before: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
  after: '76ae82c7b1a177c8d03f9e96e0adf2466113728f',
  repository: { id: 35129377, name: 'api', full_name: 'acme/api', private: true, owner: { login: 'acme', id: 1 }, html_url: 'https://github.com/acme/api', default_branch: 'main' },
  pusher: { name: 'octocat', email: 'octocat@github.com' },
  sender: { login: 'octocat', id: 583231, type: 'User' },
  commits: Array.from({ length: 3 }, (_, i) => ({
    id: randomBytes(20).toString('hex'),
    message: `Change ${i}: update the handler and its tests`,
    timestamp: '2026-12-07T12:00:00Z',
    author: { name: 'Octo Cat', email: 'octocat@github.com', username: 'octocat' },
    added: [],
    removed: [],
    modified: ['src/handler.ts', 'test/handler.test.ts'],
  })),
  head_commit: null,
  pad: 'x'.repeat(600),
});
const SIGNATURE = 'sha256=' + createHmac('sha256', SECRET).update(BODY).digest('hex');

const tmpRoot = mkdtempSync(join(tmpdir(), 'herald-bench-ingest-'));
const log = (msg: string) => process.stderr.write(`[ingest ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
process.once('SIGINT', () => {
  killChildren();
  rmSync(tmpRoot, { recursive: true, force: true });
  process.exit(130);
});

interface Autocannon {
  (opts: Record<string, unknown>, cb: (err: Error | null, r: { '2xx': number; non2xx: number; errors: number; timeouts: number; statusCodeStats?: Record<string, { count: number }> }) => void): {
    on(event: 'response', fn: (client: unknown, status: number, bytes: number, ms: number) => void): void;
  };
}
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

interface Load {
  rps: number;
  ok: number;
  non2xx: number;
  errors: number;
  statusCodes: Record<string, number>;
  latencyMs: { p50: number; p99: number };
}

/** Signed GitHub deliveries for `seconds`, each with its own X-GitHub-Delivery. */
function load(url: string, seconds: number): Promise<Load> {
  let seq = 0;
  const run = randomBytes(4).toString('hex');
  return new Promise((resolve, reject) => {
    const times: number[] = [];
    const t0 = performance.now();
    const inst = autocannon(
      {
        url: `${url}/hooks${PATH}`,
        connections: params.connections,
        pipelining: 1,
        timeout: 30,
        duration: seconds,
        requests: [
          {
            method: 'POST',
            body: BODY,
            setupRequest: (req: { headers?: Record<string, string> }) => ({
              ...req,
              headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': SIGNATURE, 'x-github-delivery': `${run}-${seq++}` },
            }),
          },
        ],
      },
      (err, r) => {
        if (err) return reject(err);
        const s = (performance.now() - t0) / 1000;
        const sorted = Float64Array.from(times).sort();
        resolve({
          rps: round(r['2xx'] / s, 1),
          ok: r['2xx'],
          non2xx: r.non2xx,
          errors: r.errors + r.timeouts,
          statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => [k, v.count])),
          latencyMs: { p50: round(quantile(sorted, 0.5), 2), p99: round(quantile(sorted, 0.99), 2) },
        });
      },
    );
    inst.on('response', (_c, status, _b, ms) => {
      if (status >= 200 && status < 300) times.push(ms);
    });
  });
}

async function measure(name: string, url: string, procs: Child[]): Promise<{ load: Load; cpu: CpuReport; warmupOk: number; window: [number, number] }> {
  const warm = await load(url, params.warmupS);
  const meter = cpuMeter(procs);
  const t0 = wallMs();
  const l = await load(url, params.durationS);
  const window: [number, number] = [t0, wallMs()];
  const cpu = meter.stop();
  if (l.non2xx > 0 || l.errors > 0) throw new Error(`${name}: ${l.non2xx} non-2xx (${JSON.stringify(l.statusCodes)}) and ${l.errors} errors`);
  log(`${name}: ${l.rps} req/s, p50 ${l.latencyMs.p50} ms, p99 ${l.latencyMs.p99} ms; server ${cpu.processes[procs[0]!.name]} cores, load generator ${cpu.processes.loadgen} cores, other load ${cpu.otherBusyCores} cores`);
  return { load: l, cpu, warmupOk: warm.ok, window };
}

async function bare() {
  const child = spawnNode('bare-hooks', 'bench/bare-hooks-server.ts', { env: { PORT: '0' } });
  const port = await child.waitForLine((l) => jsonLine(l)?.port as number | undefined, 20_000, 'its port');
  try {
    return await measure('bare fastify', `http://127.0.0.1:${port}`, [child]);
  } finally {
    await child.stop();
  }
}

async function herald(round: number) {
  const dataDir = join(tmpRoot, `herald-${round}`);
  const profileDir = join(tmpRoot, 'profiles');
  const profiled = flags.profile && round === 1;
  const spawnedAt = wallMs();
  const child = spawnNode('herald-ingest', 'src/cli/main.ts', {
    args: ['serve', '--role', 'api'],
    nodeArgs: [...NODE_FLAGS, ...(profiled ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', 'herald-ingest.cpuprofile'] : [])],
    env: {
      ...RUNTIME_ENV,
      HOST: '127.0.0.1',
      PORT: '0',
      HERALD_LOG_LEVEL: 'info',
      HERALD_SHUTDOWN_GRACE: '2s',
      HERALD_SECRET_KEY: 'bench-secret-key-bench-secret-key-0123456789',
      HERALD_DATA_DIR: dataDir,
      HERALD_ADMIN_KEY: ADMIN_KEY,
    },
  });
  const started = await child.waitForLine((l) => (jsonLine(l)?.msg === 'herald started' ? jsonLine(l) : undefined), 120_000, '"herald started"');
  const url = String(started.url);
  const src = await http('PUT', `${url}/v1/sources/bench`, { path: PATH, provider: 'github', secrets: [SECRET] }, { authorization: `Bearer ${ADMIN_KEY}` });
  if (src.status !== 201) throw new Error(`PUT source: ${src.status} ${JSON.stringify(src.body)}`);
  let r;
  try {
    r = await measure('herald POST /hooks', url, [child]);
  } finally {
    await child.stop(20_000);
  }
  const Database = createRequire(import.meta.url)('better-sqlite3') as new (p: string, o: object) => { prepare(s: string): { get(): unknown }; close(): void };
  const db = new Database(join(dataDir, 'herald.db'), { readonly: true, fileMustExist: true });
  const stored = (db.prepare('SELECT COUNT(*) AS n FROM inbound_events').get() as { n: number }).n;
  db.close();
  rmSync(dataDir, { recursive: true, force: true });
  // Requests cut when the load generator stopped may be stored without their 202 being counted.
  if (stored < r.warmupOk + r.load.ok) throw new Error(`herald stored ${stored} events for ${r.warmupOk + r.load.ok} answers 202`);
  let profile: string | undefined;
  if (profiled) {
    profile = formatSummary(summarise(join(profileDir, 'herald-ingest.cpuprofile'), 25, { fromMs: Math.round(r.window[0] - spawnedAt), toMs: Math.round(r.window[1] - spawnedAt) }));
  }
  return { ...r, stored, profile };
}

const load0 = loadavg();
const rounds: {
  bareRps: number;
  heraldRps: number;
  ratio: number;
  otherCores: [number, number];
  loadgenCores: [number, number];
  heraldCores: number;
  bareCores: number;
  heraldP99: number;
  stored: number;
}[] = [];
let profile: string | undefined;
try {
  for (let n = 1; n <= params.rounds; n++) {
    const b = await bare();
    const h = await herald(n);
    profile ??= h.profile;
    rounds.push({
      bareRps: b.load.rps,
      heraldRps: h.load.rps,
      ratio: round(h.load.rps / b.load.rps, 3),
      otherCores: [b.cpu.otherBusyCores, h.cpu.otherBusyCores],
      loadgenCores: [b.cpu.processes.loadgen ?? NaN, h.cpu.processes.loadgen ?? NaN],
      bareCores: b.cpu.processes['bare-hooks'] ?? NaN,
      heraldCores: h.cpu.processes['herald-ingest'] ?? NaN,
      heraldP99: h.load.latencyMs.p99,
      stored: h.stored,
    });
    log(`round ${n}: herald / bare ${rounds.at(-1)!.ratio}`);
  }
} finally {
  killChildren();
  rmSync(tmpRoot, { recursive: true, force: true });
}
const median = [...rounds].sort((a, b) => a.ratio - b.ratio)[Math.floor((rounds.length - 1) / 2)]!;
const record = {
  at: new Date().toISOString(),
  machine: machineInfo(tmpdir()),
  loadavgAtStart: load0.map((x) => round(x, 2)),
  params: { ...params, bodyBytes: Buffer.byteLength(BODY), provider: 'github', store: 'sqlite (synchronous=FULL)' },
  rounds,
  median: { ratio: median.ratio, bareRps: median.bareRps, heraldRps: median.heraldRps, perCoreRatio: round(median.heraldRps / median.heraldCores / (median.bareRps / median.bareCores), 3) },
  target: 0.8,
};
if (profile) console.log(profile);
console.log(JSON.stringify(record.median));
console.log(`ingest: Herald ${median.heraldRps} req/s against bare Fastify ${median.bareRps} req/s: ${median.ratio} x (target 0.8); load average at start ${record.loadavgAtStart.join(' ')}`);
if (flags.out) writeFileSync(flags.out, JSON.stringify(record, null, 2) + '\n');
