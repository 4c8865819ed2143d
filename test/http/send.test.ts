// The whole pipeline (HTTP accept, claim, signed webhook delivery, settle, status read-back) on
// each store: SQLite in a temporary data dir, and PostgreSQL with DATABASE_URL on a fresh schema.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`send a notification to a webhook (${dialect})`, () => {
    let h: TestHerald;
    let rx: Receiver;
    before(async () => {
      h = await startHeraldOn(dialect);
      rx = await startReceiver();
    });
    after(async () => {
      await h?.stop();
      await rx?.close();
    });

    it(`runs on ${dialect}`, () => {
      assert.equal(h.herald.services.store.dialect, dialect);
    });

    it('accepts, delivers a signed webhook, and records the attempt', async () => {
      const put = await h.api('PUT', '/v1/recipients/alice', { name: 'Alice', webhook: { url: `${rx.url}/alice` } });
      assert.equal(put.status, 201);
      const secret: string = put.body.webhook.secret;
      assert.match(secret, /^whsec_/);

      const sent = await h.api('POST', '/v1/notifications', { to: 'alice', title: 'Hello', body: 'World', data: { n: 1 } });
      assert.equal(sent.status, 202);
      assert.equal(sent.body.status, 'accepted');
      assert.equal(sent.body.deliveries.length, 1);
      const deliveryId = sent.body.deliveries[0].id;

      const got = await waitFor(() => rx.received.find((r) => r.headers['webhook-id'] === deliveryId), 5000, 'webhook');
      const payload = rx.verify(got, secret);
      assert.equal(payload.type, 'notification');
      assert.equal(payload.id, sent.body.id);
      assert.equal(payload.delivery_id, deliveryId);
      assert.deepEqual(payload.data, { n: 1 });

      const n = await waitFor(async () => {
        const r = await h.api('GET', `/v1/notifications/${sent.body.id}`);
        return r.body.status === 'sent' ? r : undefined;
      }, 5000, 'status sent');
      const d = n.body.deliveries[0];
      assert.equal(d.status, 'sent');
      assert.equal(d.attempt_log.length, 1);
      assert.equal(d.attempt_log[0].outcome, 'success');
      assert.equal(d.attempt_log[0].http_status, 200);
    });

    it('replays an idempotent request instead of accepting it twice', async () => {
      const headers = { 'idempotency-key': `once-${dialect}` };
      const first = await h.api('POST', '/v1/notifications', { to: 'alice', title: 'Once' }, headers);
      const again = await h.api('POST', '/v1/notifications', { to: 'alice', title: 'Once' }, headers);
      assert.equal(first.status, 202);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.equal(again.body.id, first.body.id);
      const reused = await h.api('POST', '/v1/notifications', { to: 'alice', title: 'Different' }, headers);
      assert.equal(reused.status, 422);
    });

    it('refuses a NUL character (PostgreSQL cannot store one) on every store alike: in text as a 422 naming the field, in the URL as a 400; sends alongside still go through', async () => {
      const [bad, good] = await Promise.all([
        h.api('POST', '/v1/notifications', { to: 'alice', title: 'nul \u0000 here', body: 'B' }),
        h.api('POST', '/v1/notifications', { to: 'alice', title: 'fine', body: 'B' }),
      ]);
      assert.equal(bad.status, 422, bad.text);
      assert.equal(bad.body.code, 'validation_failed');
      assert.deepEqual(bad.body.errors, [{ path: 'body.title', message: 'contains a NUL character (U+0000), which cannot be stored' }]);
      assert.equal(good.status, 202, good.text);
      const nested = await h.api('POST', '/v1/notifications', { to: 'alice', title: 'T', data: { list: ['ok', 'a\u0000'] } });
      assert.equal(nested.status, 422, nested.text);
      assert.equal(nested.body.errors[0].path, 'body.data.list.1');
      const put = await h.api('PUT', '/v1/recipients/nul', { name: 'x\u0000y' });
      assert.equal(put.status, 422, put.text);
      // The text "\u0000" (an escaped backslash, then "u0000") is no NUL.
      const text = await h.api('POST', '/v1/notifications', { to: 'alice', title: 'the escape \\u0000 as text' });
      assert.equal(text.status, 202, text.text);
      // Nor in the URL: a path segment or query value with %00 is a 400 before any route looks it up.
      for (const path of ['/v1/notifications/ntf_%00', '/v1/audit?action=a%00', '/v1/recipients/a%00b']) {
        const r = await h.api('GET', path);
        assert.equal(r.status, 400, `${path}: ${r.text}`);
        assert.equal(r.body.code, 'malformed_request');
      }
      const ready = await h.api('GET', '/healthz/ready');
      assert.equal(ready.status, 200);
    });
  });
}
