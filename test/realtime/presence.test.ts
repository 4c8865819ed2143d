// Presence and typing over real sockets. On both stores, one node: presence frames answer and
// then follow a recipient going online and offline (not offline while another session of theirs
// is open), GET /v1/presence, typing to a recipient expiring after 5 s, typing in a room reaching
// its subscribers but not the typist. Across nodes (PostgreSQL + Redis): presence and typing
// between a client of one node and a client of another, and a node SIGKILLed without goodbye
// whose recipient goes offline once its presence expires (HERALD_REALTIME_PRESENCE_TTL).

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, request, startHeraldOn, tempDir, waitFor, type TestHerald } from '../helpers/herald.ts';
import { spawnHerald, type HeraldProcess } from '../helpers/process.ts';
import { connect, type RtClient } from './ws-client.ts';

const clients: RtClient[] = [];
async function open(url: string, token: string): Promise<RtClient> {
  const c = await connect(url, token);
  clients.push(c);
  await c.next((f) => f.type === 'welcome');
  return c;
}
async function mint(h: TestHerald, recipient: string, rooms?: string[]): Promise<string> {
  const r = await h.api('POST', '/v1/realtime/tokens', { recipient, ...(rooms && { rooms }) });
  assert.equal(r.status, 201, r.text);
  return r.body.token as string;
}
async function metric(h: TestHerald, name: string): Promise<number> {
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec((await request(h.url, undefined, 'GET', '/metrics')).text);
  return Number(m?.[1] ?? NaN);
}
const presenceOf = (c: RtClient, id: string, online: boolean, after = 0) => c.next((f) => c.frames.indexOf(f) >= after && f.type === 'presence' && f.online[id] === online, 15_000, `presence ${id}=${online}`);

describeOnStores('real-time presence and typing', (store) => {
  let h: TestHerald;
  before(async () => {
    h = await startHeraldOn(store);
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await h?.stop();
  });

  it('follows a recipient online and offline across their sessions; GET /v1/presence agrees', async () => {
    const alice = await open(h.url, await mint(h, 'alice'));
    alice.send({ type: 'presence', ids: ['bob', 'carol'] });
    const first = await alice.next((f) => f.type === 'presence');
    assert.deepEqual(first.online, { bob: false, carol: false });

    const bobToken = await mint(h, 'bob');
    const bob1 = await open(h.url, bobToken);
    await presenceOf(alice, 'bob', true);
    const r = await h.api('GET', '/v1/presence?ids=bob,carol');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.data, [{ id: 'bob', online: true }, { id: 'carol', online: false }]);
    assert.equal(await metric(h, 'herald_realtime_presence_online'), 2, 'alice and bob have sessions on this node');

    const bob2 = await open(h.url, bobToken);
    const mark = alice.frames.length;
    bob1.close();
    await bob1.closed;
    // Still online through bob2: a ping round trip on alice's connection, then no offline frame.
    alice.send({ type: 'ping' });
    await alice.next((f) => alice.frames.indexOf(f) >= mark && f.type === 'pong');
    assert.equal((await h.api('GET', '/v1/presence?ids=bob')).body.data[0].online, true);
    assert.equal(alice.frames.slice(mark).some((f) => f.type === 'presence'), false);
    bob2.close();
    await presenceOf(alice, 'bob', false, mark);
    assert.equal((await h.api('GET', '/v1/presence?ids=bob')).body.data[0].online, false);
    await waitFor(async () => (await metric(h, 'herald_realtime_presence_online')) === 1, 5_000, 'presence gauge back to 1');
  });

  it('typing reaches every session of the target and ends by itself after 5 s; room typing reaches the room but not the typist', async () => {
    const dana = await open(h.url, await mint(h, 'dana', ['lobby']));
    const eveToken = await mint(h, 'eve', ['lobby']);
    const eve1 = await open(h.url, eveToken);
    const eve2 = await open(h.url, eveToken);
    dana.send({ type: 'typing', to: 'eve', active: true });
    const started = Date.now();
    for (const e of [eve1, eve2]) {
      const t = await e.next((f) => f.type === 'typing' && f.active === true);
      assert.deepEqual(t, { type: 'typing', from: 'dana', to: 'eve', active: true });
    }
    const ended = await eve1.next((f) => f.type === 'typing' && f.active === false, 15_000, 'typing to end');
    assert.equal(ended.from, 'dana');
    assert.ok(Date.now() - started >= 4_500, 'not before the 5 s');

    for (const c of [dana, eve1]) c.send({ type: 'subscribe', channel: 'room:lobby' });
    for (const c of [dana, eve1]) await c.next((f) => f.type === 'subscribed');
    eve1.send({ type: 'typing', room: 'lobby', active: true });
    const t = await dana.next((f) => f.type === 'typing' && f.room === 'lobby');
    assert.deepEqual(t, { type: 'typing', from: 'eve', room: 'lobby', active: true });
    eve1.send({ type: 'typing', room: 'lobby', active: false });
    await dana.next((f) => f.type === 'typing' && f.room === 'lobby' && f.active === false);
    assert.equal(eve1.frames.some((f) => f.type === 'typing' && f.room === 'lobby'), false, 'the typist does not hear itself');
    eve1.send({ type: 'typing', room: 'elsewhere', active: true });
    assert.equal((await eve1.next((f) => f.type === 'error')).code, 'forbidden');
  });
});

