// The idle footprint: what one default Herald process holds when nothing happens.
//
//   npm run bench:idle                          5 runs of 60 s idle each, prints the medians
//   npm run bench:idle -- --runs 3 --idle 30    fewer, shorter runs
//   npm run bench:idle -- --root DIR            measure another checkout (e.g. a worktree of an older commit)
//   --json FILE                                 also write the result there
//
// Each run starts the server exactly as `npm start` does (package.json's `serve` script, run by
// `sh -c` with the checkout's node_modules/.bin first on PATH, so the pinned Node 24 and whatever
// flags that script gives it), with the default configuration (SQLite, every role) on a fresh
// temporary data directory, and HERALD_ADMIN_KEY set so that the figure includes an API key in the
// database. Once /healthz/ready answers 200, it waits the idle time, sends nothing, then reads
// VmRSS, VmHWM and Threads from /proc/PID/status of the server process and its descendants (summed:
// everything the start command left running), and stops the server with SIGTERM. Runs are
// sequential; the figures reported are the medians over the runs.
//
// RSS depends little on machine load; the time to ready does. Linux only (/proc).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from './lib.ts';

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    idle: { type: 'string', default: '60' },
    root: { type: 'string' },
    json: { type: 'string' },
  },
  strict: true,
});
const runs = Number(flags.runs);
const idleS = Number(flags.idle);
if (!(Number.isInteger(runs) && runs >= 1)) throw new Error(`bad --runs: ${flags.runs}`);
if (!(idleS >= 0)) throw new Error(`bad --idle: ${flags.idle}`);
const root = resolve(flags.root ?? ROOT);
const serveScript = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.serve;
if (!serveScript) throw new Error(`${root}/package.json has no "serve" script`);

const log = (msg: string) => process.stderr.write(`[idle ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface ProcStatus {
  pid: number;
  name: string;
  rssKb: number;
  hwmKb: number;
  threads: number;
}

/** VmRSS, VmHWM and Threads of one process, from /proc/PID/status. */
export function procStatus(pid: number): ProcStatus | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { pid, name: /^Name:\s+(.*)$/m.exec(text)?.[1] ?? '?', rssKb: field('VmRSS'), hwmKb: field('VmHWM'), threads: field('Threads') };
}

/** The process and every descendant of it, by walking /proc/<pid>/task/<pid>/children. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let children = '';
    try {
      children = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const c of children.split(' ').filter(Boolean)) out.push(Number(c));
  }
  return out;
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolvePort(port));
    });
  });
}

async function waitReady(url: string, exited: () => boolean, timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (exited()) throw new Error('the server exited before it was ready');
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - started;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`not ready within ${timeoutMs} ms`);
}

interface Run {
  rssMb: number;
  hwmMb: number;
  threads: number;
  readyMs: number;
  processes: { name: string; rssMb: number; threads: number }[];
}

const mb = (kb: number) => Math.round(kb / 102.4) / 10;

async function oneRun(i: number): Promise<Run> {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-idle-'));
  const port = await freePort();
  // A minimal, explicit environment: the defaults, except where the data lives and the port.
  const env: Record<string, string> = {
    PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: process.env.HOME ?? '/tmp',
    TMPDIR: tmpdir(),
    HOST: '127.0.0.1',
    PORT: String(port),
    HERALD_DATA_DIR: dataDir,
    HERALD_ADMIN_KEY: 'hk_idle_bench_0123456789abcdef0123456789',
  };
  // `exec` so that the shell becomes the script's first command (the server, in a one-command
  // script); a script of several commands leaves the shell as the parent, and it is counted.
  const child = spawn('sh', ['-c', `exec ${serveScript}`], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  child.stderr.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  let exited = false;
  const exit = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
  try {
    const readyMs = await waitReady(`http://127.0.0.1:${port}/healthz/ready`, () => exited, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${output}`);
    });
    await sleep(idleS * 1000);
    if (exited) throw new Error(`the server exited while idle\n${output}`);
    const statuses = processTree(child.pid!).map(procStatus).filter((s): s is ProcStatus => s !== undefined);
    const run: Run = {
      rssMb: mb(statuses.reduce((a, s) => a + s.rssKb, 0)),
      hwmMb: mb(statuses.reduce((a, s) => a + s.hwmKb, 0)),
      threads: statuses.reduce((a, s) => a + s.threads, 0),
      readyMs: Math.round(readyMs),
      processes: statuses.map((s) => ({ name: s.name, rssMb: mb(s.rssKb), threads: s.threads })),
    };
    log(`run ${i + 1}/${runs}: RSS ${run.rssMb} MB (peak ${run.hwmMb} MB), ${run.threads} threads, ready after ${run.readyMs} ms` + (statuses.length > 1 ? ` (${statuses.length} processes: ${run.processes.map((p) => `${p.name} ${p.rssMb} MB`).join(', ')})` : ''));
    return run;
  } finally {
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exit;
    clearTimeout(killer);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : Math.round(((s[m - 1]! + s[m]!) / 2) * 10) / 10;
};

if (!existsSync(join(root, 'node_modules/.bin/node'))) throw new Error(`${root} has no node_modules: run \`node scripts/ensure-deps.js\` there first`);
log(`${runs} run(s) of \`${serveScript}\` in ${root}, ${idleS} s idle each`);
const results: Run[] = [];
for (let i = 0; i < runs; i++) results.push(await oneRun(i));
const summary = {
  at: new Date().toISOString(),
  root,
  command: serveScript,
  idleS,
  runs: results.length,
  rssMb: median(results.map((r) => r.rssMb)),
  hwmMb: median(results.map((r) => r.hwmMb)),
  threads: median(results.map((r) => r.threads)),
  readyMs: median(results.map((r) => r.readyMs)),
  each: results,
};
log(`median of ${runs}: RSS ${summary.rssMb} MB, peak ${summary.hwmMb} MB, ${summary.threads} threads, ready after ${summary.readyMs} ms`);
console.log(JSON.stringify(summary));
if (flags.json) writeFileSync(flags.json, JSON.stringify(summary, null, 2) + '\n');
