// GET /v1/stats on both stores: notifications accepted per bucket, deliveries ended per bucket,
// channel and status, the waiting queue per channel and the dead-letter count, all read from the
// store (on PostgreSQL a second node of the cluster answers the same); another organization's
// traffic is not counted; `read` is enough; bad parameters are 422.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, request, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';

describeOnStores('GET /v1/stats', (store) => {
  let h: TestHerald;
  let receiver: Receiver;
  const t0 = Date.now();

  before(async () => {
    receiver = await startReceiver((r) => ({ status: r.path === '/bob' ? 400 : 200 }));
    h = await startHeraldOn(store, { HERALD_SIGNUP: 'open' });
    for (const id of ['alice', 'bob']) {
      const r = await h.api('PUT', `/v1/recipients/${id}`, { webhook: { url: `${receiver.url}/${id}` } });
      assert.ok(r.status === 200 || r.status === 201, r.text);
    }
    const sent: string[] = [];
    for (const to of ['alice', 'alice', 'alice', 'bob', 'bob']) {
      const r = await h.api('POST', '/v1/notifications', { to, title: 't' });
      assert.equal(r.status, 202, r.text);
      sent.push(r.body.id);
    }
    const later = await h.api('POST', '/v1/notifications', { to: 'alice', title: 'later', send_at: new Date(Date.now() + 3_600_000).toISOString() });
    assert.equal(later.status, 202, later.text);
    for (const id of sent) {
      await waitFor(async () => ['sent', 'failed'].includes((await h.api('GET', `/v1/notifications/${id}`)).body.status), 20_000, `${id} to end`);
    }
    // Another organization's traffic must not be counted.
    const reg = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'other@example.com', password: 'a long enough passphrase', name: 'Other' });
    assert.equal(reg.status, 201, reg.text);
  });
  after(async () => {
    await h?.stop();
    await receiver?.close();
  });

  const check = (body: any) => {
    const sum = (rows: { count: number }[]) => rows.reduce((n, r) => n + r.count, 0);
    assert.equal(sum(body.accepted), 6, 'six notifications accepted');
    const ended = (channel: string, status: string) => sum(body.deliveries.filter((d: any) => d.channel === channel && d.status === status));
    assert.equal(ended('webhook', 'sent'), 3);
    assert.equal(ended('webhook', 'exhausted'), 2, 'a 400 is permanent: dead-lettered at once');
    assert.equal(sum(body.deliveries), 5, 'the scheduled one has not ended');
    assert.deepEqual(body.queue, [{ channel: 'webhook', waiting: 1, due: 0, oldest_due_age_ms: null }]);
    assert.equal(body.dead_letters, 2);
    for (const b of [...body.accepted, ...body.deliveries]) assert.equal(Date.parse(b.start) % body.bucket_ms, 0, 'aligned buckets');
  };

  it('counts what was accepted, how deliveries ended, the queue and the dead letters', async () => {
    const from = new Date(Math.floor(t0 / 60_000) * 60_000 - 60_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const r = await h.api('GET', `/v1/stats?from=${from}&to=${to}&bucket=1m`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.bucket_ms, 60_000);
    assert.equal(r.body.from, from);
    check(r.body);

    const byDefault = await h.api('GET', '/v1/stats');
    assert.equal(byDefault.status, 200, byDefault.text);
    assert.equal(byDefault.body.bucket_ms, 3_600_000);
    check(byDefault.body);

    const before = await h.api('GET', `/v1/stats?to=${new Date(t0 - 3_600_000).toISOString()}`);
    assert.deepEqual([before.body.accepted, before.body.deliveries], [[], []], 'nothing before the start');
    assert.equal(before.body.dead_letters, 2, 'the dead-letter count is now, whatever the range');
  });

  it('is readable with the read scope, and another organization sees only its own', async () => {
    const key = await h.api('POST', '/v1/keys', { name: 'reader', scopes: ['read'] });
    assert.equal(key.status, 201, key.text);
    const r = await request(h.url, key.body.key, 'GET', '/v1/stats');
    assert.equal(r.status, 200, r.text);
    check(r.body);
    const login = await request(h.url, undefined, 'POST', '/v1/auth/login', { email: 'other@example.com', password: 'a long enough passphrase' });
    const other = await request(h.url, login.body.access_token, 'GET', '/v1/stats');
    assert.equal(other.status, 200, other.text);
    assert.deepEqual([other.body.accepted, other.body.deliveries, other.body.queue, other.body.dead_letters], [[], [], [], 0]);
  });

  if (store === 'postgres') {
    it('a second node of the cluster answers the same', async () => {
      const second = await startHeraldOn('postgres', {}, { join: h });
      try {
        const to = new Date(Date.now() + 60_000).toISOString();
        const [a, b] = await Promise.all([h.api('GET', `/v1/stats?to=${to}`), second.api('GET', `/v1/stats?to=${to}`)]);
        check(b.body);
        const strip = (x: any) => ({ ...x, now: undefined, queue: x.queue.map((q: any) => ({ ...q, oldest_due_age_ms: null })) });
        assert.deepEqual(strip(b.body), strip(a.body));
      } finally {
        await second.stop();
      }
    });
  }
});
