// The broker on two nodes of one deployment (PostgreSQL + Redis; two processes cannot share a
// SQLite file, so this suite runs on PostgreSQL only): any node ingests, any node serves a
// consumer, and a long-poll on one node returns with an event the other ingests before its wait
// ends (woken by inbound.received over the events port, or at the latest by its 1 s store poll:
// this test cannot tell the two apart, it proves the event is not missed).

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, startHeraldOn, type TestHerald } from '../helpers/herald.ts';
import { GH_SECRET, postGithub } from '../helpers/hooks.ts';

describeOnStores(
  'webhook broker across nodes',
  (store) => {
    let a: TestHerald;
    let b: TestHerald;
    before(async () => {
      a = await startHeraldOn(store);
      b = await startHeraldOn(store, {}, { join: a });
    });
    after(async () => {
      await b?.stop();
      await a?.stop();
    });

    it('an event ingested on one node is read and pulled on the other; a long-poll there wakes up', async () => {
      assert.equal((await a.api('PUT', '/v1/sources/gh', { path: '/nodes/repo', provider: 'github', secrets: [GH_SECRET] })).status, 201);
      assert.equal((await b.api('PUT', '/v1/consumers/c', { filter: { path: '/nodes/*' } })).status, 201);
      const first = await postGithub(a.url, '/nodes/repo', { n: 1 });
      assert.equal(first.status, 202);
      assert.equal((await b.api('GET', `/v1/events/${first.body.id}`)).status, 200);
      const pulled = await b.api('GET', '/v1/consumers/c/events?limit=10');
      assert.deepEqual(pulled.body.data.map((e: { id: string }) => e.id), [first.body.id]);
      await b.api('POST', '/v1/consumers/c/ack', { ids: [first.body.id] });

      const started = Date.now();
      const waiting = b.api('GET', '/v1/consumers/c/events?limit=10&wait=50s');
      await new Promise((r) => setTimeout(r, 500));
      const second = await postGithub(a.url, '/nodes/repo', { n: 2 });
      const got = await waiting;
      assert.deepEqual(got.body.data.map((e: { id: string }) => e.id), [second.body.id]);
      assert.ok(Date.now() - started < 50_000, 'the long-poll returned with the event, not at the end of its wait');
      // A replay of the same delivery on the other node is the original.
      const replay = await postGithub(b.url, '/nodes/repo', { n: 2 }, { delivery: (await a.api('GET', `/v1/events/${second.body.id}`)).body.delivery_id });
      assert.equal(replay.status, 200);
      assert.equal(replay.body.id, second.body.id);
    });
  },
  { only: ['postgres'] },
);
