// Redis for tests: the server must be up (started here if it is down and local; never skipped).
// Tests share it with each other: never stop it or flush it; take it away from one client with a
// TCP proxy instead (tcp-proxy.ts).
//
// HERALD_TEST_REDIS_URL picks the server (default redis://127.0.0.1:6379).

import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';

export const TEST_REDIS_URL = process.env.HERALD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

let ready: Promise<void> | undefined;

/** Resolves once Redis answers PING at TEST_REDIS_URL, starting a local one if needed (30s). */
export function ensureRedis(): Promise<void> {
  ready ??= (async () => {
    const first = await tryPing();
    if (first === undefined) return;
    const u = new URL(TEST_REDIS_URL);
    if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(u.hostname)) {
      throw new Error(`Redis at ${TEST_REDIS_URL} is not reachable (${first.message}); these tests need it`);
    }
    const started = startLocalRedis(Number(u.port || 6379));
    const until = Date.now() + 30_000;
    let last: Error | undefined = first;
    while (Date.now() < until) {
      last = await tryPing();
      if (last === undefined) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`Redis at ${TEST_REDIS_URL} is not reachable (${last?.message}); tried to start it: ${started}`);
  })();
  ready.catch(() => (ready = undefined));
  return ready;
}

/** `redis://host:port` of the test server, for a TCP proxy's target. */
export function redisTarget(): { host: string; port: number } {
  const u = new URL(TEST_REDIS_URL);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 6379) };
}

/** Sends an inline PING; undefined when +PONG comes back within 2s. */
function tryPing(): Promise<Error | undefined> {
  const { host, port } = redisTarget();
  return new Promise((resolve) => {
    const s = connect(port, host);
    const finish = (err: Error | undefined) => {
      clearTimeout(t);
      s.destroy();
      resolve(err);
    };
    const t = setTimeout(() => finish(new Error('no answer to PING within 2s')), 2000);
    let got = '';
    s.on('error', (err) => finish(err));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('\r\n')) finish(got.startsWith('+PONG') ? undefined : new Error(`unexpected reply to PING: ${got.trim()}`));
    });
  });
}

function startLocalRedis(port: number): string {
  const args = ['--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', '/var/lib/redis', '--logfile', '/var/log/redis/ci.log'];
  try {
    mkdirSync('/var/lib/redis', { recursive: true });
    mkdirSync('/var/log/redis', { recursive: true });
    execFileSync('redis-server', args, { stdio: 'pipe', timeout: 30_000 });
    return `redis-server ${args.join(' ')}: ok`;
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer; message: string };
    const output = [e.stderr, e.stdout].map((b) => b?.toString().trim()).filter(Boolean).join(' ');
    return `redis-server ${args.join(' ')}: ${output || e.message}`;
  }
}
