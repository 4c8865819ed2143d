// Runs every test file under test/ with node's test runner, after making sure the services the
// tests talk to answer: PostgreSQL at HERALD_TEST_DATABASE_URL (default 127.0.0.1:5432, database
// test) and Redis at HERALD_TEST_REDIS_URL (default redis://127.0.0.1:6379). A local service that
// does not answer is started with the machine's own command (see below) and waited for; if it still
// does not answer, the run fails here with a message saying which and why. Tests are never skipped
// for a missing service.
//
// Usage: npm run test:run [-- <file or glob> …]
//
// Output: node's spec reporter, whose closing lines (`ℹ tests N`, `ℹ pass N`, `ℹ fail N`, …) CI
// reads. The exit code is node's: non-zero when any test failed or the runner did not finish.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import pg from 'pg';

const PG_URL = process.env.HERALD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = new URL(process.env.HERALD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
const REDIS = { host: REDIS_URL.hostname.replace(/^\[|\]$/g, ''), port: Number(REDIS_URL.port || 6379) };
const LOCAL = ['127.0.0.1', 'localhost', '::1'];
const START_WAIT_MS = 30_000;

/** Undefined when PostgreSQL at PG_URL runs a query, else the error. */
async function pgAnswers(): Promise<Error | undefined> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('SELECT 1');
    return undefined;
  } catch (err) {
    return err as Error;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Undefined when Redis answers PING with +PONG, else the error. */
function redisAnswers(): Promise<Error | undefined> {
  return new Promise((resolve) => {
    let reply = '';
    const done = (err: Error | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(err);
    };
    const socket = connect(REDIS.port, REDIS.host, () => {
      // AUTH first when the URL carries a password (Redis 6 ACL: user and password).
      const user = decodeURIComponent(REDIS_URL.username);
      const pass = decodeURIComponent(REDIS_URL.password);
      if (pass) socket.write(user ? `AUTH ${user} ${pass}\r\n` : `AUTH ${pass}\r\n`);
      socket.write('PING\r\n');
    });
    const timer = setTimeout(() => done(new Error('no answer to PING within 3s')), 3000);
    socket.setEncoding('utf8');
    socket.on('data', (s: string) => {
      reply += s;
      if (REDIS_URL.password && reply.startsWith('+OK\r\n')) reply = reply.slice(5);
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG') ? undefined : new Error(`PING answered ${JSON.stringify(reply.trim())}`));
    });
    socket.on('error', (err) => done(err));
    socket.on('close', () => done(new Error(`connection closed${reply ? ` after ${JSON.stringify(reply)}` : ''}`)));
  });
}

/** Runs a start command; returns a line saying what was run and how it went. */
function run(cmd: string, args: string[]): string {
  const line = [cmd, ...args].join(' ');
  try {
    execFileSync(cmd, args, { stdio: 'pipe', timeout: START_WAIT_MS });
    return `${line}: ok`;
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer; message: string };
    const output = [e.stderr, e.stdout].map((b) => b?.toString().trim()).filter(Boolean).join(' ');
    return `${line}: ${output || e.message}`;
  }
}

// The machine's start commands (/work/.library/env: node-svc), as its services were started.
function startPostgres(): string {
  if (!LOCAL.includes(new URL(PG_URL).hostname.replace(/^\[|\]$/g, ''))) return `${pgWhere} is not local: not starting it`;
  if (!existsSync('/etc/postgresql')) return 'no /etc/postgresql: no local PostgreSQL cluster to start';
  const versions = readdirSync('/etc/postgresql');
  if (versions.length === 0) return 'no cluster in /etc/postgresql';
  return versions.map((v) => run('pg_ctlcluster', ['--skip-systemctl-redirect', v, 'main', 'start'])).join('; ');
}

