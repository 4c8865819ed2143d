// Helpers of the PostgreSQL phase (bench/pg-phase.ts): benchmark schemas in the test database, a
// copy of a pre-loaded schema, and CPU accounting for the database servers, which are not our
// child processes.
//
// PostgreSQL runs one backend process per connection, and other people's tests may be using the
// same server at the same time. A backend's command line names its client's address and port
// ("postgres: 15/main: postgres test 127.0.0.1(54321) idle"); a child process's TCP sockets, in
// /proc/<pid>/fd and /proc/<pid>/net/tcp, name their local ports. Matching the two tells which
// backends serve our processes. The rest of the server (checkpointer, WAL writer, background
// writer, autovacuum, the postmaster) works for every user; it is counted as ours, because during
// a measurement nearly all writes are ours. Backends of other clients are noise. Redis is one
// process; it is counted as ours during the BullMQ run, and as noise elsewhere. Linux /proc only.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { cpuMeter, processCpuS, round, type Child, type CpuReport } from './lib.ts';

export const BENCH_DATABASE_URL = process.env.HERALD_BENCH_DATABASE_URL ?? process.env.HERALD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const BENCH_REDIS_URL = process.env.HERALD_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A new unique name for a benchmark schema (or key prefix): herald_bench_<random>_<what>. */
export const benchName = (what: string) => `herald_bench_${randomBytes(4).toString('hex')}_${what}`;

/** The database URL with every connection's search_path set to `schema` (Herald's DATABASE_URL). */
export function schemaUrl(schema: string, base = BENCH_DATABASE_URL): string {
  const u = new URL(base);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.href;
}

export async function withDb<T>(fn: (c: pg.Client) => Promise<T>, url = BENCH_DATABASE_URL): Promise<T> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, application_name: 'herald-bench' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function pgVersion(): Promise<{ version: string; settings: Record<string, string> }> {
  return withDb(async (c) => {
    const version = (await c.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]!.v;
    const names = ['max_connections', 'shared_buffers', 'synchronous_commit', 'fsync', 'wal_level', 'max_wal_size', 'checkpoint_timeout', 'random_page_cost', 'autovacuum'];
    const { rows } = await c.query<{ name: string; setting: string; unit: string | null }>('SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)', [names]);
    return { version, settings: Object.fromEntries(rows.map((r) => [r.name, r.unit ? `${r.setting} (${r.unit})` : r.setting])) };
  });
}

/** Drops the schemas (and everything in them) if they exist. */
export async function dropSchemas(schemas: Iterable<string>): Promise<void> {
  const list = [...schemas];
  if (list.length === 0) return;
  await withDb(async (c) => {
    for (const s of list) await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  });
}

/** Benchmark schemas left in the database (by an interrupted run, for instance). */
export async function leftoverSchemas(): Promise<string[]> {
  return withDb(async (c) => (await c.query<{ n: string }>(`SELECT nspname AS n FROM pg_namespace WHERE nspname LIKE 'herald\\_bench\\_%'`)).rows.map((r) => r.n));
}

/**
 * Copies every table's rows from schema `from` into `to`, whose tables must already exist with the
 * same columns (both migrated by Herald), then ANALYZEs them: a fresh, identical copy of a
 * pre-loaded queue for each run, whatever the previous runs did to theirs.
 */
export async function copySchemaData(from: string, to: string): Promise<Record<string, number>> {
  return withDb(async (c) => {
    const { rows } = await c.query<{ t: string }>(
      `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' AND table_name NOT LIKE 'kysely_%' ORDER BY 1`,
      [from],
    );
    // Referenced tables first (foreign keys).
    const fks = (
      await c.query<{ t: string; ref: string }>(
        `SELECT cl.relname AS t, rf.relname AS ref FROM pg_constraint co
           JOIN pg_class cl ON cl.oid = co.conrelid JOIN pg_class rf ON rf.oid = co.confrelid
           JOIN pg_namespace n ON n.oid = cl.relnamespace
          WHERE co.contype = 'f' AND n.nspname = $1`,
        [from],
      )
    ).rows;
    const order: string[] = [];
    const visit = (t: string, path: Set<string>) => {
      if (order.includes(t) || path.has(t)) return;
      path.add(t);
      for (const fk of fks) if (fk.t === t && fk.ref !== t) visit(fk.ref, path);
      order.push(t);
    };
    for (const { t } of rows) visit(t, new Set());
    const copied: Record<string, number> = {};
    await c.query('BEGIN');
    for (const t of [...order].reverse()) await c.query(`DELETE FROM ${to}."${t}"`);
    for (const t of order) copied[t] = (await c.query(`INSERT INTO ${to}."${t}" SELECT * FROM ${from}."${t}"`)).rowCount ?? 0;
    await c.query('COMMIT');
    for (const t of order) await c.query(`ANALYZE ${to}."${t}"`);
    return copied;
  });
}

