// Test harness: a real Herald on an ephemeral port with a temporary data dir, and a tiny HTTP client.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createHerald, type Herald } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { describe } from 'node:test';
import { freshSchema, type TestSchema } from './postgres.ts';
import { ensureRedis, TEST_REDIS_URL } from './redis.ts';

export interface TestHerald {
  url: string;
  /** The admin key (HERALD_ADMIN_KEY). */
  key: string;
  dataDir: string;
  herald: Herald;
  /** The store it runs on. */
  store: Store;
  /** The variables it was started with on top of TEST_ENV (a second node of its cluster reuses them). */
  env: Record<string, string>;
  api<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse<T>>;
  /** Stops the server; removes the data dir unless keepData. */
  stop(opts?: { keepData?: boolean }): Promise<void>;
  /** Stops the server and starts it again on the same data (data dir or PostgreSQL schema) and env. */
  restart(env?: Record<string, string>): Promise<TestHerald>;
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** Settings tests start from: quiet, fast polling, a compressed retry schedule, loopback allowed. */
export const TEST_ENV: Record<string, string> = {
  HOST: '127.0.0.1',
  PORT: '0',
  HERALD_LOG_LEVEL: process.env.HERALD_TEST_LOG ?? 'silent',
  HERALD_ALLOW_NETWORKS: '127.0.0.0/8,::1/128',
  HERALD_CHAT_ANY_HOST: 'true',
  HERALD_POLL_INTERVAL: '50ms',
  HERALD_RETRY_SCHEDULE: '100ms,200ms,300ms',
  HERALD_SHUTDOWN_GRACE: '2s',
  HERALD_SECRET_KEY: 'test-secret-key-test-secret-key-0123456789',
};

export function tempDir(prefix = 'herald-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startHerald(env: Record<string, string> = {}, opts: { dataDir?: string } = {}): Promise<TestHerald> {
  const dataDir = opts.dataDir ?? tempDir();
  const key = env.HERALD_ADMIN_KEY ?? `hk_test_${randomBytes(12).toString('hex')}`;
  const config = loadConfig({}, { ...TEST_ENV, HERALD_DATA_DIR: dataDir, HERALD_ADMIN_KEY: key, ...env });
  const herald = await createHerald(config);
  const url = await herald.start();
  return {
    url,
    key,
    dataDir,
    herald,
    store: env.DATABASE_URL ? 'postgres' : 'sqlite',
    env: { ...env, HERALD_ADMIN_KEY: key },
    api: (method, path, body, headers) => request(url, key, method, path, body, headers),
    async stop(o = {}) {
      await herald.stop();
      if (!o.keepData) rmSync(dataDir, { recursive: true, force: true });
    },
    async restart(more = {}) {
      await herald.stop();
      return startHerald({ ...env, HERALD_ADMIN_KEY: key, ...more }, { dataDir });
    },
  };
}

/** `h` whose stop() also drops `db` (and so does the stop() of what its restart() returns). */
function dropping(h: TestHerald, db: TestSchema): TestHerald {
  return {
    ...h,
    async stop(o = {}) {
      try {
        await h.stop(o);
      } finally {
        await db.drop();
      }
    },
    async restart(more = {}) {
      return dropping(await h.restart(more), db);
    },
  };
}

/** The stores every HTTP feature suite runs on. `postgres` means PostgreSQL + Redis. */
export const STORES = ['sqlite', 'postgres'] as const;
export type Store = (typeof STORES)[number];

/** How a store shows in test names. */
export function storeName(store: Store): string {
  return store === 'postgres' ? 'postgres+redis' : 'sqlite';
}

/**
 * Declares the suite `fn` once per store, named `<name> (sqlite)` and `<name> (postgres+redis)`.
 * `fn` starts Herald with startHeraldOn(store, …). `only` narrows the stores (a suite that says why).
 */
export function describeOnStores(name: string, fn: (store: Store) => void, opts: { only?: readonly Store[] } = {}): void {
  for (const store of opts.only ?? STORES) describe(`${name} (${storeName(store)})`, () => fn(store));
}

/** Environment that puts a node on PostgreSQL (a fresh schema) + Redis (a key prefix of its own). */
export async function postgresRedisEnv(): Promise<{ env: Record<string, string>; db: TestSchema }> {
  // Fails loudly if Redis does not answer: Herald itself would start without it and the suite would
  // silently test a single node's in-process bus.
  await ensureRedis();
  const db = await freshSchema();
  return { db, env: { DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, HERALD_REDIS_PREFIX: `herald-t-${randomBytes(6).toString('hex')}:` } };
}

/**
 * startHerald on `store`: SQLite in its temporary data dir, or PostgreSQL on a fresh schema of its
 * own (dropped by stop()) with the bus and rate limits on the test Redis under a prefix of its own,
 * so parallel test files do not hear each other.
 *
 * `join`: start another node of `join`'s deployment (same database, Redis prefix and admin key;
 * PostgreSQL only). Its stop() leaves the schema to the first node.
 */
export async function startHeraldOn(store: Store, env: Record<string, string> = {}, opts: { join?: TestHerald; dataDir?: string } = {}): Promise<TestHerald> {
  if (opts.join) {
    if (opts.join.store !== 'postgres') throw new Error('only nodes on PostgreSQL share a database');
    const { DATABASE_URL, REDIS_URL, HERALD_REDIS_PREFIX, HERALD_ADMIN_KEY } = opts.join.env;
    return startHerald({ DATABASE_URL: DATABASE_URL!, REDIS_URL: REDIS_URL!, HERALD_REDIS_PREFIX: HERALD_REDIS_PREFIX!, HERALD_ADMIN_KEY: HERALD_ADMIN_KEY!, ...env }, opts);
  }
  if (store === 'sqlite') return startHerald(env, opts);
  const pr = await postgresRedisEnv();
  try {
    return dropping(await startHerald({ ...pr.env, ...env }, opts), pr.db);
  } catch (err) {
    await pr.db.drop();
    throw err;
  }
}

export async function request<T = any>(
  base: string,
  key: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiResponse<T>> {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(key && { authorization: `Bearer ${key}` }),
      ...(body !== undefined && typeof body !== 'string' && { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(fn: () => Promise<T | undefined | false | null> | T | undefined | false | null, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
