// The TypeScript client (clients/realtime/client.ts) against a real Herald, in Node with its
// global WebSocket and fetch, on both stores: inbox events and the REST helpers; recovery of the
// publications missed while the network to Herald was cut (a TCP proxy in between); a reconnect
// after Herald restarts on the same port (the in-process streams of a SQLite node lose their
// history, so the client is told to resync; with Redis the history survives and is recovered);
// a refused token ends the client instead of retrying; the token callback is asked again on
// every reconnect; presence and typing arrive as typed events. Plus the served bundle (/v1/realtime/inbox.js).

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { Script } from 'node:vm';
import { HeraldRealtime, HeraldError, type RealtimeEvents, type RealtimeOptions } from '../../clients/realtime/client.ts';
import { describeOnStores, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

type Seen = { [K in keyof RealtimeEvents]: RealtimeEvents[K][] };

function record(c: HeraldRealtime): Seen {
  const seen = {} as Record<string, unknown[]>;
  for (const k of ['open', 'close', 'subscribed', 'resync', 'publication', 'inbox.item', 'inbox.unread', 'error'] as const) {
    seen[k] = [];
    c.on(k, (e) => seen[k]!.push(e));
  }
  return seen as unknown as Seen;
}

describeOnStores('realtime client', (store) => {
  let h: TestHerald;
  const clients: HeraldRealtime[] = [];
  const token = async (recipient: string, rooms?: string[]) => {
    const r = await h.api('POST', '/v1/realtime/tokens', { recipient, ...(rooms && { rooms }) });
    assert.equal(r.status, 201, r.text);
    return r.body.token as string;
  };
  const client = (url: string, t: RealtimeOptions['token'], channels: string[]) => {
    const c = new HeraldRealtime({ url, token: t, channels, initialDelay: 50, maxDelay: 500 });
    clients.push(c);
    return c;
  };
  const publish = async (n: number) => {
    const r = await h.api('POST', '/v1/realtime/publish', { channel: 'room:lobby', data: { n } });
    assert.equal(r.status, 200, r.text);
    return r.body.offset as number;
  };

  before(async () => {
    h = await startHeraldOn(store);
    for (const id of ['alice', 'bob', 'carol']) assert.equal((await h.api('PUT', `/v1/recipients/${id}`, { name: id })).status, 201);
  });
  after(async () => {
    for (const c of clients) c.close();
    await h?.stop();
  });

  it('receives inbox items and unread counts live; the inbox helpers list, count, mark read and read all', async () => {
    const c = client(h.url, await token('alice'), ['inbox']);
    const seen = record(c);
    c.connect();
    await waitFor(() => seen['inbox.unread'].length > 0, 15_000, 'the unread count after subscribing');
    assert.equal(seen['inbox.unread'].at(-1)!.unread, 0);
    const ids: string[] = [];
    for (const title of ['One', 'Two']) {
      const sent = await h.api('POST', '/v1/notifications', { to: 'alice', title, body: `${title} body`, channels: ['inbox'] });
      assert.equal(sent.status, 202, sent.text);
      const e = await waitFor(() => seen['inbox.item'].find((x) => x.item.notification_id === sent.body.id), 15_000, `inbox.item ${title}`);
      assert.equal(e.item.title, title);
      assert.equal(e.item.status, 'unseen');
      ids.push(e.item.id);
    }
    await waitFor(() => seen['inbox.unread'].at(-1)!.unread === 2, 15_000, 'unread 2');
    assert.equal(await c.inbox.count(), 2);
    const page = await c.inbox.list({ status: 'unread' });
    assert.deepEqual(page.data.map((i) => i.id), [ids[1], ids[0]], 'newest first');
    assert.deepEqual(await c.inbox.markRead(ids[0]!), { changed: 1, unread: 1 });
    await waitFor(() => seen['inbox.unread'].at(-1)!.unread === 1, 15_000, 'the live count after a read');
    assert.deepEqual(await c.inbox.readAll(), { changed: 1, unread: 0 });
    await waitFor(() => seen['inbox.unread'].at(-1)!.unread === 0, 15_000, 'the live count after read-all');
    assert.deepEqual((await c.inbox.list({ status: 'unread' })).data, []);
    await assert.rejects(c.inbox.markRead('inb_doesnotexist'), (err: HeraldError) => err instanceof HeraldError && err.status === 404);
  });

  it('recovers every publication missed while the network was cut, in order and once', async () => {
    const proxy: TcpProxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(h.url).port) });
    try {
      const c = client(`http://127.0.0.1:${proxy.port}`, await token('bob', ['lobby']), ['room:lobby']);
      const seen = record(c);
      c.connect();
      await waitFor(() => seen.subscribed.length > 0, 15_000, 'subscribed');
      await publish(1);
      await waitFor(() => seen.publication.length === 1, 15_000, 'the first publication');
      await proxy.cut();
      await waitFor(() => seen.close.length > 0, 15_000, 'the client noticed the cut');
      assert.notEqual(seen.close[0]!.reconnectIn, null, 'it will reconnect');
      const missed = [await publish(2), await publish(3), await publish(4)];
      await proxy.restore();
      await waitFor(() => seen.open.length === 2, 30_000, 'reconnected');
      await waitFor(() => seen.publication.length === 4, 15_000, 'the missed publications');
      assert.deepEqual(seen.subscribed.at(-1)!.recovered, true);
      assert.deepEqual(seen.publication.map((p) => (p.data as { n: number }).n), [1, 2, 3, 4]);
      assert.deepEqual(seen.publication.slice(1).map((p) => p.offset), missed);
      assert.deepEqual(seen.resync, []);
      await publish(5);
      await waitFor(() => seen.publication.length === 5, 15_000, 'live again');
    } finally {
      await proxy.close();
    }
  });

  it('reconnects after Herald restarts on the same port, asking the token callback again; then resyncs or recovers', async () => {
    let asked = 0;
    const c = client(h.url, async () => (asked++, token('carol', ['lobby'])), ['room:lobby', 'inbox']);
    const seen = record(c);
    c.connect();
    await waitFor(() => seen.subscribed.length === 2, 15_000, 'subscribed to both');
    await publish(10);
    await waitFor(() => seen.publication.length === 1, 15_000, 'a publication before the restart');
    const port = new URL(h.url).port;
    h = await h.restart({ PORT: port });
    await waitFor(() => seen.open.length === 2, 30_000, 'reconnected to the restarted node');
    assert.ok(asked >= 2, `the callback was asked for every connection (${asked})`);
    await waitFor(() => seen.subscribed.length === 4, 15_000, 'subscribed again');
    const again = seen.subscribed.slice(2);
    if (store === 'sqlite') {
      // The streams lived in the stopped process: new epochs, nothing to recover from.
      assert.deepEqual(again.map((s) => s.recovered), [false, false]);
      assert.deepEqual(seen.resync.map((r) => r.channel).sort(), ['inbox', 'room:lobby']);
    } else {
      assert.deepEqual(again.map((s) => s.recovered), [true, true], 'the history is in Redis');
      assert.deepEqual(seen.resync, []);
    }
    await publish(11);
    await waitFor(() => seen.publication.some((p) => (p.data as { n: number }).n === 11), 15_000, 'a publication after the restart');
  });

  it('asks for presence and hears typing, as typed events', async () => {
    const a = client(h.url, await token('alice'), []);
    const b = client(h.url, await token('bob'), []);
    const presence: RealtimeEvents['presence'][] = [];
    const typing: RealtimeEvents['typing'][] = [];
    a.on('presence', (e) => presence.push(e));
    a.on('typing', (e) => typing.push(e));
    const opened = (c: HeraldRealtime) => new Promise<void>((r) => c.on('open', () => r()));
    const aOpen = opened(a);
    a.connect();
    await aOpen;
    a.presence(['bob']);
    await waitFor(() => presence.some((p) => p.online.bob === false), 15_000, 'bob offline');
    const bOpen = opened(b);
    b.connect();
    await bOpen;
    await waitFor(() => presence.some((p) => p.online.bob === true), 15_000, 'bob online');
    b.typing({ to: 'alice' }, true);
    const t = await waitFor(() => typing[0], 15_000, 'typing');
    assert.deepEqual({ from: t.from, to: t.to, active: t.active }, { from: 'bob', to: 'alice', active: true });
  });

  it('stops for good on a refused token instead of retrying', async () => {
    const good = await token('alice');
    const [head, body] = good.split('.');
    const c = client(h.url, `${head}.${body}.${'A'.repeat(43)}`, ['inbox']);
    const seen = record(c);
    c.connect();
    await waitFor(() => seen.close.length > 0, 15_000, 'closed');
    assert.equal(seen.close[0]!.code, 4001);
    assert.equal(seen.close[0]!.reconnectIn, null);
    assert.equal(c.state, 'closed');
    assert.deepEqual(seen.open, []);
  });

  it('serves the client and <herald-inbox> as one script that compiles, with an ETag', async () => {
    const r = await fetch(`${h.url}/v1/realtime/inbox.js`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/javascript/);
    const text = await r.text();
    assert.doesNotThrow(() => new Script(text, { filename: 'inbox.js' }), 'plain JavaScript, no types, no import/export');
    assert.match(text, /customElements\.define\('herald-inbox'/);
    assert.doesNotMatch(text, /\.innerHTML|\.outerHTML|insertAdjacentHTML|\beval\(|new Function\(/);
    const etag = r.headers.get('etag')!;
    const again = await fetch(`${h.url}/v1/realtime/inbox.js`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
  });
});
