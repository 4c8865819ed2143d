// The retention purge as the background job runs it, on each store: the lease-queue row is
// claimed, expired events are deleted in batches with their consumer state, the row is freed due
// again later, and a second purger (another node) does not hold it at the same time. The purger's
// clock is moved forward instead of waiting for a retention to pass.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { RetentionPurger } from '../../src/inbound/jobs.ts';
import { describeOnStores, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { GH_SECRET, postGithub } from '../helpers/hooks.ts';

describeOnStores('webhook broker: retention job', (store) => {
  let h: TestHerald;
  before(async () => {
    h = await startHeraldOn(store);
  });
  after(() => h?.stop());

  it('purges events past their source retention through the lease queue, and only those', async () => {
    assert.equal((await h.api('PUT', '/v1/sources/short', { path: '/ret/short', provider: 'github', secrets: [GH_SECRET], retention: '1h' })).status, 201);
    assert.equal((await h.api('PUT', '/v1/sources/long', { path: '/ret/long', provider: 'github', secrets: [GH_SECRET], retention: '30d' })).status, 201);
    assert.equal((await h.api('PUT', '/v1/consumers/ret', { filter: { path: '/ret/**' } })).status, 201);
    const short: string[] = [];
    for (let i = 0; i < 1005; i++) short.push((await postGithub(h.url, '/ret/short', { i })).body.id);
    const long = (await postGithub(h.url, '/ret/long', { keep: true })).body.id;
    assert.equal((await h.api('GET', '/v1/consumers/ret')).body.unacked, 1006);

    const { store: adapter, inbound } = h.herald.services;
    const db = adapter.db;
    // Free the row the server's own purger keeps, due now, so the test's purger can take it.
    await db.updateTable('lease_queue').set({ owner: null, due_at: 0 }).where('kind', '=', 'inbound_retention').execute();
    const log = pino({ level: 'silent' });
    const later = () => Date.now() + 2 * 3_600_000;
    const purger = new RetentionPurger({ store: adapter, inbound, owner: 'test-purger', log, pollMs: 50, everyMs: 3_600_000, now: later });
    await purger.start();
    try {
      await waitFor(async () => (await h.api('GET', '/v1/consumers/ret')).body.unacked === 1, 60_000, 'the short source purged (more than one batch)');
      for (const id of [short[0], short[600], short.at(-1)!]) assert.equal((await h.api('GET', `/v1/events/${id}`)).status, 404);
      assert.equal((await h.api('GET', `/v1/events/${long}`)).status, 200);
      const row = await waitFor(
        async () => (await db.selectFrom('lease_queue').selectAll().where('kind', '=', 'inbound_retention').executeTakeFirst()) ?? undefined,
        10_000,
        'the lease row',
      );
      await waitFor(async () => {
        const r = await db.selectFrom('lease_queue').select(['owner', 'due_at']).where('kind', '=', 'inbound_retention').executeTakeFirst();
        return r && r.owner === null && Number(r.due_at) > Date.now() + 3_000_000;
      }, 10_000, 'the row freed, due an hour later');
      assert.ok(row);
    } finally {
      await purger.stop();
    }
  });
});
