// Routing "first": one channel at a time, in priority order; the next only when the previous
// channel's deliveries all failed (exhausted, skipped, or reported undelivered later). On each store.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { startFakeSlack, type FakeSlack } from '../fakes/chat.ts';
import { startFakeTwilio } from '../fakes/twilio.ts';
import { createServer, type AddressInfo } from 'node:net';

describeOnStores('routing first', (store) => {
  let h: TestHerald;
  let rx: Receiver;
  let slack: FakeSlack;
  before(async () => {
    rx = await startReceiver((r) => ({ status: r.path.startsWith('/broken') ? 400 : 200 }));
    slack = await startFakeSlack();
    h = await startHeraldOn(store);
  });
  after(async () => {
    await h.stop();
    await rx.close();
    await slack.close();
  });

  const view = async (id: string) => (await h.api('GET', `/v1/notifications/${id}`)).body;
  const byChannel = (n: any) => Object.fromEntries(n.deliveries.map((d: any) => [d.channel, d]));

  it('the first channel succeeds: the next one is never sent (skipped, earlier_channel_sent)', async () => {
    const hook = slack.newWebhook();
    await h.api('PUT', '/v1/recipients/ok', { webhook: { url: `${rx.url}/ok` }, slack: { webhook_url: hook } });
    const sent = await h.api('POST', '/v1/notifications', { to: 'ok', title: 'hi', channels: ['webhook', 'slack'], routing: 'first' });
    assert.equal(sent.status, 202, sent.text);
    const accepted = Object.fromEntries(sent.body.deliveries.map((d: any) => [d.channel, d]));
    assert.equal(accepted.webhook.status, 'pending');
    assert.equal(accepted.slack.status, 'standby');
    await waitFor(async () => (await view(sent.body.id)).status === 'sent', 10_000, 'the notification to finish');
    const n = byChannel(await view(sent.body.id));
    assert.equal(n.webhook.status, 'sent');
    assert.deepEqual([n.slack.status, n.slack.reason, n.slack.waits_for], ['skipped', 'earlier_channel_sent', n.webhook.id]);
    assert.equal(slack.requestsTo(hook).length, 0);
  });

  it('the first channel fails for good: the next one goes', async () => {
    const hook = slack.newWebhook();
    await h.api('PUT', '/v1/recipients/broken', { webhook: { url: `${rx.url}/broken` }, slack: { webhook_url: hook } });
    const sent = await h.api('POST', '/v1/notifications', { to: 'broken', title: 'hi', channels: ['webhook', 'slack'], routing: 'first' });
    await waitFor(async () => !['accepted', 'in_progress'].includes((await view(sent.body.id)).status), 10_000, 'the notification to finish');
    const n = await view(sent.body.id);
    const d = byChannel(n);
    assert.equal(d.webhook.status, 'exhausted');
    assert.equal(d.slack.status, 'sent');
    assert.equal(n.status, 'partial');
    assert.equal(slack.requestsTo(hook).length, 1);
  });

  it('cancelling stops the waiting channels too', async () => {
    await h.api('PUT', '/v1/recipients/later', { webhook: { url: `${rx.url}/ok` }, slack: { webhook_url: slack.newWebhook() } });
    const sent = await h.api('POST', '/v1/notifications', { to: 'later', title: 'hi', channels: ['webhook', 'slack'], routing: 'first', send_at: new Date(Date.now() + 60_000).toISOString() });
    const cancelled = await h.api('DELETE', `/v1/notifications/${sent.body.id}`);
    assert.deepEqual(cancelled.body.deliveries.map((d: any) => d.status), ['cancelled', 'cancelled']);
  });

  it('a success reported undelivered later moves the chain on after all', async () => {
    const twilio = await startFakeTwilio();
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const p = await startHeraldOn(store, { PORT: String(port), HERALD_PUBLIC_URL: `http://127.0.0.1:${port}` });
    try {
      await p.api('PUT', '/v1/providers/twilio', { config: twilio.config(), base_url: twilio.url });
      const hook = slack.newWebhook();
      await p.api('PUT', '/v1/recipients/roamer', { phone: '+14155550199', slack: { webhook_url: hook } });
      const sent = await p.api('POST', '/v1/notifications', { to: 'roamer', body: 'code 1234', channels: ['sms', 'slack'], routing: 'first' });
      const get = async () => Object.fromEntries((await p.api('GET', `/v1/notifications/${sent.body.id}`)).body.deliveries.map((d: any) => [d.channel, d]));
      await waitFor(async () => (await get()).slack.status === 'skipped', 10_000, 'slack to stand down');
      const sms = (await get()).sms;
      assert.equal((await twilio.sendStatusCallback(sms.provider_message_id, 'undelivered', { errorCode: '30005' })).status, 204);
      await waitFor(async () => (await get()).slack.status === 'sent', 10_000, 'slack to go after all');
      assert.equal(slack.requestsTo(hook).length, 1);
    } finally {
      await p.stop();
      await twilio.close();
    }
  });
});
