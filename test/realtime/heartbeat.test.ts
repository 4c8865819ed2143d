// Heartbeats over real sockets, on both stores: a WebSocket peer that stops answering pings (its
// client's automatic pong is off, as a frozen peer's would be) is dropped within two heartbeats
// and counted in herald_realtime_dead_peers_total, while a peer that answers stays connected.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { describeOnStores, request, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { connect, wsUrl, type RtClient } from './ws-client.ts';

describeOnStores('real-time heartbeats', (store) => {
  let h: TestHerald;
  const clients: RtClient[] = [];
  const sockets: WebSocket[] = [];

  before(async () => {
    h = await startHeraldOn(store, { HERALD_REALTIME_HEARTBEAT: '1s' });
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    for (const s of sockets) s.terminate();
    await h?.stop();
  });

  const deadPeers = async () => {
    const m = /^herald_realtime_dead_peers_total (\d+)/m.exec((await request(h.url, undefined, 'GET', '/metrics')).text);
    return Number(m?.[1] ?? 0);
  };

  it('drops a peer that stops answering pings and keeps one that answers', { timeout: 30_000 }, async () => {
    const minted = await h.api('POST', '/v1/realtime/tokens', { recipient: 'hb' });
    assert.equal(minted.status, 201, minted.text);
    const token = minted.body.token as string;
    const live = await connect(h.url, token);
    clients.push(live);
    await live.next((f) => f.type === 'welcome');

    const before = await deadPeers();
    const dead = new WebSocket(wsUrl(h.url, token), { autoPong: false });
    sockets.push(dead);
    let pings = 0;
    dead.on('ping', () => pings++);
    const closed = new Promise<number>((resolve) => dead.on('close', (code) => resolve(code)));
    dead.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      dead.once('open', () => resolve());
      dead.once('error', reject);
    });
    // No close frame: the server terminates the socket (1006 on this side).
    assert.equal(await closed, 1006);
    assert.ok(pings >= 1, 'the server pinged before dropping');
    assert.equal(await deadPeers(), before + 1);

    // The answering peer outlived several heartbeats and still works.
    assert.equal(live.isClosed(), false);
    live.send({ type: 'ping' });
    await live.next((f) => f.type === 'pong');
    await waitFor(async () => (await deadPeers()) === before + 1 && !live.isClosed(), 5_000, 'the live peer kept');
  });
});
