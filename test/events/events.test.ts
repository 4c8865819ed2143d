// The events port (src/events): what a node announces, heard in-process, and across two nodes
// sharing PostgreSQL and a real Redis (a delivery settled by node A's worker is heard on node B,
// which runs no workers and so cannot have announced it itself).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createHerald, type Herald } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { Events } from '../../src/events/events.ts';
import { InProcessBus } from '../../src/bus/bus.ts';
import { RedisBus } from '../../src/bus/redis.ts';
import type { HeraldEvent } from '../../src/domain/events.ts';
import { request, startHeraldOn, tempDir, TEST_ENV, waitFor, type TestHerald } from '../helpers/herald.ts';
import { freshSchema, type TestSchema } from '../helpers/postgres.ts';
import { ensureRedis, TEST_REDIS_URL } from '../helpers/redis.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { pino } from 'pino';

const log = pino({ level: 'silent' });

function delivered(events: HeraldEvent[], notification: string, to: string): HeraldEvent | undefined {
  return events.find((e) => e.type === 'delivery.status' && e.notification_id === notification && e.to === to);
}

describe('Events port', () => {
  it('calls listeners synchronously, in order, and survives a throwing listener', () => {
    const events = new Events({ node: 'n1', bus: new InProcessBus(), log });
    const heard: string[] = [];
    events.listen({ onEvent: () => { throw new Error('boom'); } });
    const stop = events.listen({ onEvent: (e) => heard.push(e.type) });
    events.emit([
      { type: 'circuit.opened', at: 1, provider: 'fcm', channel: 'fcm', node: 'n1' },
      { type: 'circuit.closed', at: 2, provider: 'fcm', channel: 'fcm', node: 'n1' },
    ]);
    assert.deepEqual(heard, ['circuit.opened', 'circuit.closed']);
    stop();
    events.emit([{ type: 'circuit.opened', at: 3, provider: 'fcm', channel: 'fcm', node: 'n1' }]);
    assert.equal(heard.length, 2);
    events.close();
  });

  it('wants: an event type is wanted when a listener asks for it (or for all), or a bus carries it', () => {
    const events = new Events({ node: 'n1', bus: new InProcessBus(), log });
    assert.equal(events.wants('notification.accepted'), false, 'nobody listens (an in-process bus carries nothing further)');
    const heard: string[] = [];
    const stop = events.listen({ types: ['circuit.opened'], onEvent: (e) => heard.push(e.type) });
    assert.equal(events.wants('notification.accepted'), false);
    assert.equal(events.wants('circuit.opened'), true);
    events.emit([
      { type: 'circuit.closed', at: 1, provider: 'fcm', channel: 'fcm', node: 'n1' },
      { type: 'circuit.opened', at: 2, provider: 'fcm', channel: 'fcm', node: 'n1' },
    ]);
    assert.deepEqual(heard, ['circuit.opened'], 'a listener hears only the types it asked for');
    stop();
    events.listen({ onEvent: () => undefined });
    assert.equal(events.wants('notification.accepted'), true);
    events.close();
  });

  it('crosses nodes through Redis, and a node does not hear its own events again', async () => {
    await ensureRedis();
    const prefix = `herald-test-${process.pid}-${Date.now()}:`;
    const busA = new RedisBus(TEST_REDIS_URL, { log, prefix });
    const busB = new RedisBus(TEST_REDIS_URL, { log, prefix });
    const a = new Events({ node: 'A', bus: busA, log });
    const b = new Events({ node: 'B', bus: busB, log });
    try {
      const atA: HeraldEvent[] = [];
      const atB: HeraldEvent[] = [];
      a.listen({ onEvent: (e) => atA.push(e) });
      b.listen({ onEvent: (e) => atB.push(e) });
      await waitFor(() => busA.connected && busB.connected, 10_000, 'redis connections');
      // A subscription becomes active asynchronously: emit until B hears, then count exactly.
      await waitFor(() => {
        a.emit([{ type: 'circuit.opened', at: 0, provider: 'fcm', channel: 'fcm', node: 'A' }]);
        return atB.length > 0;
      }, 10_000, 'B subscribed');
      atA.length = 0;
      atB.length = 0;
      a.emit([{ type: 'circuit.opened', at: 1, provider: 'apns', channel: 'apns', node: 'A' }]);
      a.emit([{ type: 'circuit.closed', at: 2, provider: 'apns', channel: 'apns', node: 'A' }]);
      // Warm-up events (at 0) may still be arriving; they are left out.
      const real = (l: HeraldEvent[]) => l.filter((e) => e.at !== 0);
      await waitFor(() => real(atB).length >= 2, 5_000, 'B hears both');
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(real(atB).map((e) => [e.type, e.at]), [['circuit.opened', 1], ['circuit.closed', 2]]);
      assert.deepEqual(real(atA).map((e) => e.at), [1, 2], 'A heard its own events once (locally), not again from Redis');
    } finally {
      a.close();
      b.close();
      await busA.close();
      await busB.close();
    }
  });
});

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`events of a running Herald (${store})`, () => {
    let h: TestHerald;
    let rx: Receiver;
    const heard: HeraldEvent[] = [];

    before(async () => {
      rx = await startReceiver((r) => ({ status: r.path === '/gone' ? 400 : 200 }));
      h = await startHeraldOn(store);
      h.herald.services.events.listen({ onEvent: (e) => heard.push(e) });
      for (const [id, path] of [['ok', '/ok'], ['bad', '/gone']] as const) {
        const r = await h.api('PUT', `/v1/recipients/${id}`, { webhook: { url: rx.url + path } });
        assert.ok(r.status === 200 || r.status === 201, r.text);
      }
    });
    after(async () => {
      await h?.stop();
      await rx?.close();
    });

    it('announces the accept and the outcome of a sent delivery', async () => {
      const sent = await h.api('POST', '/v1/notifications', { to: 'ok', title: 'hello' });
      assert.equal(sent.status, 202, sent.text);
      const id = sent.body.id as string;
      const accepted = heard.find((e) => e.type === 'notification.accepted' && e.notification_id === id);
      assert.ok(accepted && accepted.type === 'notification.accepted', 'notification.accepted is announced before the 202');
      assert.deepEqual(accepted.deliveries.map((d) => [d.recipient_id, d.channel, d.status]), [['ok', 'webhook', 'pending']]);
      const e = await waitFor(() => delivered(heard, id, 'sent'), 10_000, 'delivery.status sent');
      assert.ok(e.type === 'delivery.status');
      assert.equal(e.from, 'sending');
      assert.equal(e.workspace_id, 'ws_default');
      assert.equal(e.delivery_id, sent.body.deliveries[0].id);
      // The store agrees: the event came after the commit.
      const n = await h.api('GET', `/v1/notifications/${id}`);
      assert.equal(n.body.deliveries[0].status, 'sent');
    });

    it('announces an exhausted delivery twice over: its status and delivery.exhausted; a DLQ replay too', async () => {
      const sent = await h.api('POST', '/v1/notifications', { to: 'bad', title: 'refused' });
      assert.equal(sent.status, 202, sent.text);
      const id = sent.body.id as string;
      const dlv = sent.body.deliveries[0].id as string;
      const ex = await waitFor(() => heard.find((e) => e.type === 'delivery.exhausted' && e.delivery_id === dlv), 10_000, 'delivery.exhausted');
      assert.ok(ex.type === 'delivery.exhausted');
      assert.equal(ex.notification_id, id);
      assert.equal(ex.error_class, 'http_400');
      assert.equal(ex.attempts, 1);
      const st = delivered(heard, id, 'exhausted');
      assert.ok(st && st.type === 'delivery.status' && st.from === 'sending' && st.error_class === 'http_400');

      const replay = await h.api('POST', `/v1/dlq/${dlv}/replay`, {});
      assert.equal(replay.status, 200, replay.text);
      const back = heard.find((e) => e.type === 'delivery.status' && e.delivery_id === dlv && e.from === 'exhausted');
      assert.ok(back && back.type === 'delivery.status' && back.to === 'pending' && back.reason === 'replayed');
      await waitFor(() => heard.filter((e) => e.type === 'delivery.exhausted' && e.delivery_id === dlv).length === 2, 10_000, 'exhausted again after the replay');
    });

    it('announces cancellations and the deliveries a recipient deletion skips, with the status each had', async () => {
      const later = new Date(Date.now() + 60_000).toISOString();
      const sent = await h.api('POST', '/v1/notifications', { to: 'ok', title: 'never', send_at: later });
      assert.equal(sent.status, 202, sent.text);
      assert.equal((await h.api('DELETE', `/v1/notifications/${sent.body.id}`)).status, 200);
      const c = heard.find((e) => e.type === 'delivery.status' && e.notification_id === sent.body.id && e.to === 'cancelled');
      assert.ok(c && c.type === 'delivery.status', 'delivery.status cancelled');
      assert.equal(c.from, 'scheduled');
      assert.equal(c.delivery_id, sent.body.deliveries[0].id);

      assert.equal((await h.api('PUT', '/v1/recipients/gone', { webhook: { url: rx.url + '/ok' } })).status, 201);
      const waiting = await h.api('POST', '/v1/notifications', { to: 'gone', title: 'never either', send_at: later });
      assert.equal((await h.api('DELETE', '/v1/recipients/gone')).status, 204);
      const k = heard.find((e) => e.type === 'delivery.status' && e.notification_id === waiting.body.id);
      assert.ok(k && k.type === 'delivery.status', 'delivery.status skipped');
      assert.deepEqual([k.from, k.to, k.reason, k.recipient_id], ['scheduled', 'skipped', 'recipient_deleted', 'gone']);
    });
  });
}

