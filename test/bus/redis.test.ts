// The Redis bus, against the machine's Redis (shared with other tests: never stopped here). To
// take Redis away from one client, that client connects through a TCP proxy the test cuts.
//
//   RedisBus:  messages cross between two buses; while cut, publish neither throws nor waits and
//              the bus says it is disconnected; after the restore it reconnects by itself,
//              reports the gap to subscribers, and carries messages again.
//   Herald:    two instances (A, B) on one PostgreSQL schema; B reaches Redis through the proxy.
//              A key revoked on A is refused by B at once (its cache TTL is 30s). With B's Redis
//              cut, B keeps accepting and delivering, and a third node C starts through the cut
//              proxy, serves, and revokes a key; a revocation B missed takes effect when B
//              reconnects; invalidation then works both ways as before.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { RedisBus } from '../../src/bus/redis.ts';
import { request, startHerald, waitFor, type TestHerald } from '../helpers/herald.ts';
import { freshSchema, type TestSchema } from '../helpers/postgres.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { ensureRedis, redisTarget, TEST_REDIS_URL } from '../helpers/redis.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

const quiet = pino({ level: process.env.HERALD_TEST_LOG ?? 'silent' });
/** Well under KeyResolver's 30s TTL: a refusal this fast came from the bus. */
const PROPAGATION_BOUND_MS = 3_000;

function proxiedRedisUrl(proxy: TcpProxy): string {
  const u = new URL(TEST_REDIS_URL);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.href;
}

describe('RedisBus', () => {
  let proxy: TcpProxy;
  const buses: RedisBus[] = [];
  const prefix = `herald-test-${randomBytes(4).toString('hex')}:`;

  before(async () => {
    await ensureRedis();
    proxy = await startTcpProxy(redisTarget());
  });
  after(async () => {
    await Promise.all(buses.map((b) => b.close()));
    await proxy?.close();
  });

  const open = (url: string) => {
    const b = new RedisBus(url, { log: quiet, prefix });
    buses.push(b);
    return b;
  };

  it('carries messages between processes, survives a cut without throwing, and reports the gap after reconnecting', async () => {
    const direct = open(TEST_REDIS_URL);
    const proxied = open(proxiedRedisUrl(proxy));
    const got: string[] = [];
    let gaps = 0;
    proxied.subscribe('t', { onMessage: (m) => got.push(m), onGap: () => gaps++ });
    await waitFor(() => direct.connected && proxied.connected, 5_000, 'both buses connected');
    // The subscription is active once the first gap report (connection) has run.
    await waitFor(() => gaps >= 1, 5_000, 'the subscription to be active');
    const gapsBefore = gaps;

    await direct.publish('t', 'one');
    await waitFor(() => got.includes('one'), 2_000, 'message one');

    await proxy.cut();
    await waitFor(() => !proxied.connected, 5_000, 'the proxied bus to notice the cut');
    const started = Date.now();
    await assert.doesNotReject(proxied.publish('t', 'lost'));
    // At once: not after the bus's 2 s command timeout (a publish tried on the dead connection).
    assert.ok(Date.now() - started < 1_000, 'publish while disconnected returns at once');
    await direct.publish('t', 'missed'); // the proxied subscriber is away: lost for it
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!got.includes('missed'));
    assert.ok(!got.includes('lost'));

    await proxy.restore();
    await waitFor(() => proxied.connected && gaps > gapsBefore, 10_000, 'reconnect and gap report');
    await direct.publish('t', 'two');
    await waitFor(() => got.includes('two'), 2_000, 'message two after the restore');
    await proxied.publish('t', 'three');
    await waitFor(() => got.includes('three'), 2_000, 'its own message after the restore');
  });

  it('delivers only subscribed topics and stops after unsubscribe', async () => {
    const a = open(TEST_REDIS_URL);
    const b = open(TEST_REDIS_URL);
    const got: string[] = [];
    let active = 0;
    const off = b.subscribe('x', { onMessage: (m) => got.push(`x:${m}`), onGap: () => active++ });
    b.subscribe('y', { onMessage: (m) => got.push(`y:${m}`) });
    await waitFor(() => a.connected && active > 0, 5_000, 'connected and subscribed');
    await a.publish('x', '1');
    await a.publish('z', 'never');
    await waitFor(() => got.includes('x:1'), 2_000, 'x:1');
    off();
    await new Promise((r) => setTimeout(r, 100)); // UNSUBSCRIBE on its way
    await a.publish('x', '2');
    await a.publish('y', '3');
    await waitFor(() => got.includes('y:3'), 2_000, 'y:3');
    assert.deepEqual(got, ['x:1', 'y:3']);
  });
});

