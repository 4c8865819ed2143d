// Topic sends through the API: `to: {topic}` is accepted at once and expanded in the background, in
// batches; every member gets exactly one delivery, on SQLite and on PostgreSQL + Redis.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';

const MEMBERS = 10_000;

describeOnStores('topic fan-out', (store) => {
    let h: TestHerald;
    let rx: Receiver;
    before(async () => {
      rx = await startReceiver();
      h = await startHeraldOn(store);
      // Recipients are set up in bulk through the store (10,000 PUTs would only test PUT); the topic
      // and the send go through the API.
      const now = Date.now();
      const sealed = h.herald.services.secrets.seal('whsec_' + Buffer.alloc(24, 7).toString('base64'));
      const rows = Array.from({ length: MEMBERS }, (_, i) => ({
        workspace_id: 'ws_default', id: `m${String(i).padStart(5, '0')}`, name: null, email: null, phone: null, locale: null, timezone: null,
        webhook_url: `${rx.url}/m`, webhook_secret: sealed, webhook_disabled_at: null, webhook_disabled_reason: null,
        pushover_user_key: null, pushover_device: null, slack_webhook_url: null, discord_webhook_url: null, kakao_phone: null, address_disabled: null,
        metadata: null, created_at: now, updated_at: now,
      }));
      for (let i = 0; i < rows.length; i += 500) await h.herald.services.store.db.insertInto('recipients').values(rows.slice(i, i + 500)).execute();
      assert.equal((await h.api('PUT', '/v1/topics/everyone', { name: 'Everyone' })).status, 201);
      for (let i = 0; i < MEMBERS; i += 1000) {
        const res = await h.api('POST', '/v1/topics/everyone/members', { add: rows.slice(i, i + 1000).map((r) => r.id) });
        assert.equal(res.status, 200, res.text);
      }
    });
    after(async () => {
      await h?.stop();
      await rx?.close();
    });

    it(`a ${MEMBERS}-member topic: accepted at once, every member gets exactly one delivery`, async () => {
      const sent = await h.api('POST', '/v1/notifications', { to: { topic: 'everyone' }, title: 'Maintenance tonight', body: '22:00-23:00 UTC' });
      assert.equal(sent.status, 202, sent.text);
      assert.deepEqual(sent.body.deliveries, []);
      assert.deepEqual(sent.body.topic, { key: 'everyone', members: MEMBERS });
      // A direct send made while the topic fans out is not held up by it.
      await h.api('PUT', '/v1/recipients/solo', { webhook: { url: `${rx.url}/solo` } });
      const solo = await h.api('POST', '/v1/notifications', { to: 'solo', title: 'direct' });
      assert.equal(solo.status, 202);

      await waitFor(async () => (await h.api('GET', `/v1/notifications/${sent.body.id}`)).body.status === 'sent', 120_000, 'every member delivered');
      const n = (await h.api('GET', `/v1/notifications/${sent.body.id}`)).body;
      assert.deepEqual(n.topic, { key: 'everyone', state: 'done', recipients: MEMBERS });
      assert.equal(n.deliveries.length, MEMBERS);
      assert.equal(new Set(n.deliveries.map((d: any) => d.recipient)).size, MEMBERS, 'one delivery per member');
      const ids = rx.received.filter((r) => r.path === '/m').map((r) => r.headers['webhook-id']);
      assert.equal(new Set(ids).size, MEMBERS, 'every member got it');
      assert.ok(rx.received.some((r) => r.path === '/solo'));
    });

    it('an unknown topic is refused; cancelling a topic send stops its fan-out', async () => {
      const unknown = await h.api('POST', '/v1/notifications', { to: { topic: 'nobody' }, title: 'x' });
      assert.equal(unknown.status, 422);
      assert.equal(unknown.body.errors[0].path, 'body.to.topic');
      const later = await h.api('POST', '/v1/notifications', { to: { topic: 'everyone' }, title: 'x', send_at: new Date(Date.now() + 3_600_000).toISOString() });
      const cancelled = await h.api('DELETE', `/v1/notifications/${later.body.id}`);
      assert.equal(cancelled.status, 200);
      assert.equal(cancelled.body.status, 'cancelled');
      await waitFor(async () => (await h.api('GET', `/v1/notifications/${later.body.id}`)).body.topic.state === 'done', 10_000, 'fan-out stopped');
      const final = (await h.api('GET', `/v1/notifications/${later.body.id}`)).body;
      assert.ok(final.deliveries.every((d: any) => d.status === 'cancelled'), 'what was expanded before the cancel is cancelled');
      assert.ok(final.deliveries.length < MEMBERS || final.deliveries.every((d: any) => d.status === 'cancelled'));
    });
});