describe('events across two nodes (PostgreSQL + Redis)', () => {
  let db: TestSchema;
  let rx: Receiver;
  const nodes: { herald: Herald; dir: string }[] = [];

  before(async () => {
    await ensureRedis();
    db = await freshSchema();
    rx = await startReceiver();
  });
  after(async () => {
    for (const n of nodes) {
      await n.herald.stop();
      rmSync(n.dir, { recursive: true, force: true });
    }
    await rx?.close();
    await db?.drop();
  });

  it('a status change made by node A is heard on node B', async () => {
    const key = 'hk_test_events_two_nodes_0123456789';
    const start = async (roles: ('api' | 'worker')[]) => {
      const dir = tempDir();
      const config = loadConfig({}, { ...TEST_ENV, HERALD_DATA_DIR: dir, HERALD_ADMIN_KEY: key, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL });
      const herald = await createHerald(config, { roles });
      nodes.push({ herald, dir });
      return { herald, url: await herald.start() };
    };
    const a = await start(['api', 'worker']);
    const b = await start(['api']);
    assert.equal(b.herald.services.pool, undefined, 'B runs no workers');
    const atB: HeraldEvent[] = [];
    b.herald.services.events.listen({ onEvent: (e) => atB.push(e) });
    await waitFor(() => a.herald.services.bus.connected && b.herald.services.bus.connected, 10_000, 'both nodes on Redis');

    const put = await request(b.url, key, 'PUT', '/v1/recipients/r1', { webhook: { url: rx.url + '/two' } });
    assert.ok(put.status === 200 || put.status === 201, put.text);
    // B's subscription is made at start but becomes active asynchronously; a send repeated until B
    // hears one proves the path, and each send's events are then checked whole.
    const id = await waitFor(async () => {
      const sent = await request(b.url, key, 'POST', '/v1/notifications', { to: 'r1', title: 'across' });
      assert.equal(sent.status, 202, sent.text);
      const nid = sent.body.id as string;
      const ok = await waitFor(() => rx.received.some((r) => JSON.parse(r.body).id === nid), 10_000, 'delivered by A');
      await new Promise((r) => setTimeout(r, 300));
      return ok && delivered(atB, nid, 'sent') ? nid : undefined;
    }, 20_000, 'B hears A');
    const e = delivered(atB, id, 'sent');
    assert.ok(e && e.type === 'delivery.status');
    assert.equal(e.from, 'sending');
    assert.equal(e.recipient_id, 'r1');
    // B accepted it and announced that itself: heard once, not echoed back from Redis.
    assert.equal(atB.filter((x) => x.type === 'notification.accepted' && x.notification_id === id).length, 1);
  });
});