describe('API key invalidation across Herald nodes over Redis', () => {
  let db: TestSchema;
  let proxy: TcpProxy;
  let rx: Receiver;
  let a: TestHerald;
  let b: TestHerald;
  let c: TestHerald | undefined;

  before(async () => {
    await ensureRedis();
    db = await freshSchema();
    proxy = await startTcpProxy(redisTarget());
    rx = await startReceiver();
    a = await startHerald({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL });
    b = await startHerald({ DATABASE_URL: db.url, REDIS_URL: proxiedRedisUrl(proxy), HERALD_ADMIN_KEY: a.key });
    const put = await a.api('PUT', '/v1/recipients/ops', { name: 'Ops', webhook: { url: `${rx.url}/ops` } });
    assert.equal(put.status, 201);
    await waitFor(() => a.herald.services.bus.connected && b.herald.services.bus.connected, 10_000, 'both nodes on Redis');
  });
  after(async () => {
    await proxy?.restore();
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    await rx?.close();
    await proxy?.close();
    await db?.drop();
  });

  /** A new key with send and read scope, created through node A. */
  const newKey = async (name: string) => {
    const r = await a.api('POST', '/v1/keys', { name, scopes: ['send', 'read'] });
    assert.equal(r.status, 201);
    return r.body as { id: string; key: string };
  };
  /** The status node `h` answers a read with `key`: 200 while it accepts the key, 401 after. */
  const probe = async (h: TestHerald, key: string) => (await request(h.url, key, 'GET', '/v1/recipients/ops')).status;
  const refusedWithin = async (h: TestHerald, key: string, ms: number, what: string) => {
    const from = Date.now();
    await waitFor(async () => (await probe(h, key)) === 401, ms, what);
    return Date.now() - from;
  };

  it('runs both nodes on PostgreSQL and Redis', () => {
    assert.equal(a.herald.services.bus.kind, 'redis');
    assert.equal(b.herald.services.bus.kind, 'redis');
    assert.equal(b.herald.services.store.dialect, 'postgres');
  });

  it('a key revoked on node A is refused by node B at once', async () => {
    const k = await newKey('revoked-on-a');
    assert.equal(await probe(b, k.key), 200); // now cached on B for 30s
    assert.equal((await a.api('DELETE', `/v1/keys/${k.id}`)).status, 204);
    const ms = await refusedWithin(b, k.key, PROPAGATION_BOUND_MS, 'B to refuse the revoked key');
    console.log(`redis bus: node B refused the key ${ms}ms after the revocation on A`);
  });

  it('keeps accepting and delivering while its Redis is cut; a revocation it missed applies when it reconnects', async () => {
    const missed = await newKey('missed-by-b');
    const revokedOnC = await newKey('revoked-on-c');
    assert.equal(await probe(b, missed.key), 200);
    const cachedAt = Date.now();

    await proxy.cut();
    await waitFor(() => !b.herald.services.bus.connected, 5_000, 'B to notice the cut');

    // Sends through B are accepted and delivered without Redis.
    const sent = await b.api('POST', '/v1/notifications', { to: 'ops', title: 'while Redis is cut' });
    assert.equal(sent.status, 202);
    await waitFor(() => rx.received.some((r) => r.headers['webhook-id'] === sent.body.deliveries[0].id), 10_000, 'delivery while Redis is cut');

    // A node starts while its Redis is down, and serves.
    c = await startHerald({ DATABASE_URL: db.url, REDIS_URL: proxiedRedisUrl(proxy), HERALD_ADMIN_KEY: a.key });
    assert.equal(c.herald.services.bus.connected, false);
    assert.equal((await c.api('POST', '/v1/notifications', { to: 'ops', title: 'from a node started without Redis' })).status, 202);

    // Revoking there works (the publish is dropped, not thrown), and that node refuses the key.
    assert.equal(await probe(c, revokedOnC.key), 200);
    assert.equal((await c.api('DELETE', `/v1/keys/${revokedOnC.id}`)).status, 204);
    assert.equal(await probe(c, revokedOnC.key), 401);

    // A revocation on A does not reach B while B is cut off: B's cached entry stands for now.
    assert.equal((await a.api('DELETE', `/v1/keys/${missed.id}`)).status, 204);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await probe(b, missed.key), 200);

    await proxy.restore();
    await waitFor(() => b.herald.services.bus.connected && c!.herald.services.bus.connected, 10_000, 'B and C to reconnect');
    // Reconnecting drops B's cache, so the revocation it missed applies now, not at the TTL.
    await refusedWithin(b, missed.key, PROPAGATION_BOUND_MS, 'B to refuse the key it missed the revocation of');
    assert.ok(Date.now() - cachedAt < 20_000, 'well within the 30s TTL: the refusal came from the reconnect');

    // Invalidation works again in both directions.
    const after1 = await newKey('after-restore-1');
    assert.equal(await probe(b, after1.key), 200);
    assert.equal((await a.api('DELETE', `/v1/keys/${after1.id}`)).status, 204);
    await refusedWithin(b, after1.key, PROPAGATION_BOUND_MS, 'B to refuse a key revoked on A after the restore');
    const after2 = await newKey('after-restore-2');
    assert.equal(await probe(a, after2.key), 200);
    assert.equal((await b.api('DELETE', `/v1/keys/${after2.id}`)).status, 204);
    await refusedWithin(a, after2.key, PROPAGATION_BOUND_MS, 'A to refuse a key revoked on B after the restore');
  });
});
