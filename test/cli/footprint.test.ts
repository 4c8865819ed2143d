// The default single process (SQLite, every role, no Redis, no SMTP, started by the launcher as
// `npm start` does) loads no package its configuration does not use, and runs with the runtime
// flags of bin/runtime.js. The modules each thread loaded are recorded by a preload
// (helpers/module-recorder.ts); the positive checks (undici once a webhook is sent, better-sqlite3
// in the writer thread) show that the recording sees what it is asked about.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../bin/runtime.js';
import { freePort } from '../helpers/process.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/herald.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE = join(ROOT, 'node_modules/.bin/node');
const RECORDER = fileURLToPath(new URL('../helpers/module-recorder.ts', import.meta.url));
const KEY = 'hk_footprint_test_0123456789abcdef';

/** Packages a default configuration does not use until something asks for them. */
const UNUSED = ['pg', 'ioredis', 'nodemailer', 'web-push', 'jose', 'undici', 'ws'];

const packageOf = (url: string) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];

describe('footprint of the default process', () => {
  let dir: string;
  let logDir: string;
  let child: ChildProcess;
  let url: string;
  let receiver: Receiver;
  let output = '';

  /** Module URLs loaded so far, per thread (0 = main thread). */
  const modules = (): Map<number, Set<string>> => {
    const out = new Map<number, Set<string>>();
    for (const f of readdirSync(logDir).filter((f) => f.endsWith('.json'))) {
      out.set(Number(/thread-(\d+)/.exec(f)![1]), new Set(JSON.parse(readFileSync(join(logDir, f), 'utf8')) as string[]));
    }
    return out;
  };

  /** Packages loaded so far, per thread (0 = main thread). */
  const packages = (): Map<number, Set<string>> =>
    new Map([...modules()].map(([id, urls]) => [id, new Set([...urls].map(packageOf).filter((p): p is string => p !== undefined))]));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-footprint-'));
    logDir = join(dir, 'modules');
    receiver = await startReceiver();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    mkdirSync(logDir);
    child = spawn(NODE, ['bin/herald.js', 'serve'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        HOST: '127.0.0.1',
        PORT: String(port),
        HERALD_DATA_DIR: join(dir, 'data'),
        HERALD_ADMIN_KEY: KEY,
        HERALD_ALLOW_NETWORKS: '127.0.0.0/8',
        HERALD_POLL_INTERVAL: '50ms',
        NODE_OPTIONS: `--import ${RECORDER}`,
        HERALD_TEST_MODULE_LOG: logDir,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (output += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (output += s));
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`herald exited:\n${output}`);
      const r = await fetch(`${url}/healthz/ready`).catch(() => undefined);
      await r?.arrayBuffer();
      return r?.status === 200;
    }, 60_000, 'herald ready');
    // Every thread has written its list (a moment after its last load).
    await waitFor(() => readdirSync(logDir).length >= 2, 10_000, 'the module lists of both threads');
    await new Promise((r) => setTimeout(r, 500));
  });

  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs with the runtime flags the launcher adds', () => {
    const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
    for (const flag of NODE_FLAGS) assert.ok(argv.includes(flag), `${flag} missing from ${argv.join(' ')}`);
    const env = readFileSync(`/proc/${child.pid}/environ`, 'utf8').split('\0');
    assert.ok(env.some((e) => e.startsWith('NODE_COMPILE_CACHE=')), 'NODE_COMPILE_CACHE is set');
  });

  it('the main thread has not loaded the packages it does not use', () => {
    const main = packages().get(0);
    assert.ok(main, `no module list of the main thread in ${logDir}`);
    for (const p of ['fastify', 'kysely', 'better-sqlite3']) assert.ok(main.has(p), `${p} is loaded (the recording works)`);
    const loaded = UNUSED.filter((p) => main.has(p));
    assert.deepEqual(loaded, [], `loaded although unused: ${loaded.join(', ')}`);
  });

  it("the main thread has not loaded Node's bundled undici (an ESM import of node:http does)", () => {
    const urls = modules().get(0)!;
    assert.ok(urls.has('node:internal/worker'), 'Node internals are recorded (the recording works)');
    assert.ok(!urls.has('node:internal/deps/undici/undici'), 'node:internal/deps/undici/undici is loaded');
  });

  it('the SQLite writer thread loads better-sqlite3 and no query builder', () => {
    const threads = [...packages()].filter(([id]) => id !== 0);
    assert.equal(threads.length, 1, 'one thread besides the main one: the writer');
    const writer = threads[0]![1];
    assert.ok(writer.has('better-sqlite3'));
    assert.ok(!writer.has('kysely'), `the writer loaded: ${[...writer].join(', ')}`);
    for (const p of UNUSED) assert.ok(!writer.has(p), `the writer loaded ${p}`);
  });

  it('loads undici with the first webhook it sends', async () => {
    const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    const put = await fetch(`${url}/v1/recipients/footprint-1`, { method: 'PUT', headers: auth, body: JSON.stringify({ webhook: { url: `${receiver.url}/hook` } }) });
    assert.ok(put.status === 200 || put.status === 201, `PUT recipient: ${put.status} ${await put.text()}`);
    const sent = await fetch(`${url}/v1/notifications`, { method: 'POST', headers: auth, body: JSON.stringify({ to: 'footprint-1', title: 't', body: 'b' }) });
    assert.equal(sent.status, 202, await sent.text());
    await waitFor(() => receiver.received.length >= 1, 20_000, 'the webhook');
    await waitFor(() => packages().get(0)?.has('undici') === true, 5_000, 'undici in the main thread');
  });
});
