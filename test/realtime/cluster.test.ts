// Real time across nodes (PostgreSQL + Redis only: two processes cannot share a SQLite file, and
// without Redis there is nothing across nodes to prove). A publication on one node reaches a
// client of another; an inbox item delivered by whichever node's worker reaches a session on
// the other; a node SIGKILLed mid-stream, its client reconnects to the surviving node and
// recovers every publication it missed.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, request, startHeraldOn, tempDir, waitFor, type TestHerald } from '../helpers/herald.ts';
import { sse, type SseClient } from './sse-client.ts';
import { spawnHerald, type HeraldProcess } from '../helpers/process.ts';
import { connect, type RtClient } from './ws-client.ts';

describeOnStores(
  'real time across two nodes',
  (store) => {
    let a: TestHerald;
    let b: HeraldProcess;
    const clients: RtClient[] = [];
    const streams: SseClient[] = [];
    const open = async (url: string, token: string) => {
      const c = await connect(url, token);
      clients.push(c);
      await c.next((f) => f.type === 'welcome');
      return c;
    };
    const mint = async (recipient: string, rooms?: string[]) => {
      const r = await a.api('POST', '/v1/realtime/tokens', { recipient, ...(rooms && { rooms }) });
      assert.equal(r.status, 201, r.text);
      return r.body.token as string;
    };

    before(async () => {
      a = await startHeraldOn(store);
      const { DATABASE_URL, REDIS_URL, HERALD_REDIS_PREFIX } = a.env;
      b = await spawnHerald({ dataDir: tempDir(), key: a.key, env: { DATABASE_URL: DATABASE_URL!, REDIS_URL: REDIS_URL!, HERALD_REDIS_PREFIX: HERALD_REDIS_PREFIX!, HERALD_LOG_LEVEL: 'warn' } });
      assert.equal((await a.api('PUT', '/v1/recipients/alice', { name: 'Alice' })).status, 201);
    });
    after(async () => {
      for (const c of clients) c.ws.terminate();
      for (const s of streams) s.destroy();
      if (b.child.exitCode === null) b.kill('SIGKILL');
      await a?.stop();
    });

    it("a publication on one node reaches the other node's client; an inbox item reaches a session on either", async () => {
      const token = await mint('alice', ['lobby']);
      const onB = await open(b.url, token);
      onB.send({ type: 'subscribe', channel: 'room:lobby' });
      onB.send({ type: 'subscribe', channel: 'inbox' });
      await onB.next((f) => f.type === 'subscribed' && f.channel === 'inbox');
      const pub = await a.api('POST', '/v1/realtime/publish', { channel: 'room:lobby', data: { from: 'a' } });
      assert.equal(pub.status, 200, pub.text);
      const got = await onB.next((f) => f.type === 'publication', 15_000, 'publication on node B');
      assert.deepEqual(got.data, { from: 'a' });
      assert.equal(got.offset, pub.body.offset);

      const onA = await open(a.url, token);
      onA.send({ type: 'subscribe', channel: 'inbox' });
      await onA.next((f) => f.type === 'subscribed');
      const sent = await b.api('POST', '/v1/notifications', { to: 'alice', title: 'across', channels: ['inbox'] });
      assert.equal(sent.status, 202, sent.text);
      for (const c of [onA, onB]) await c.next((f) => f.type === 'inbox.item' && f.item.title === 'across', 20_000, 'inbox item on both nodes');
    });

    it("an SSE session on one node takes client frames POSTed to the other", async () => {
      const token = await mint('alice', ['lobby']);
      const s = await sse(b.url, token);
      streams.push(s);
      const session = await s.session();
      const r = await request(a.url, token, 'POST', '/v1/realtime/send', { session, frame: { type: 'subscribe', channel: 'room:lobby' } });
      assert.equal(r.status, 202, r.text);
      await s.next((f) => f.type === 'subscribed' && f.channel === 'room:lobby', 15_000, 'subscribed through the other node');
      const pub = await a.api('POST', '/v1/realtime/publish', { channel: 'room:lobby', data: { sse: true } });
      assert.equal(pub.status, 200, pub.text);
      await s.next((f) => f.type === 'publication' && f.data.sse === true, 15_000, 'publication on the SSE stream');
      // Another recipient's token is not taken for this session, whichever node the request reaches.
      const other = await request(a.url, await mint('mallory'), 'POST', '/v1/realtime/send', { session, frame: { type: 'ping' } });
      assert.equal(other.status, 202, other.text);
      const own = await request(a.url, token, 'POST', '/v1/realtime/send', { session, frame: { type: 'ping' } });
      assert.equal(own.status, 202, own.text);
      await s.next((f) => f.type === 'pong', 15_000, 'pong');
      // Both went over the bus from node A in this order: had mallory's been taken, its pong came first.
      assert.equal(s.frames.filter((f) => f.type === 'pong').length, 1, "mallory's ping was dropped");
      s.destroy();
    });

    it('a node SIGKILLed: its client reconnects to the other node and recovers every missed publication', async () => {
      const token = await mint('alice', ['feed']);
      const c = await open(b.url, token);
      c.send({ type: 'subscribe', channel: 'room:feed' });
      const sub = await c.next((f) => f.type === 'subscribed');
      for (let i = 1; i <= 3; i++) assert.equal((await a.api('POST', '/v1/realtime/publish', { channel: 'room:feed', data: { i } })).status, 200);
      await waitFor(() => c.frames.filter((f) => f.type === 'publication').length === 3, 15_000, 'three publications before the kill');
      const last = c.frames.filter((f) => f.type === 'publication').at(-1)!;

      b.kill('SIGKILL');
      await c.closed;
      for (let i = 4; i <= 8; i++) assert.equal((await a.api('POST', '/v1/realtime/publish', { channel: 'room:feed', data: { i } })).status, 200);

      const again = await open(a.url, token);
      again.send({ type: 'subscribe', channel: 'room:feed', since: { offset: last.offset, epoch: last.epoch } });
      const rec = await again.next((f) => f.type === 'subscribed');
      assert.equal(rec.recovered, true);
      assert.equal(rec.epoch, sub.epoch);
      await waitFor(() => again.frames.filter((f) => f.type === 'publication').length === 5, 15_000, 'five recovered publications');
      assert.deepEqual(again.frames.filter((f) => f.type === 'publication').map((f) => f.data.i), [4, 5, 6, 7, 8]);
    });
  },
  { only: ['postgres'] },
);
