// PostgreSQL for tests: the server must be up (started here if it is a local cluster that is down;
// never skipped), and each test isolates itself in a schema of its own.
//
// HERALD_TEST_DATABASE_URL picks the database (default postgres://postgres@127.0.0.1:5432/test).

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import pg from 'pg';

export const TEST_DATABASE_URL = process.env.HERALD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestSchema {
  /** TEST_DATABASE_URL with `options=-c search_path=<schema>`: use as DATABASE_URL. */
  url: string;
  /** The database's URL without the search_path. */
  baseUrl: string;
  schema: string;
  /** Drops the schema and everything in it. */
  drop(): Promise<void>;
}

let ready: Promise<void> | undefined;

/**
 * Resolves once PostgreSQL answers at TEST_DATABASE_URL. If it does not and it is a local server,
 * starts the cluster with pg_ctlcluster and waits up to 30s for it. Throws if it still cannot connect.
 */
export function ensurePostgres(): Promise<void> {
  ready ??= (async () => {
    const first = await tryConnect();
    if (first === undefined) return;
    const host = new URL(TEST_DATABASE_URL).hostname;
    if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) {
      throw new Error(`PostgreSQL at ${redact(TEST_DATABASE_URL)} is not reachable (${first.message}); these tests need it`);
    }
    const started = startLocalCluster();
    const until = Date.now() + 30_000;
    let last: Error | undefined = first;
    while (Date.now() < until) {
      last = await tryConnect();
      if (last === undefined) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`PostgreSQL at ${redact(TEST_DATABASE_URL)} is not reachable (${last?.message}); tried to start it: ${started}`);
  })();
  ready.catch(() => (ready = undefined));
  return ready;
}

/** Creates a uniquely named, empty schema in the test database. */
export async function freshSchema(): Promise<TestSchema> {
  await ensurePostgres();
  const schema = `herald_t_${randomBytes(6).toString('hex')}`;
  await withClient((c) => c.query(`CREATE SCHEMA ${schema}`));
  const url = new URL(TEST_DATABASE_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.href,
    baseUrl: TEST_DATABASE_URL,
    schema,
    drop: () => withClient((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)).then(() => undefined),
  };
}

/** Runs `fn` with a connection to the test database (no search_path set). */
export async function withClient<T>(fn: (c: pg.Client) => Promise<T>, url = TEST_DATABASE_URL): Promise<T> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function tryConnect(): Promise<Error | undefined> {
  try {
    await withClient((c) => c.query('SELECT 1'));
    return undefined;
  } catch (err) {
    return err as Error;
  }
}

/** Starts every local Debian cluster named `main`; returns what was run and how it went. */
function startLocalCluster(): string {
  if (!existsSync('/etc/postgresql')) return 'no /etc/postgresql: no local cluster to start';
  const results: string[] = [];
  for (const version of readdirSync('/etc/postgresql')) {
    const cmd = ['--skip-systemctl-redirect', version, 'main', 'start'];
    try {
      execFileSync('pg_ctlcluster', cmd, { stdio: 'pipe', timeout: 30_000 });
      results.push(`pg_ctlcluster ${cmd.join(' ')}: ok`);
    } catch (err) {
      const e = err as { stdout?: Buffer; stderr?: Buffer; message: string };
      const output = [e.stderr, e.stdout].map((b) => b?.toString().trim()).filter(Boolean).join(' ');
      results.push(`pg_ctlcluster ${cmd.join(' ')}: ${output || e.message}`);
    }
  }
  return results.join('; ') || 'no cluster in /etc/postgresql';
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '****';
  return u.href;
}
