// The SSE form of the real-time gateway over real sockets, on both stores: the same server frames
// as the WebSocket (welcome, subscribed, publication, pong, error), client frames by POST
// /v1/realtime/send, recovery by Last-Event-ID and by ?since= after the stream was cut, token
// refusals as 401 problems, and send refused for a bad frame, an unknown session and another
// recipient's token.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, request, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { connect } from './ws-client.ts';
import { sse, type SseClient } from './sse-client.ts';

describeOnStores('real-time gateway over SSE', (store) => {
  let h: TestHerald;
  const streams: SseClient[] = [];
  const open = async (...args: Parameters<typeof sse>) => {
    const c = await sse(...args);
    streams.push(c);
    return c;
  };
  const mint = async (recipient: string, extra: Record<string, unknown> = {}) => {
    const r = await h.api('POST', '/v1/realtime/tokens', { recipient, ...extra });
    assert.equal(r.status, 201, r.text);
    return r.body.token as string;
  };
  const publish = async (room: string, data: unknown) => {
    const r = await h.api('POST', '/v1/realtime/publish', { channel: `room:${room}`, data });
    assert.equal(r.status, 200, r.text);
    return r.body as { offset: number; epoch: string };
  };

  before(async () => {
    h = await startHeraldOn(store, { HERALD_REALTIME_HEARTBEAT: '500ms' });
  });
  after(async () => {
    for (const s of streams) s.destroy();
    await h?.stop();
  });

  it('streams the same frames as the WebSocket, takes client frames by POST /send, and sends heartbeat comments', async () => {
    const token = await mint('sam', { rooms: ['lobby', 'other'] });
    const s = await open(h.url, token, { channels: ['room:lobby'] });
    assert.equal(s.status, 200);
    const w = await s.next((f) => f.type === 'welcome');
    assert.equal(w.recipient, 'sam');
    const sub = await s.next((f) => f.type === 'subscribed' && f.channel === 'room:lobby');
    assert.equal(sub.recovered, false);
    assert.ok(sub._id, 'subscribed carries an event id');

    // A WebSocket session of the same recipient sees the same publication.
    const ws = await connect(h.url, token);
    await ws.next((f) => f.type === 'welcome');
    ws.send({ type: 'subscribe', channel: 'room:lobby' });
    await ws.next((f) => f.type === 'subscribed');
    const p = await publish('lobby', { n: 1 });
    const viaSse = await s.next((f) => f.type === 'publication' && f.offset === p.offset);
    const viaWs = await ws.next((f) => f.type === 'publication' && f.offset === p.offset);
    const { _id, ...plain } = viaSse;
    assert.deepEqual(plain, viaWs);
    assert.deepEqual(viaWs.data, { n: 1 });
    ws.close();

    const ping = await s.send({ type: 'ping' });
    assert.equal(ping.status, 202, ping.text);
    await s.next((f) => f.type === 'pong');
    assert.equal((await s.send({ type: 'subscribe', channel: 'room:other' })).status, 202);
    await s.next((f) => f.type === 'subscribed' && f.channel === 'room:other');
    assert.equal((await s.send({ type: 'subscribe', channel: 'room:notgranted' })).status, 202);
    const e = await s.next((f) => f.type === 'error' && f.code === 'forbidden');
    assert.match(e.message, /notgranted/);
    await waitFor(() => s.comments >= 2, 10_000, 'heartbeat comments');
    assert.equal(s.isEnded(), false);
  });

  it('refuses bad frames, unknown sessions and other principals at /send with problems', async () => {
    const token = await mint('tess');
    const s = await open(h.url, token, { bearer: true });
    const session = await s.session();
    const bad = await s.send({ type: 'subscribe', channel: 'nope' });
    assert.equal(bad.status, 422, bad.text);
    assert.equal(bad.body.code, 'validation_failed');
    assert.match(bad.body.detail, /channel/);
    const auth = await s.send({ type: 'auth', token });
    assert.equal(auth.status, 422, auth.text);
    // One node knows every session; with Redis another node may hold it, so the frame goes over
    // the bus and is dropped by every node.
    const unknown = await s.send({ type: 'ping' }, { session: 'AAAAAAAAAAAA' });
    assert.equal(unknown.status, store === 'sqlite' ? 404 : 202, unknown.text);
    const other = await s.send({ type: 'ping' }, { token: await mint('ursula') });
    assert.equal(other.status, 403, other.text);
    const none = await request(h.url, undefined, 'POST', '/v1/realtime/send', { session, frame: { type: 'ping' } });
    assert.equal(none.status, 401, none.text);
    assert.equal(s.frames.some((f) => f.type === 'pong'), false, 'no refused frame reached the stream');
  });

  it('refuses bad tokens with 401 problems and bad cursors with 400', async () => {
    const garbage = await open(h.url, 'not.a.jwt');
    assert.equal(garbage.status, 401);
    assert.equal(garbage.problem.code, 'unauthorized');
    assert.equal(garbage.problem.close_code, 4001);
    const none = await open(h.url, undefined);
    assert.equal(none.status, 401);
    const cursor = await open(h.url, await mint('val'), { since: 'eyJub3QiOiJhIGN1cnNvciJ9' });
    assert.equal(cursor.status, 400, JSON.stringify(cursor.problem));
    assert.equal(cursor.problem.code, 'invalid_cursor');
  });

  it('recovers what a cut stream missed, by Last-Event-ID and by ?since=', async () => {
    const token = await mint('will', { rooms: ['feed', 'side'] });
    const s = await open(h.url, token, { channels: ['room:feed', 'room:side'] });
    await s.next((f) => f.type === 'subscribed' && f.channel === 'room:side');
    const first = await publish('feed', { i: 0 });
    await publish('side', { i: 'a' });
    await s.next((f) => f.type === 'publication' && f.channel === 'room:side');
    const cut = s.lastId()!;
    s.destroy();
    await s.ended;
    const missedFeed = [await publish('feed', { i: 1 }), await publish('feed', { i: 2 })];
    const missedSide = await publish('side', { i: 'b' });

    for (const how of ['last-event-id', 'since'] as const) {
      const r = await open(h.url, token, how === 'since' ? { since: cut } : { lastEventId: cut });
      const feed = await r.next((f) => f.type === 'subscribed' && f.channel === 'room:feed');
      assert.equal(feed.recovered, true, how);
      assert.equal(feed.offset, missedFeed[1]!.offset);
      const side = await r.next((f) => f.type === 'subscribed' && f.channel === 'room:side');
      assert.equal(side.recovered, true, how);
      await r.next((f) => f.type === 'publication' && f.channel === 'room:side' && f.offset === missedSide.offset);
      const got = await waitFor(() => {
        const pubs = r.frames.filter((f) => f.type === 'publication' && f.channel === 'room:feed');
        return pubs.length >= 2 && pubs;
      });
      assert.deepEqual(got.map((f) => f.offset), missedFeed.map((m) => m.offset), how);
      assert.deepEqual(got.map((f) => f.data), [{ i: 1 }, { i: 2 }]);
      assert.ok(got.every((f) => f.offset > first.offset));
      r.destroy();
    }
  });

  it('ends the stream with a close frame when the token expires', async () => {
    const token = await mint('xena', { ttl: 3 });
    const s = await open(h.url, token);
    await s.next((f) => f.type === 'welcome');
    const c = await s.next((f) => f.type === 'close', 15_000);
    assert.equal(c.code, 4002);
    await s.ended;
  });
});
