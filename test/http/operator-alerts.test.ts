// Operator alerts (src/alerts) on both stores: the operator_webhook setting (secret generated,
// shown once, masked after, kept when omitted), and the alerts it receives through the delivery
// queue, each verified with the `standardwebhooks` package: delivery.exhausted, circuit.opened and
// circuit.closed (a fake Twilio failing, then recovering), provider.failing (the fake refusing
// the credentials; once per window), and no alert about an alert.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Received, type Receiver } from '../helpers/receiver.ts';
import { startFakeTwilio, type FakeTwilio } from '../fakes/twilio.ts';

const SECRET = 'whsec_' + Buffer.from('operator-alerts-test-secret-0123456789').toString('base64');

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`operator alerts (${store})`, () => {
    let h: TestHerald;
    let rx: Receiver;
    let twilio: FakeTwilio;
    /** The secret the operator webhook has now. */
    let secret = '';

    const alerts = (path = '/ops'): Received[] => rx.received.filter((r) => r.path === path);
    /** The verified bodies of the alerts of `type` received at `path`. */
    const verified = (type: string, path = '/ops'): { id: string; body: any }[] =>
      alerts(path)
        .map((r) => ({ id: String(r.headers['webhook-id']), body: rx.verify(r, secret) }))
        .filter((a) => a.body.type === type);

    before(async () => {
      rx = await startReceiver((r) => ({ status: r.path === '/ops-broken' || r.path === '/bad' ? 400 : 200 }));
      twilio = await startFakeTwilio();
      h = await startHeraldOn(store, { HERALD_CIRCUIT_THRESHOLD: '2', HERALD_CIRCUIT_COOLDOWN: '300ms' });
      assert.equal((await h.api('PUT', '/v1/recipients/bad', { webhook: { url: rx.url + '/bad' } })).status, 201);
      assert.equal((await h.api('PUT', '/v1/recipients/phone', { phone: '+14155550100' })).status, 201);
      assert.equal((await h.api('PUT', '/v1/providers/twilio', { config: twilio.config(), base_url: twilio.url })).status, 201);
    });
    after(async () => {
      await h?.stop();
      await rx?.close();
      await twilio?.close();
    });

    it('generates a whsec_ secret when none is given, shows it once, masks it after, and keeps it when omitted', async () => {
      const none = await h.api('GET', '/v1/settings');
      assert.equal(none.status, 200);
      assert.equal(none.body.operator_webhook, null);

      const put = await h.api('PUT', '/v1/settings', { operator_webhook: { url: rx.url + '/ops' } });
      assert.equal(put.status, 200, put.text);
      secret = put.body.operator_webhook.secret;
      assert.match(secret, /^whsec_[A-Za-z0-9+/]{32}$/);
      assert.equal(put.body.operator_webhook.url, rx.url + '/ops');
      assert.equal(put.body.operator_webhook.disabled_at, null);

      const got = await h.api('GET', '/v1/settings');
      assert.equal(got.body.operator_webhook.url, rx.url + '/ops');
      assert.equal(got.body.operator_webhook.secret, `${secret.slice(0, 10)}…`);
      assert.ok(!got.text.includes(secret), 'GET never shows the whole secret');

      const again = await h.api('PUT', '/v1/settings', { default_locale: 'ko', operator_webhook: { url: rx.url + '/ops' } });
      assert.equal(again.body.operator_webhook.secret, secret, 'omitted: the current secret is kept');
      assert.equal(again.body.default_locale, 'ko');

      const given = await h.api('PUT', '/v1/settings', { operator_webhook: { url: rx.url + '/ops', secret: SECRET } });
      assert.equal(given.body.operator_webhook.secret, SECRET);
      secret = SECRET;

      const audit = await h.api('GET', '/v1/audit');
      assert.ok(!audit.text.includes(SECRET), 'the audit log does not hold the secret');
      const list = await h.api('GET', '/v1/recipients');
      assert.deepEqual(list.body.data.map((r: any) => r.id).sort(), ['bad', 'phone'], 'the operator webhook is not a recipient');

      const removed = await h.api('PUT', '/v1/settings', { operator_webhook: null });
      assert.equal(removed.body.operator_webhook, null);
      assert.equal((await h.api('GET', '/v1/settings')).body.operator_webhook, null);
      assert.equal((await h.api('PUT', '/v1/settings', { operator_webhook: { url: rx.url + '/ops', secret: SECRET } })).status, 200);
    });

    it('an exhausted delivery produces a signed delivery.exhausted event, verified with standardwebhooks', async () => {
      const sent = await h.api('POST', '/v1/notifications', { to: 'bad', title: 'will fail' });
      assert.equal(sent.status, 202, sent.text);
      const dlv = sent.body.deliveries[0].id as string;
      const [alert] = await waitFor(() => {
        const found = verified('delivery.exhausted').filter((a) => a.body.data.delivery_id === dlv);
        return found.length > 0 && found;
      }, 15_000, 'the delivery.exhausted alert');
      assert.equal(alert!.body.data.notification_id, sent.body.id);
      assert.equal(alert!.body.data.channel, 'webhook');
      assert.equal(alert!.body.data.error_class, 'http_400');
      assert.ok(!Number.isNaN(Date.parse(alert!.body.timestamp)));
      // A wrong secret does not verify: the signature is real.
      const raw = alerts().find((r) => String(r.headers['webhook-id']) === alert!.id)!;
      assert.throws(() => rx.verify(raw, 'whsec_' + Buffer.from('another-secret-another-secret-01').toString('base64')));
      // The alert went through the queue: a delivery with an attempt log, sent.
      const d = await waitFor(async () => {
        const r = await h.api('GET', `/v1/notifications?limit=50`);
        return r.body.data.find((n: any) => n.kind === '_operator' && n.status === 'sent');
      }, 10_000, 'the alert notification sent');
      const n = await h.api('GET', `/v1/notifications/${d.id}`);
      assert.equal(n.body.deliveries[0].id, alert!.id, 'webhook-id is the alert delivery id');
      assert.equal(n.body.deliveries[0].channel, 'webhook');
      assert.equal(n.body.deliveries[0].attempt_log?.length ?? n.body.deliveries[0].attempts, 1);
    });

    it('an exhausted alert does not alert about itself', async () => {
      assert.equal((await h.api('PUT', '/v1/settings', { operator_webhook: { url: rx.url + '/ops-broken', secret: SECRET } })).status, 200);
      const sent = await h.api('POST', '/v1/notifications', { to: 'bad', title: 'fails, and so does the alert' });
      assert.equal(sent.status, 202);
      // The alert reaches the broken operator webhook, is refused (400) and goes to the DLQ.
      await waitFor(() => alerts('/ops-broken').length >= 1, 15_000, 'the alert at the broken webhook');
      await waitFor(async () => {
        const dlq = await h.api('GET', '/v1/dlq?limit=100');
        return dlq.body.data.some((e: any) => e.recipient === '_operator' || e.recipient_id === '_operator');
      }, 10_000, 'the exhausted alert in the DLQ');
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(alerts('/ops-broken').length, 1, 'one alert, none about the alert');
      assert.equal((await h.api('PUT', '/v1/settings', { operator_webhook: { url: rx.url + '/ops', secret: SECRET } })).status, 200);
    });

    it('announces circuit.opened and circuit.closed with the provider', async () => {
      twilio.failAll({ code: 20503 });
      const sent = await h.api('POST', '/v1/notifications', { to: 'phone', title: 'sms', channels: ['sms'] });
      assert.equal(sent.status, 202, sent.text);
      const [opened] = await waitFor(() => {
        const v = verified('circuit.opened');
        return v.length > 0 && v;
      }, 15_000, 'circuit.opened');
      assert.equal(opened!.body.data.provider, 'twilio');
      assert.equal(opened!.body.data.channel, 'sms');
      assert.equal(opened!.body.data.node, h.herald.services.workerId);
      twilio.failAll(undefined);
      const [closed] = await waitFor(() => {
        const v = verified('circuit.closed');
        return v.length > 0 && v;
      }, 15_000, 'circuit.closed');
      assert.equal(closed!.body.data.provider, 'twilio');
      const n = await waitFor(async () => {
        const r = await h.api('GET', `/v1/notifications/${sent.body.id}`);
        return r.body.status === 'sent' && r.body;
      }, 10_000, 'the sms sent after the circuit closed');
      assert.equal(n.deliveries[0].status, 'sent');
    });

    it('announces provider.failing when the credentials are refused, once per window', async () => {
      twilio.failAll({ code: 20003 });
      const first = await h.api('POST', '/v1/notifications', { to: 'phone', title: 'refused 1', channels: ['sms'] });
      const [failing] = await waitFor(() => {
        const v = verified('provider.failing');
        return v.length > 0 && v;
      }, 15_000, 'provider.failing');
      assert.equal(failing!.body.data.provider, 'twilio');
      assert.equal(failing!.body.data.channel, 'sms');
      assert.equal(failing!.body.data.error_class, 'auth');
      assert.equal(failing!.body.data.notification_id, first.body.id);
      const second = await h.api('POST', '/v1/notifications', { to: 'phone', title: 'refused 2', channels: ['sms'] });
      // Its delivery.exhausted alert comes; a second provider.failing does not.
      await waitFor(() => verified('delivery.exhausted').some((a) => a.body.data.notification_id === second.body.id), 15_000, 'the second exhausted alert');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(verified('provider.failing').length, 1);
      twilio.failAll(undefined);
    });
  });
}
