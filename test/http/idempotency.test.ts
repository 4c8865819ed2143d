// Idempotency-Key: a retried send never creates a second notification, whatever the timing; on
// each store.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, request, startHeraldOn, type ApiResponse, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';

const SEND = '/v1/notifications';

describeOnStores('Idempotency-Key', (store) => {
  let h: TestHerald;
  let rx: Receiver;
  let n = 0;
  const fresh = () => `idem-${process.pid}-${++n}`;

  /** The stored notifications carrying this Idempotency-Key. */
  const withKey = async (server: TestHerald, key: string) => {
    const all: { id: string; idempotency_key: string | null }[] = [];
    let cursor: string | null = null;
    do {
      const r: ApiResponse = await server.api('GET', `${SEND}?limit=200${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(r.status, 200);
      all.push(...r.body.data);
      cursor = r.body.next_cursor;
    } while (cursor);
    return all.filter((x) => x.idempotency_key === key);
  };

  before(async () => {
    rx = await startReceiver();
    h = await startHeraldOn(store);
    for (const id of ['alice', 'bob']) {
      assert.equal((await h.api('PUT', `/v1/recipients/${id}`, { webhook: { url: `${rx.url}/${id}` } })).status, 201);
    }
  });

  after(async () => {
    await h?.stop();
    await rx?.close();
  });

  it('same key and same body: the same response again, marked as replayed, one notification', async () => {
    const key = fresh();
    const body = { to: ['alice', 'bob'], title: 'Order shipped', body: 'Your order is on its way', data: { order: 42, items: [1, 2] } };
    const first = await h.api('POST', SEND, body, { 'idempotency-key': key });
    assert.equal(first.status, 202, first.text);
    assert.equal(first.headers.get('idempotent-replayed'), null);

    // Same JSON value with its keys in another order is the same request.
    const reordered = { data: { items: [1, 2], order: 42 }, body: body.body, title: body.title, to: body.to };
    for (const b of [body, reordered, body]) {
      const again = await h.api('POST', SEND, b, { 'idempotency-key': key });
      assert.equal(again.status, 202, again.text);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(again.body, first.body);
    }
    const stored = await withKey(h, key);
    assert.deepEqual(stored.map((s) => s.id), [first.body.id]);
    const got = await h.api('GET', `${SEND}/${first.body.id}`);
    assert.equal(got.body.idempotency_key, key);
    assert.deepEqual(got.body.deliveries.map((d: { id: string }) => d.id).sort(), first.body.deliveries.map((d: { id: string }) => d.id).sort());
  });

  it('same key with a different body: 422 idempotency_key_reused, nothing new stored', async () => {
    const key = fresh();
    const first = await h.api('POST', SEND, { to: 'alice', title: 'one' }, { 'idempotency-key': key });
    assert.equal(first.status, 202);
    for (const other of [{ to: 'alice', title: 'two' }, { to: 'bob', title: 'one' }, { to: 'alice', title: 'one', data: null }, { to: ['alice'], title: 'one' }]) {
      const r = await h.api('POST', SEND, other, { 'idempotency-key': key });
      assert.equal(r.status, 422, r.text);
      assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(r.body.code, 'idempotency_key_reused');
    }
    assert.deepEqual((await withKey(h, key)).map((s) => s.id), [first.body.id]);
  });

  it('different keys make different notifications; no key makes a new one each time', async () => {
    const body = { to: 'alice', title: 'same body' };
    const keys = [fresh(), fresh(), fresh()];
    const ids = [];
    for (const key of keys) {
      const r = await h.api('POST', SEND, body, { 'idempotency-key': key });
      assert.equal(r.status, 202);
      assert.equal(r.headers.get('idempotent-replayed'), null);
      ids.push(r.body.id);
      assert.deepEqual((await withKey(h, key)).map((s) => s.id), [r.body.id]);
    }
    const plain = [await h.api('POST', SEND, body), await h.api('POST', SEND, body)];
    ids.push(...plain.map((p) => p.body.id));
    assert.equal(new Set(ids).size, 5);
  });

  it('a key belongs to the workspace, not to the API key that used it', async () => {
    const created = await h.api('POST', '/v1/keys', { name: 'sender', scopes: ['send', 'read'] });
    assert.equal(created.status, 201);
    const key = fresh();
    const body = { to: 'bob', title: 'cross-key' };
    const first = await h.api('POST', SEND, body, { 'idempotency-key': key });
    const second = await request(h.url, created.body.key, 'POST', SEND, body, { 'idempotency-key': key });
    assert.equal(second.status, 202);
    assert.equal(second.headers.get('idempotent-replayed'), 'true');
    assert.equal(second.body.id, first.body.id);
  });

  it('a refused request does not use up its key', async () => {
    const key = fresh();
    const body = { to: 'carol', title: 'for carol' };
    const refused = await h.api('POST', SEND, body, { 'idempotency-key': key });
    assert.equal(refused.status, 422);
    assert.equal(refused.body.code, 'unknown_recipients');
    assert.equal((await h.api('PUT', '/v1/recipients/carol', { webhook: { url: `${rx.url}/carol` } })).status, 201);
    const ok = await h.api('POST', SEND, body, { 'idempotency-key': key });
    assert.equal(ok.status, 202);
    assert.equal(ok.headers.get('idempotent-replayed'), null);
    assert.equal((await withKey(h, key)).length, 1);
  });

  it('20 concurrent requests with one key: one notification, one id, the rest 409 or replays', async (t) => {
    const tally = { original: 0, replayed: 0, inFlight: 0 };
    for (let round = 0; round < 5; round++) {
      const key = fresh();
      const body = { to: ['alice', 'bob'], title: `concurrent ${round}`, data: { round } };
      const results = await Promise.all(Array.from({ length: 20 }, () => h.api('POST', SEND, body, { 'idempotency-key': key })));
      const accepted = results.filter((r) => r.status === 202);
      const others = results.filter((r) => r.status !== 202);
      assert.ok(accepted.length >= 1, 'at least one request is accepted');
      assert.equal(new Set(accepted.map((r) => r.body.id)).size, 1, 'every 202 names the same notification');
      assert.equal(accepted.filter((r) => r.headers.get('idempotent-replayed') !== 'true').length, 1, 'exactly one 202 is the original');
      for (const r of accepted) assert.deepEqual(r.body, accepted[0]!.body);
      for (const r of others) {
        assert.equal(r.status, 409, r.text);
        assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
        assert.equal(r.body.code, 'idempotency_in_flight');
        assert.ok(r.headers.get('retry-after'));
      }
      tally.original++;
      tally.replayed += accepted.length - 1;
      tally.inFlight += others.length;
      const stored = await withKey(h, key);
      assert.deepEqual(stored.map((s) => s.id), [accepted[0]!.body.id]);
      // A retry after the dust settles is a replay.
      const retry = await h.api('POST', SEND, body, { 'idempotency-key': key });
      assert.equal(retry.status, 202);
      assert.equal(retry.headers.get('idempotent-replayed'), 'true');
      assert.equal(retry.body.id, accepted[0]!.body.id);
    }
    t.diagnostic(`5 rounds of 20: ${tally.original} originals, ${tally.replayed} replays, ${tally.inFlight} idempotency_in_flight`);
  });

  it('concurrent requests with one key and two different bodies: one notification, the other body refused', async () => {
    const key = fresh();
    const a = { to: 'alice', title: 'body A' };
    const b = { to: 'alice', title: 'body B' };
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => h.api('POST', SEND, i % 2 ? b : a, { 'idempotency-key': key }).then((r) => ({ r, sent: i % 2 ? b : a }))));
    const stored = await withKey(h, key);
    assert.equal(stored.length, 1);
    const winner = await h.api('GET', `${SEND}/${stored[0]!.id}`);
    for (const { r, sent } of results) {
      if (r.status === 202) {
        assert.equal(r.body.id, stored[0]!.id);
        assert.equal(sent.title, winner.body.title, 'only the stored body is ever accepted');
      } else if (r.status === 422) {
        assert.equal(r.body.code, 'idempotency_key_reused');
        assert.notEqual(sent.title, winner.body.title);
      } else {
        assert.equal(r.status, 409, r.text);
        assert.equal(r.body.code, 'idempotency_in_flight');
      }
    }
  });

  it('key length: 255 characters is fine, 256 is 422', async () => {
    const ok = 'k'.repeat(250) + String(++n).padStart(5, '0');
    const r = await h.api('POST', SEND, { to: 'alice', title: 'long key' }, { 'idempotency-key': ok });
    assert.equal(r.status, 202, r.text);
    const again = await h.api('POST', SEND, { to: 'alice', title: 'long key' }, { 'idempotency-key': ok });
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    const tooLong = await h.api('POST', SEND, { to: 'alice', title: 'long key' }, { 'idempotency-key': ok + 'x' });
    assert.equal(tooLong.status, 422);
    assert.equal(tooLong.body.code, 'validation_failed');
    assert.equal(tooLong.body.errors[0].path, 'headers.idempotency-key');
  });

  it('replays survive a restart', async () => {
    const key = fresh();
    const body = { to: 'bob', title: 'before restart', data: { x: [1, { y: 'z' }] } };
    const first = await h.api('POST', SEND, body, { 'idempotency-key': key });
    assert.equal(first.status, 202);

    h = await h.restart();

    const replay = await h.api('POST', SEND, body, { 'idempotency-key': key });
    assert.equal(replay.status, 202, replay.text);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(replay.body, first.body);
    const reused = await h.api('POST', SEND, { ...body, title: 'changed' }, { 'idempotency-key': key });
    assert.equal(reused.status, 422);
    assert.equal(reused.body.code, 'idempotency_key_reused');
    assert.deepEqual((await withKey(h, key)).map((s) => s.id), [first.body.id]);
  });
});