function startRedis(): string {
  if (!LOCAL.includes(REDIS.host)) return `${REDIS.host} is not local: not starting it`;
  return run('redis-server', [
    '--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', String(REDIS.port), '--save', '', '--appendonly', 'no',
    '--dir', '/var/lib/redis', '--logfile', '/var/log/redis/ci.log',
  ]);
}

async function ensure(name: string, where: string, answers: () => Promise<Error | undefined>, start: () => string): Promise<string | undefined> {
  const first = await answers();
  if (first === undefined) return undefined;
  console.error(`[run-tests] ${name} at ${where} does not answer (${first.message}); starting it`);
  const started = start();
  console.error(`[run-tests]   ${started}`);
  const until = Date.now() + START_WAIT_MS;
  let last: Error | undefined = first;
  while (Date.now() < until) {
    last = await answers();
    if (last === undefined) {
      console.error(`[run-tests] ${name} answers now`);
      return undefined;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return `${name} at ${where} still does not answer ${START_WAIT_MS / 1000}s after starting it (${last?.message}); start command: ${started}`;
}

const CHROMIUM = '/usr/bin/chromium';

/** Undefined once CHROMIUM exists (installing Debian's `chromium` if needed), else why it does not. */
function ensureChromium(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  console.error(`[run-tests] ${CHROMIUM} is missing; installing Debian's chromium (apt-get install -y chromium)`);
  const apt = (args: string[]) =>
    spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', ...args], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 900_000 });
  let r = apt(['install', '-y', '--no-install-recommends', 'chromium']);
  if (r.status !== 0) {
    // A fresh machine's package lists may be empty or old.
    console.error('[run-tests]   not installable with the current package lists; running apt-get update first');
    apt(['update']);
    r = apt(['install', '-y', '--no-install-recommends', 'chromium']);
  }
  if (existsSync(CHROMIUM)) {
    console.error(`[run-tests] ${CHROMIUM} installed`);
    return undefined;
  }
  const output = [r.error?.message, r.stderr, r.stdout].filter(Boolean).join(' ').trim().slice(-2000);
  return `${CHROMIUM} is missing and apt-get install -y chromium failed (exit ${r.status ?? r.signal}): ${output}`;
}

const browser = ensureChromium();
if (browser !== undefined) {
  console.error(`[run-tests] FATAL: ${browser}`);
  console.error('[run-tests] the browser tests need it and are not run without it');
  process.exit(1);
}

const pgWhere = (() => {
  const u = new URL(PG_URL);
  if (u.password) u.password = '****';
  return u.href;
})();
const problems = (
  await Promise.all([
    ensure('PostgreSQL', pgWhere, pgAnswers, startPostgres),
    ensure('Redis', `${REDIS.host}:${REDIS.port}`, redisAnswers, startRedis),
  ])
).filter((p): p is string => p !== undefined);
if (problems.length > 0) {
  for (const p of problems) console.error(`[run-tests] FATAL: ${p}`);
  console.error('[run-tests] the tests need these services and are not run without them');
  process.exit(1);
}

const patterns = process.argv.slice(2);
const args = [
  '--test',
  '--test-concurrency=2',
  '--test-timeout=300000',
  // spec on every stream (not TAP when piped), so the closing `ℹ tests/pass/fail N` lines are printed.
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  ...(patterns.length ? patterns : ['test/**/*.test.ts']),
];
const started = Date.now();
// The test files read the same two variables (test/helpers/postgres.ts, redis.ts).
const r = spawnSync(process.execPath, args, { stdio: 'inherit', env: { ...process.env, HERALD_TEST_DATABASE_URL: PG_URL, HERALD_TEST_REDIS_URL: REDIS_URL.href } });
if (r.error) console.error(`[run-tests] could not run node --test: ${r.error.message}`);
const code = r.status ?? 1;
if (r.signal) console.error(`[run-tests] node --test was killed by ${r.signal}`);
console.error(`[run-tests] node --test exited with ${r.status ?? r.signal} after ${((Date.now() - started) / 1000).toFixed(1)}s`);
process.exit(code);