/** Row counts of Herald's tables in `schema`: what was durably stored. */
export async function heraldCounts(schema: string): Promise<{ notifications: number; deliveries: Record<string, number>; attempts: number; duplicateAttempts: number }> {
  return withDb(async (c) => {
    const n = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.notifications`)).rows[0]!.n);
    const d = (await c.query<{ status: string; n: string }>(`SELECT status, count(*) AS n FROM ${schema}.deliveries GROUP BY status`)).rows;
    const a = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.attempt_log`)).rows[0]!.n);
    const dup = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.deliveries WHERE attempts > 1`)).rows[0]!.n);
    return { notifications: n, deliveries: Object.fromEntries(d.map((r) => [r.status, Number(r.n)])), attempts: a, duplicateAttempts: dup };
  });
}

/** Asks PostgreSQL for a checkpoint, so that none falls due inside the next measurement. */
export async function checkpoint(): Promise<boolean> {
  try {
    await withDb((c) => c.query('CHECKPOINT'));
    return true;
  } catch {
    return false; // needs superuser or pg_checkpoint; only a variance reducer
  }
}

// ---------------------------------------------------------------------------------------------
// CPU of the database servers

interface ServerProc {
  pid: number;
  /** Client port for a backend; undefined for the postmaster and auxiliary processes. */
  clientPort?: number;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '';
  }
}

function pids(): number[] {
  try {
    return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
  } catch {
    return [];
  }
}

function postgresProcs(): ServerProc[] {
  const out: ServerProc[] = [];
  for (const pid of pids()) {
    const cmd = cmdline(pid);
    if (cmd.startsWith('postgres: ')) {
      const m = /\((\d+)\)/.exec(cmd);
      out.push({ pid, clientPort: m ? Number(m[1]) : undefined });
    } else if (/\/postgres(\s|$)/.test(cmd.split(' -')[0] ?? '')) {
      out.push({ pid }); // the postmaster
    }
  }
  return out;
}

function redisPids(): number[] {
  return pids().filter((pid) => cmdline(pid).startsWith('redis-server'));
}

/** Local ports of `pid`'s TCP sockets connected to remote port `remotePort`. */
function localPorts(pid: number, remotePort: number): Set<number> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return new Set();
  }
  const ports = new Set<number>();
  for (const file of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !inodes.has(f[9]!)) continue;
      const local = parseInt(f[1]!.split(':')[1]!, 16);
      const remote = parseInt(f[2]!.split(':')[1]!, 16);
      if (remote === remotePort) ports.add(local);
    }
  }
  return ports;
}

export interface ServerCpu {
  /** PostgreSQL backends serving our processes, cores. */
  postgresBackends: number;
  /** The postmaster and auxiliary processes (WAL writer, checkpointer, autovacuum...), cores. */
  postgresAux: number;
  /** Backends serving other clients (other people's tests): noise, cores. */
  postgresOtherClients: number;
  /** How many backends served our processes. */
  backends: number;
  redis: number;
}

/**
 * Measures, from now until stop(), the CPU of PostgreSQL split into our backends, the shared
 * auxiliary processes and other clients' backends, and of Redis. Our backends are found from the
 * sockets of `children` at the start and again at the stop (pools open connections lazily); a
 * backend first seen at the stop counts from zero, as it started during the measurement.
 */
export function serverCpuMeter(children: Child[], pgPort = Number(new URL(BENCH_DATABASE_URL).port || 5432)): { stop(): ServerCpu } {
  const t0 = performance.now();
  const ours = () => {
    const s = new Set<number>();
    for (const c of children) for (const p of localPorts(c.pid, pgPort)) s.add(p);
    return s;
  };
  const ports0 = ours();
  const cpu0 = new Map<number, number>();
  for (const p of postgresProcs()) cpu0.set(p.pid, processCpuS(p.pid));
  const redis0 = new Map(redisPids().map((pid) => [pid, processCpuS(pid)]));
  return {
    stop() {
      const wallS = (performance.now() - t0) / 1000;
      const portsNow = ours();
      const all = new Set([...ports0, ...portsNow]);
      let backends = 0;
      let mine = 0;
      let aux = 0;
      let others = 0;
      for (const p of postgresProcs()) {
        const used = processCpuS(p.pid) - (cpu0.get(p.pid) ?? 0);
        if (!Number.isFinite(used)) continue;
        if (p.clientPort === undefined) aux += used;
        else if (all.has(p.clientPort)) {
          mine += used;
          backends++;
        } else others += used;
      }
      let redis = 0;
      for (const pid of redisPids()) {
        const used = processCpuS(pid) - (redis0.get(pid) ?? 0);
        if (Number.isFinite(used)) redis += used;
      }
      return {
        postgresBackends: round(mine / wallS, 2),
        postgresAux: round(aux / wallS, 2),
        postgresOtherClients: round(others / wallS, 2),
        backends,
        redis: round(redis / wallS, 2),
      };
    },
  };
}

/**
 * cpuMeter (our processes, machine-wide busy CPU) and serverCpuMeter together. In the report the
 * database servers' CPU spent for us moves out of "other": processes gets `postgres` (our backends
 * + auxiliary processes) and, if `countRedis`, `redis`; otherBusyCores is what is left, i.e. other
 * people's processes including their PostgreSQL backends.
 */
export function fullCpuMeter(children: Child[], opts: { countRedis?: boolean } = {}): { stop(): CpuReport & { servers: ServerCpu } } {
  const servers = serverCpuMeter(children);
  const base = cpuMeter(children);
  return {
    stop() {
      const s = servers.stop();
      const r = base.stop();
      const postgres = round(s.postgresBackends + s.postgresAux, 2);
      const redis = opts.countRedis ? s.redis : 0;
      return {
        ...r,
        otherBusyCores: round(Math.max(0, r.otherBusyCores - postgres - redis), 2),
        processes: { ...r.processes, postgres, ...(opts.countRedis && { redis }) },
        servers: s,
      };
    },
  };
}
