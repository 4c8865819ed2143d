import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lookup } from 'node:dns/promises';
import { parseCidrList } from '../../src/net/address-policy.ts';
import { BlockedDestinationError, isBlockedDestination, SafeHttp } from '../../src/net/safe-http.ts';

/** A local HTTP server that counts connections and requests and answers per path. */
async function startServer() {
  const seen = { connections: 0, requests: [] as { method: string; url: string; body: string }[] };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.requests.push({ method: req.method!, url: req.url!, body: Buffer.concat(chunks).toString() });
      if (req.url === '/redirect') {
        res.writeHead(302, { location: '/target' });
        res.end('moved');
      } else if (req.url === '/slow') {
        const t = setTimeout(() => res.end('late'), 5_000);
        res.on('close', () => clearTimeout(t));
      } else if (req.url === '/big') {
        res.writeHead(200);
        res.end('x'.repeat(1_000_000));
      } else {
        res.writeHead(201, { 'x-answer': '42' });
        res.end(`hello ${req.url}`);
      }
    });
  });
  server.on('connection', () => seen.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    seen,
    port,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

describe('SafeHttp', () => {
  let srv: Awaited<ReturnType<typeof startServer>>;
  let localhostResolvesToLoopback = false;
  before(async () => {
    srv = await startServer();
    const addrs = await lookup('localhost', { all: true });
    localhostResolvesToLoopback = addrs.some((a) => a.address === '127.0.0.1');
  });
  after(() => srv.close());

  async function rejectsAsBlocked(p: Promise<unknown>) {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(isBlockedDestination(err), `expected a BlockedDestinationError, got ${String(err)} (cause: ${String((err as { cause?: unknown }).cause)})`);
      return true;
    });
  }

  it('with an empty allow list, refuses a literal loopback IP before any request reaches the server', async () => {
    const http = new SafeHttp({ allow: parseCidrList(''), timeoutMs: 2_000 });
    try {
      const before = { ...srv.seen, requests: srv.seen.requests.length };
      await rejectsAsBlocked(http.post(`http://127.0.0.1:${srv.port}/literal`, { 'content-type': 'text/plain' }, 'secret'));
      await rejectsAsBlocked(http.post(`http://[::ffff:127.0.0.1]:${srv.port}/mapped`, {}, 'secret'));
      await rejectsAsBlocked(http.post(`http://2130706433:${srv.port}/decimal`, {}, 'secret')); // WHATWG URL: 127.0.0.1
      assert.equal(srv.seen.requests.length, before.requests, 'no request reached the server');
      assert.equal(srv.seen.connections, before.connections, 'no connection reached the server');
    } finally {
      await http.close();
    }
  });

  it('with an empty allow list, refuses a host name that resolves to loopback (checked after DNS) before any request', async (t) => {
    if (!localhostResolvesToLoopback) return t.skip('localhost does not resolve to 127.0.0.1 here');
    const http = new SafeHttp({ allow: parseCidrList(''), timeoutMs: 2_000 });
    try {
      const before = { requests: srv.seen.requests.length, connections: srv.seen.connections };
      await rejectsAsBlocked(http.post(`http://localhost:${srv.port}/by-name`, { 'content-type': 'text/plain' }, 'secret'));
      assert.equal(srv.seen.requests.length, before.requests, 'no request reached the server');
      assert.equal(srv.seen.connections, before.connections, 'no connection reached the server');
    } finally {
      await http.close();
    }
  });

  it('refuses only what the policy refuses: an allow list that does not cover loopback still blocks', async () => {
    const http = new SafeHttp({ allow: parseCidrList('10.0.0.0/8,fd00::/8'), timeoutMs: 2_000 });
    try {
      const n = srv.seen.requests.length;
      await rejectsAsBlocked(http.post(`http://127.0.0.1:${srv.port}/x`, {}, ''));
      assert.equal(srv.seen.requests.length, n);
    } finally {
      await http.close();
    }
  });

  it('with 127.0.0.0/8 allowed, posts and returns status, headers and a body excerpt', async () => {
    const http = new SafeHttp({ allow: parseCidrList('127.0.0.0/8'), timeoutMs: 2_000, excerptBytes: 8 });
    try {
      const res = await http.post(`http://127.0.0.1:${srv.port}/ok`, { 'content-type': 'text/plain' }, 'payload');
      assert.equal(res.status, 201);
      assert.equal(res.headers['x-answer'], '42');
      assert.equal(res.excerpt, 'hello /o'); // first 8 bytes
      const last = srv.seen.requests.at(-1)!;
      assert.deepEqual(last, { method: 'POST', url: '/ok', body: 'payload' });
      if (localhostResolvesToLoopback) {
        const byName = await http.post(`http://localhost:${srv.port}/named`, {}, 'x');
        assert.equal(byName.status, 201);
        assert.equal(srv.seen.requests.at(-1)!.url, '/named');
      }
      const big = await http.post(`http://127.0.0.1:${srv.port}/big`, {}, '');
      assert.equal(big.status, 200);
      assert.equal(big.excerpt, 'xxxxxxxx');
    } finally {
      await http.close();
    }
  });

  it('does not follow redirects: a 302 is returned as a 302', async () => {
    const http = new SafeHttp({ allow: parseCidrList('127.0.0.0/8'), timeoutMs: 2_000 });
    try {
      const n = srv.seen.requests.length;
      const res = await http.post(`http://127.0.0.1:${srv.port}/redirect`, {}, 'x');
      assert.equal(res.status, 302);
      assert.equal(res.headers.location, '/target');
      assert.equal(srv.seen.requests.length, n + 1, 'exactly one request');
      assert.ok(!srv.seen.requests.some((r) => r.url === '/target'), 'the redirect target was never requested');
    } finally {
      await http.close();
    }
  });

  it('a slow server hits the timeout', async () => {
    const http = new SafeHttp({ allow: parseCidrList('127.0.0.0/8'), timeoutMs: 300 });
    try {
      await assert.rejects(http.post(`http://127.0.0.1:${srv.port}/slow`, {}, 'x'), (e: unknown) => {
        assert.ok(!isBlockedDestination(e));
        const err = e as Error & { code?: string };
        assert.ok(err.name === 'TimeoutError' || /TIMEOUT/.test(err.code ?? ''), `a timeout, got ${err.name} ${err.code} ${err.message}`);
        return true;
      });
      assert.ok(srv.seen.requests.some((r) => r.url === '/slow'), 'the request did reach the server');
    } finally {
      await http.close();
    }
  });

  it('a caller abort ends the request', async () => {
    const http = new SafeHttp({ allow: parseCidrList('127.0.0.0/8'), timeoutMs: 10_000 });
    try {
      const ac = new AbortController();
      const p = http.post(`http://127.0.0.1:${srv.port}/slow`, {}, 'x', ac.signal);
      setTimeout(() => ac.abort(), 50);
      await assert.rejects(p, (err: Error) => err.name === 'AbortError');
    } finally {
      await http.close();
    }
  });

  it('isBlockedDestination finds the error however deeply it is wrapped', () => {
    const b = new BlockedDestinationError('no');
    assert.ok(isBlockedDestination(b));
    assert.ok(isBlockedDestination(new Error('outer', { cause: new Error('mid', { cause: b }) })));
    assert.ok(!isBlockedDestination(new Error('other')));
    assert.ok(!isBlockedDestination(undefined));
  });
});