describeOnStores(
  'real-time presence and typing across nodes',
  (store) => {
    let a: TestHerald;
    let b: TestHerald;
    let c: HeraldProcess;
    const TTL = { HERALD_REALTIME_PRESENCE_TTL: '2s' };
    before(async () => {
      a = await startHeraldOn(store, TTL);
      b = await startHeraldOn(store, TTL, { join: a });
      const { DATABASE_URL, REDIS_URL, HERALD_REDIS_PREFIX } = a.env;
      c = await spawnHerald({ dataDir: tempDir(), key: a.key, env: { DATABASE_URL: DATABASE_URL!, REDIS_URL: REDIS_URL!, HERALD_REDIS_PREFIX: HERALD_REDIS_PREFIX!, HERALD_LOG_LEVEL: 'warn', ...TTL } });
    });
    after(async () => {
      for (const cl of clients) cl.ws.terminate();
      if (c.child.exitCode === null) c.kill('SIGKILL');
      await b?.stop();
      await a?.stop();
    });

    it('presence and typing between clients of two nodes', async () => {
      const alice = await open(a.url, await mint(a, 'alice'));
      alice.send({ type: 'presence', ids: ['bob'] });
      assert.deepEqual((await alice.next((f) => f.type === 'presence')).online, { bob: false });
      const bob = await open(b.url, await mint(a, 'bob'));
      await presenceOf(alice, 'bob', true);
      assert.deepEqual((await a.api('GET', '/v1/presence?ids=bob')).body.data, [{ id: 'bob', online: true }]);
      bob.send({ type: 'typing', to: 'alice', active: true });
      assert.deepEqual(await alice.next((f) => f.type === 'typing'), { type: 'typing', from: 'bob', to: 'alice', active: true });
      bob.close();
      await presenceOf(alice, 'bob', false);
    });

    it('a node SIGKILLed: its recipient goes offline once the presence expires', async () => {
      const alice = await open(a.url, await mint(a, 'alice'));
      alice.send({ type: 'presence', ids: ['zoe'] });
      await alice.next((f) => f.type === 'presence');
      const zoe = await open(c.url, await mint(a, 'zoe'));
      await presenceOf(alice, 'zoe', true);
      const mark = alice.frames.length;
      c.kill('SIGKILL');
      await zoe.closed;
      await presenceOf(alice, 'zoe', false, mark);
      assert.equal((await a.api('GET', '/v1/presence?ids=zoe')).body.data[0].online, false);
    });
  },
  { only: ['postgres'] },
);
