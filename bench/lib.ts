// Shared helpers of the benchmarks: child processes, the load generator (autocannon, run in the
// orchestrator's process, never in a server's), CPU accounting from /proc, machine information and
// small statistics. Everything here talks to 127.0.0.1 only.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fdatasyncSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The pinned Node 24 from devDependencies; every server runs on it. */
export const NODE = existsSync(join(ROOT, 'node_modules/.bin/node')) ? join(ROOT, 'node_modules/.bin/node') : process.execPath;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export const wallMs = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------
// Child processes

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string | null>;
  /** The first stdout line (already printed or still to come) for which `pred` returns a value. */
  waitForLine<T>(pred: (line: string) => T | undefined, timeoutMs: number, what: string): Promise<T>;
  /** The last lines of stderr and stdout, for error messages. */
  tail(): string;
  /** SIGTERM, then SIGKILL after `timeoutMs`. Resolves once exited; true if it exited by itself. */
  stop(timeoutMs?: number): Promise<boolean>;
}

const children = new Set<Child>();

export function spawnNode(name: string, script: string, opts: { args?: string[]; env: Record<string, string>; nodeArgs?: string[] }): Child {
  // A minimal, explicit environment: nothing from the caller's HERALD_*, NODE_OPTIONS or PORT.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', TMPDIR: tmpdir(), ...opts.env };
  const proc = spawn(NODE, [...(opts.nodeArgs ?? []), script, ...(opts.args ?? [])], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const errLines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  const split = (sink: string[], notify: boolean) => {
    let buf = '';
    return (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        sink.push(line);
        if (sink.length > 200) sink.shift();
        if (notify) for (const l of listeners) l(line);
      }
    };
  };
  proc.stdout!.on('data', split(lines, true));
  proc.stderr!.on('data', split(errLines, false));
  const exited = new Promise<number | string | null>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal)));
  const child: Child = {
    name,
    pid: proc.pid!,
    proc,
    exited,
    waitForLine<T>(pred: (line: string) => T | undefined, timeoutMs: number, what: string) {
      for (const l of lines) {
        const v = pred(l);
        if (v !== undefined) return Promise.resolve(v);
      }
      return new Promise<T>((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          listeners.delete(onLine);
        };
        const onLine = (l: string) => {
          const v = pred(l);
          if (v !== undefined) {
            done();
            resolve(v);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name}: timed out after ${timeoutMs} ms waiting for ${what}\n${child.tail()}`));
        }, timeoutMs);
        listeners.add(onLine);
        void exited.then((code) => {
          done();
          reject(new Error(`${name} exited (${code}) while waiting for ${what}\n${child.tail()}`));
        });
      });
    },
    tail: () => [...errLines.slice(-20), ...lines.slice(-10)].join('\n'),
    async stop(timeoutMs = 15_000) {
      children.delete(child);
      if (proc.exitCode !== null || proc.signalCode !== null) return true;
      proc.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const clean = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
      clearTimeout(timer);
      if (!clean) {
        proc.kill('SIGKILL');
        await exited;
      }
      return clean;
    },
  };
  children.add(child);
  return child;
}

/** Kills every child this process started and has not stopped yet (on error or interrupt). */
export function killChildren(): void {
  for (const c of children) {
    try {
      c.proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
}

/** Parses a line of JSON, or undefined if it is not JSON. */
export function jsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// CPU accounting: how much CPU each of our processes used during a phase, and how much the rest of
// the machine (other people's tests, ...) used meanwhile. Linux /proc only; zeros elsewhere.

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) a process has used so far, or NaN if it is gone. */
export function processCpuS(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15: utime, stime
  } catch {
    return NaN;
  }
}

/** CPU seconds of each thread of a process, summed by thread name (MainThread, WorkerThread, V8Worker, …). */
export function threadsCpuS(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) / CLK_TCK;
      } catch {
        // the thread exited
      }
    }
  } catch {
    // the process exited
  }
  return out;
}

function systemCpu(): { busy: number; iowait: number; total: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    const busy = user + nice + system + irq + softirq + steal;
    return { busy: busy / CLK_TCK, iowait: iowait / CLK_TCK, total: (busy + idle + iowait) / CLK_TCK };
  } catch {
    return { busy: 0, iowait: 0, total: 0 };
  }
}

export interface CpuReport {
  wallS: number;
  /** Cores busy machine-wide on average (of `cores`). */
  machineBusyCores: number;
  /** Cores busy with processes outside this benchmark: the noise. */
  otherBusyCores: number;
  iowaitCores: number;
  /** Cores used by each of our processes; `loadgen` is this process (autocannon, polling). */
  processes: Record<string, number>;
  /** Per process, cores used by its threads, by thread name (threads that started or ended during the window count from when they were seen). */
  threads: Record<string, Record<string, number>>;
}

export function cpuMeter(procs: Child[]): { stop(): CpuReport } {
  const t0 = performance.now();
  const sys0 = systemCpu();
  const self0 = process.cpuUsage();
  const p0 = procs.map((c) => processCpuS(c.pid));
  const t0s = procs.map((c) => threadsCpuS(c.pid));
  return {
    stop() {
      const threads: Record<string, Record<string, number>> = {};
      const wallS = (performance.now() - t0) / 1000;
      const sys1 = systemCpu();
      const self = process.cpuUsage(self0);
      const processes: Record<string, number> = { loadgen: round((self.user + self.system) / 1e6 / wallS, 2) };
      let ours = (self.user + self.system) / 1e6;
      procs.forEach((c, i) => {
        const used = processCpuS(c.pid) - p0[i]!;
        if (Number.isFinite(used)) {
          processes[c.name] = round(used / wallS, 2);
          ours += used;
        }
        const t1 = threadsCpuS(c.pid);
        threads[c.name] = Object.fromEntries(Object.entries(t1).map(([name, s]) => [name, round((s - (t0s[i]![name] ?? 0)) / wallS, 3)]));
      });
      const busy = sys1.busy - sys0.busy;
      return {
        wallS: round(wallS, 2),
        machineBusyCores: round(busy / wallS, 2),
        otherBusyCores: round(Math.max(0, busy - ours) / wallS, 2),
        iowaitCores: round((sys1.iowait - sys0.iowait) / wallS, 2),
        processes,
        threads,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Load generation (autocannon has no type declarations; this is the part of its API we use)

interface AutocannonOptions {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  connections?: number;
  pipelining?: number;
  duration?: number;
  amount?: number;
  timeout?: number;
}
interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
  latency: { p50: number; p99: number; average: number; max: number };
  requests: { average: number; total: number; sent: number };
}
interface AutocannonInstance {
  on(event: 'response', fn: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): void;
  stop(): void;
}
type Autocannon = (opts: AutocannonOptions, cb: (err: Error | null, result: AutocannonResult) => void) => AutocannonInstance;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface LoadOptions {
  url: string;
  body: string;
  headers: Record<string, string>;
  connections: number;
  /** Seconds; ignored when `amount` is set. */
  duration?: number;
  /** Stop after this many responses. */
  amount?: number;
  /** Stop after this many seconds even if `amount` has not been reached. */
  maxDurationS?: number;
}

export interface LoadResult {
  connections: number;
  durationS: number;
  /** Responses with a 2xx status. */
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** 2xx responses per second over the whole run. */
  rps: number;
  /** Latency of 2xx responses in ms, exact (from every response time, not autocannon's 1 ms histogram). */
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
}

export function load(opts: LoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const times: number[] = [];
    const t0 = performance.now();
    const instance = autocannon(
      {
        url: opts.url,
        method: 'POST',
        headers: { 'content-type': 'application/json', ...opts.headers },
        body: opts.body,
        connections: opts.connections,
        pipelining: 1,
        timeout: 30,
        ...(opts.amount !== undefined ? { amount: opts.amount } : { duration: opts.duration ?? 10 }),
      },
      (err, r) => {
        clearTimeout(cap);
        if (err) return reject(err);
        const durationS = (performance.now() - t0) / 1000;
        const statusCodes: Record<string, number> = {};
        for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = s.count;
        const sorted = Float64Array.from(times).sort();
        resolve({
          connections: opts.connections,
          durationS: round(durationS, 3),
          ok: r['2xx'],
          non2xx: r.non2xx,
          errors: r.errors,
          timeouts: r.timeouts,
          statusCodes,
          rps: round(r['2xx'] / durationS, 1),
          latencyMs: {
            p50: round(quantile(sorted, 0.5), 2),
            p90: round(quantile(sorted, 0.9), 2),
            p99: round(quantile(sorted, 0.99), 2),
            p999: round(quantile(sorted, 0.999), 2),
            max: round(sorted.at(-1) ?? NaN, 2),
            mean: round(sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1), 2),
          },
        });
      },
    );
    const cap = opts.maxDurationS === undefined ? undefined : setTimeout(() => instance.stop(), opts.maxDurationS * 1000);
    instance.on('response', (_client, status, _bytes, responseTime) => {
      if (status >= 200 && status < 300) times.push(responseTime);
    });
  });
}

/** wrk (https://github.com/wg/wrk) on PATH, or undefined. */
export function wrkPath(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = join(dir || '.', 'wrk');
    if (existsSync(p)) return p;
  }
  return undefined;
}

const luaString = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

/**
 * The same load as `load()` from wrk, a separate C process with one thread, for `duration`
 * seconds: a second opinion on the accept ratio from a load generator that shares nothing with
 * Node (on the reference machine it cost about as much CPU per request as autocannon). Latency is wrk's
 * (from its histogram, microseconds). `loadgenCpuS`: the CPU wrk used (user + system, from the
 * shell's `times`), which the caller adds to the load generator's share: wrk is not this process.
 * wrk counts answers of 400 and above as errors (`non2xx` here) and every other answer as ok.
 */
export function loadWrk(opts: LoadOptions & { duration: number }): Promise<LoadResult & { loadgenCpuS: number }> {
  const wrk = wrkPath();
  if (!wrk) return Promise.reject(new Error('wrk is not on PATH (Debian: apt-get install wrk)'));
  const dir = mkdtempSync(join(tmpdir(), 'herald-wrk-'));
  const script = join(dir, 'post.lua');
  const headers = { 'content-type': 'application/json', ...opts.headers };
  const lua = [
    'wrk.method = "POST"',
    `wrk.body = ${luaString(opts.body)}`,
    ...Object.entries(headers).map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`),
    'done = function(s, latency, requests)',
    '  io.stderr:write(string.format(\'WRK {"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%f}\\n\',',
    '    s.requests, s.duration, s.errors.connect, s.errors.read, s.errors.write, s.errors.status, s.errors.timeout,',
    '    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))',
    'end',
  ].join('\n');
  writeFileSync(script, lua);
  const args = ['-t1', `-c${opts.connections}`, `-d${opts.duration}s`, '--timeout', '30s', '-s', script, opts.url];
  // `times` prints the shell's CPU, then its children's: wrk's.
  const child = spawn('sh', ['-c', '"$@" >/dev/null; s=$?; times >&2; exit $s', 'sh', wrk, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      rmSync(dir, { recursive: true, force: true });
      const m = /^WRK (.*)$/m.exec(err);
      const times = [...err.matchAll(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/g)].at(-1);
      if (code !== 0 || !m || !times) return reject(new Error(`wrk failed (exit ${code}): ${err.slice(0, 500)}`));
      const r = JSON.parse(m[1]!) as Record<string, number>;
      const durationS = r.durationUs! / 1e6;
      const errors = r.connect! + r.read! + r.write!;
      const ok = r.requests! - r.status!;
      const ms = (us: number) => round(us / 1000, 2);
      resolve({
        connections: opts.connections,
        durationS: round(durationS, 3),
        ok,
        non2xx: r.status!,
        errors,
        timeouts: r.timeout!,
        statusCodes: {},
        rps: round(ok / durationS, 1),
        latencyMs: { p50: ms(r.p50!), p90: ms(r.p90!), p99: ms(r.p99!), p999: ms(r.p999!), max: ms(r.max!), mean: ms(r.mean!) },
        loadgenCpuS: Number(times[1]) * 60 + Number(times[2]) + Number(times[3]) * 60 + Number(times[4]),
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers for set-up and polling

export async function http<T = unknown>(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(url, {
    method,
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text) as T };
}

// ---------------------------------------------------------------------------------------------
// Machine information

const FS_TYPES: Record<number, string> = { 0xef53: 'ext4', 0x01021994: 'tmpfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x794c7630: 'overlayfs', 0x2fc12fc1: 'zfs' };

export function machineInfo(dataRoot: string) {
  let sqlite = 'unknown';
  try {
    const Database = createRequire(import.meta.url)('better-sqlite3') as new (p: string) => { prepare(s: string): { get(): { v: string } }; close(): void };
    const db = new Database(':memory:');
    sqlite = db.prepare('SELECT sqlite_version() AS v').get().v;
    db.close();
  } catch {
    // leave unknown
  }
  let nodeVersion = process.version;
  try {
    nodeVersion = execFileSync(NODE, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // keep ours
  }
  let commit = 'unknown';
  let uncommittedChanges: boolean | undefined;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    // Changes to what the servers run (src/, package files) that the commit does not contain.
    uncommittedChanges = execFileSync('git', ['status', '--porcelain', '--', 'src', 'package.json', 'package-lock.json'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
  } catch {
    // not a checkout
  }
  let fsType = 'unknown';
  try {
    const t = statfsSync(dataRoot).type;
    fsType = FS_TYPES[t] ?? `0x${t.toString(16)}`;
  } catch {
    // unknown
  }
  const c = cpus();
  return {
    cpuModel: c[0]?.model ?? 'unknown',
    cores: c.length,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    platform: `${process.platform} ${release()}`,
    node: nodeVersion,
    sqlite,
    dataDirFs: fsType,
    loadavgAtStart: loadavg().map((x) => round(x, 2)),
    commit,
    uncommittedChanges,
  };
}

/** Latency of a 4 KiB write + fdatasync in `dir`: what one durable commit costs at least. */
export function fsyncProbe(dir: string, n = 100): { medianMs: number; p99Ms: number; samples: number } {
  const probeDir = mkdtempSync(join(dir, 'fsync-probe-'));
  const fd = openSync(join(probeDir, 'probe'), 'w');
  const block = Buffer.alloc(4096, 1);
  const t: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = performance.now();
      writeSync(fd, block, 0, block.length, (i % 64) * 4096);
      fdatasyncSync(fd);
      t.push(performance.now() - s);
    }
  } finally {
    closeSync(fd);
    rmSync(probeDir, { recursive: true, force: true });
  }
  const sorted = Float64Array.from(t).sort();
  return { medianMs: round(quantile(sorted, 0.5), 3), p99Ms: round(quantile(sorted, 0.99), 3), samples: n };
}

// ---------------------------------------------------------------------------------------------
// Statistics

export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
