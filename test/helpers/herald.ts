// Test harness: a real Herald on an ephemeral port with a temporary data dir, and a tiny HTTP client.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createHerald, type Herald } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { freshSchema } from './postgres.ts';

export interface TestHerald {
  url: string;
  /** The admin key (HERALD_ADMIN_KEY). */
  key: string;
  dataDir: string;
  herald: Herald;
  api<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse<T>>;
  /** Stops the server; removes the data dir unless keepData. */
  stop(opts?: { keepData?: boolean }): Promise<void>;
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
    api: (method, path, body, headers) => request(url, key, method, path, body, headers),
    async stop(o = {}) {
      await herald.stop();
      if (!o.keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * startHerald on `store`: SQLite in its temporary data dir, or PostgreSQL (DATABASE_URL) on a fresh
 * schema of its own, which stop() drops.
 */
export async function startHeraldOn(store: 'sqlite' | 'postgres', env: Record<string, string> = {}): Promise<TestHerald> {
  if (store === 'sqlite') return startHerald(env);
  const db = await freshSchema();
  const h = await startHerald({ ...env, DATABASE_URL: db.url });
  return {
    ...h,
    async stop(o = {}) {
      await h.stop(o);
      await db.drop();
    },
  };
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
