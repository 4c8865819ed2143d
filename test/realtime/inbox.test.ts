// The inbox channel end to end on both stores: a send to `inbox` stores an item and arrives live on
// two sessions of the recipient; reading it over REST (or with an inbox.mark frame) moves the
// delivery to `read` and updates the unread count on both sessions; /v1/me is the token's
// recipient only; the inbox is never a default channel.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, request, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { connect, type RtClient } from './ws-client.ts';

describeOnStores('inbox over the gateway and /v1/me', (store) => {
  let h: TestHerald;
  let rx: Receiver;
  let alice: string;
  const clients: RtClient[] = [];
  const token = async (recipient: string) => {
    const r = await h.api('POST', '/v1/realtime/tokens', { recipient });
    assert.equal(r.status, 201, r.text);
    return r.body.token as string;
  };
  const session = async (t: string) => {
    const c = await connect(h.url, t);
    clients.push(c);
    await c.next((f) => f.type === 'welcome');
    c.send({ type: 'subscribe', channel: 'inbox' });
    await c.next((f) => f.type === 'subscribed' && f.channel === 'inbox');
    return c;
  };
  const me = (t: string) => (method: string, path: string, body?: unknown) => request(h.url, t, method, `/v1/me${path}`, body);
  const deliveryStatus = async (notification: string) => (await h.api('GET', `/v1/notifications/${notification}`)).body.deliveries[0].status;

  before(async () => {
    rx = await startReceiver();
    h = await startHeraldOn(store);
    assert.equal((await h.api('PUT', '/v1/recipients/alice', { name: 'Alice', webhook: { url: `${rx.url}/alice` } })).status, 201);
    assert.equal((await h.api('PUT', '/v1/recipients/bob', { name: 'Bob' })).status, 201);
    alice = await token('alice');
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await h?.stop();
    await rx?.close();
  });

  it('a send to inbox arrives on both sessions; reading it on one updates the count on both and the delivery is read', async () => {
    const [s1, s2] = [await session(alice), await session(alice)];
    for (const s of [s1, s2]) assert.equal((await s.next((f) => f.type === 'inbox.unread')).unread, 0, 'the count on subscribing');
    const sent = await h.api('POST', '/v1/notifications', { to: 'alice', title: 'Hello', body: 'World', data: { n: 1 }, channels: ['inbox'], channel_options: { inbox: { action_url: 'https://app.example.com/x' } } });
    assert.equal(sent.status, 202, sent.text);
    assert.deepEqual(sent.body.deliveries.map((d: any) => d.channel), ['inbox']);
    const items = await Promise.all([s1, s2].map((s) => s.next((f) => f.type === 'inbox.item', 15_000, 'inbox.item')));
    for (const f of items) {
      assert.equal(f.channel, 'inbox');
      assert.equal(f.item.notification_id, sent.body.id);
      assert.equal(f.item.title, 'Hello');
      assert.equal(f.item.body, 'World');
      assert.deepEqual(f.item.data, { n: 1 });
      assert.equal(f.item.status, 'unseen');
      assert.equal(f.item.action_url, 'https://app.example.com/x');
    }
    const id = items[0]!.item.id;
    for (const s of [s1, s2]) await s.next((f) => f.type === 'inbox.unread' && f.unread === 1 && f.offset !== undefined);
    await waitFor(async () => (await deliveryStatus(sent.body.id)) === 'sent', 15_000, 'delivery sent');

    const list = await me(alice)('GET', '/inbox?status=unread');
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.body.data.map((i: any) => i.id), [id]);
    assert.equal((await me(alice)('GET', '/inbox/count')).body.unread, 1);

    const read = await me(alice)('POST', `/inbox/${id}/read`);
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(read.body, { changed: 1, unread: 0 });
    for (const s of [s1, s2]) await s.next((f) => f.type === 'inbox.unread' && f.unread === 0, 10_000, 'unread 0 on every session');
    await waitFor(async () => (await deliveryStatus(sent.body.id)) === 'read', 15_000, 'delivery read');
    assert.equal((await me(alice)('GET', '/inbox?status=unread')).body.data.length, 0);
    assert.equal((await me(alice)('GET', '/inbox?status=read')).body.data[0].status, 'read');

    const app = await h.api('GET', '/v1/recipients/alice/inbox');
    assert.equal(app.status, 200, app.text);
    assert.equal(app.body.data[0].id, id);
  });

  it('an inbox.mark frame reads items; read-all and archive over REST', async () => {
    const s = await session(alice);
    const ids: string[] = [];
    for (const title of ['one', 'two']) {
      assert.equal((await h.api('POST', '/v1/notifications', { to: 'alice', title, channels: ['inbox'] })).status, 202);
      ids.push((await s.next((f) => f.type === 'inbox.item' && f.item.title === title, 15_000, title)).item.id);
    }
    await s.next((f) => f.type === 'inbox.unread' && f.unread === 2);
    s.send({ type: 'inbox.mark', ids: [ids[0]], state: 'read' });
    assert.equal((await s.next((f) => f.type === 'inbox.marked')).changed, 1);
    await s.next((f) => f.type === 'inbox.unread' && f.unread === 1);
    assert.deepEqual((await me(alice)('POST', '/inbox/read-all')).body, { changed: 1, unread: 0 });
    assert.equal((await me(alice)('POST', `/inbox/${ids[1]}/archive`)).status, 200);
    assert.equal((await me(alice)('GET', '/inbox?status=archived')).body.data[0].id, ids[1]);
  });

  it("/v1/me is the token's recipient only; API keys and bad tokens are 401", async () => {
    const item = (await me(alice)('GET', '/inbox')).body.data[0];
    const bob = await token('bob');
    assert.equal((await me(bob)('GET', '/inbox')).body.data.length, 0);
    assert.equal((await me(bob)('POST', `/inbox/${item.id}/read`)).status, 404);
    assert.equal((await me(h.key)('GET', '/inbox')).status, 401);
    assert.equal((await me('a.b.c')('GET', '/inbox/count')).status, 401);
    assert.equal((await request(h.url, undefined, 'GET', '/v1/me/inbox')).status, 401);
    assert.equal((await me(alice)('GET', '/inbox?cursor=nope')).status, 400);
    // A connection token opens nothing but /v1/me and the gateway.
    assert.equal((await request(h.url, alice, 'GET', '/v1/recipients/alice')).status, 401);
  });

  it('the inbox is never a default channel', async () => {
    const sent = await h.api('POST', '/v1/notifications', { to: 'alice', title: 'default' });
    assert.equal(sent.status, 202, sent.text);
    assert.deepEqual(sent.body.deliveries.map((d: any) => d.channel), ['webhook']);
  });
});
