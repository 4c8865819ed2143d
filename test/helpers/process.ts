// Herald as a real child process: `node_modules/.bin/node <runtime flags> src/cli/main.ts serve` with a given
// environment, for tests that kill it (SIGKILL, SIGTERM) and start it again on the same data dir.

import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { request, TEST_ENV, type ApiResponse } from './herald.ts';
import { NODE_FLAGS, RUNTIME_ENV } from '../../bin/runtime.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));

export interface HeraldProcess {
  url: string;
  port: number;
  key: string;
  dataDir: string;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Its JSON log lines so far (lines that are not JSON are skipped). */
  logs(): Record<string, unknown>[];
  api<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse<T>>;
  kill(signal: NodeJS.Signals): void;
  /** Resolves when the process has exited (at once if it already has); rejects after timeoutMs. */
  exited(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * A deadline, not an expectation: a start takes about a second on a quiet machine, but a 2-core
 * machine running other suites beside this one has been seen to need more than 30 s.
 */
const READY_TIMEOUT_MS = 120_000;

export interface SpawnOptions {
  dataDir: string;
  /** HERALD_ADMIN_KEY; generated when omitted (pass the same one to a restart); null: unset (a first run then prints its own key). */
  key?: string | null;
  /** Variables on top of TEST_ENV (the in-process harness's settings). */
  env?: Record<string, string>;
  /** Arguments after `serve`, e.g. ['--role', 'api']. */
  args?: string[];
  /** How long to wait for /healthz/ready (default READY_TIMEOUT_MS). */
  readyTimeoutMs?: number;
}

/** A TCP port that was free a moment ago (PORT=0 would not tell us which one the child took). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Starts `herald serve` and resolves once /healthz/ready answers 200. */
export async function spawnHerald(opts: SpawnOptions): Promise<HeraldProcess> {
  // The port can be taken between freePort() and the child's listen: try again with another.
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnOnce(opts, await freePort());
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE/.test(String((err as Error).message))) throw err;
    }
  }
}

async function spawnOnce(opts: SpawnOptions, port: number): Promise<HeraldProcess> {
  const key = opts.key === null ? '' : (opts.key ?? `hk_test_${randomBytes(12).toString('hex')}`);
  // Nothing Herald reads is inherited from the test runner's environment.
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('HERALD_') && !['PORT', 'HOST', 'DATABASE_URL', 'NODE_OPTIONS', 'NODE_TEST_CONTEXT'].includes(k)),
  );
  const env = { ...inherited, ...TEST_ENV, HERALD_LOG_LEVEL: 'info', ...opts.env, PORT: String(port), HOST: '127.0.0.1', HERALD_DATA_DIR: opts.dataDir, HERALD_ADMIN_KEY: key };
  // With the launcher's flags and environment (bin/runtime.js), as users run it.
  const child = spawn(NODE, [...NODE_FLAGS, 'src/cli/main.ts', 'serve', ...(opts.args ?? [])], { cwd: ROOT, env: { ...RUNTIME_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let gone = false;
  void exit.then(() => (gone = true));

  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + (opts.readyTimeoutMs ?? READY_TIMEOUT_MS);
  for (;;) {
    if (gone) throw new Error(`herald exited before it was ready:\n${out}`);
    try {
      const r = await fetch(`${url}/healthz/ready`);
      await r.arrayBuffer();
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`herald was not ready within ${opts.readyTimeoutMs ?? READY_TIMEOUT_MS}ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }

  return {
    url,
    port,
    key,
    dataDir: opts.dataDir,
    child,
    output: () => out,
    logs: () =>
      out.split('\n').flatMap((line) => {
        try {
          const v: unknown = JSON.parse(line);
          return v && typeof v === 'object' ? [v as Record<string, unknown>] : [];
        } catch {
          return [];
        }
      }),
    api: (method, path, body, headers) => request(url, key, method, path, body, headers),
    kill: (signal) => {
      if (!gone) child.kill(signal);
    },
    async exited(timeoutMs = 60_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`herald did not exit within ${timeoutMs}ms:\n${out.slice(-4000)}`)), timeoutMs);
      });
      try {
        return await Promise.race([exit, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
