// The vendor channels end to end, through the HTTP API of a real Herald: providers, devices,
// per-device fan-out and disablement, vendor callbacks, receipts, fallback, gone addresses and the
// circuit breaker. Each vendor is its fake from test/fakes (real HTTP servers that validate requests
// the way the vendor does). On each store.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { describeOnStores, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { fcmErrors, startFakeFcm, type FakeFcm } from '../fakes/fcm.ts';
import { FakePushService } from '../fakes/webpush.ts';
import { startFakeTwilio, type FakeTwilio } from '../fakes/twilio.ts';
import { pushoverKey, startFakePushover, type FakePushover } from '../fakes/pushover.ts';
import { FakeKakao } from '../fakes/kakao.ts';
import { startFakeSlack, type FakeSlack } from '../fakes/chat.ts';

const PROJECT = 'herald-it';
const EMAIL = 'sender@herald-it.iam.gserviceaccount.com';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const RSA_PEM = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function serviceAccount(fcm: FakeFcm) {
  return { type: 'service_account', project_id: PROJECT, private_key_id: 'k1', private_key: RSA_PEM, client_email: EMAIL, token_uri: fcm.tokenUri };
}

/** Waits until every delivery of the notification is terminal; returns the notification. */
async function settled(h: TestHerald, id: string, terminal = ['sent', 'exhausted', 'skipped', 'discarded', 'delivered', 'read', 'acknowledged', 'undelivered'], deadlineMs = 15_000): Promise<any> {
  let last: any;
  await waitFor(async () => {
    last = (await h.api('GET', `/v1/notifications/${id}`)).body;
    // The notification's status too: GET reads it and the deliveries in separate queries, so for a
    // moment it can lag deliveries that are already final.
    return last.deliveries.every((d: any) => terminal.includes(d.status)) && !['accepted', 'in_progress'].includes(last.status);
  }, deadlineMs, `notification ${id} to settle`);
  return last;
}

describeOnStores('push devices: fan-out, unregistered devices disabled and skipped', (store) => {
  let h: TestHerald;
  let fcm: FakeFcm;
  let push: FakePushService;

  before(async () => {
    fcm = await startFakeFcm({ projectId: PROJECT, clientEmail: EMAIL, publicKey: rsa.publicKey });
    push = await FakePushService.start();
    h = await startHeraldOn(store);
  });
  after(async () => {
    await h.stop();
    await fcm.close();
    await push.close();
  });

  it('one notification, three devices on two platforms, one unregistered: two sent, one disabled, and the next notification skips it', async () => {
    assert.equal((await h.api('PUT', '/v1/providers/fcm', { config: { service_account: serviceAccount(fcm) }, base_url: fcm.url })).status, 201);
    const wp = await h.api('PUT', '/v1/providers/webpush', { config: { subject: 'mailto:ops@example.com' } });
    assert.equal(wp.status, 201, wp.text);
    assert.match(wp.body.config.vapid_private_key, /^…[A-Za-z0-9_-]{4}$/, 'the generated private key is masked');
    const { public_key } = (await h.api('GET', '/v1/providers/webpush/public-key')).body;
    assert.equal(public_key, wp.body.config.vapid_public_key);

    assert.equal((await h.api('PUT', '/v1/recipients/alice', { name: 'Alice' })).status, 201);
    const phone = await h.api('POST', '/v1/recipients/alice/devices', { platform: 'fcm', token: 'fcm-token-phone', label: 'Pixel' });
    const tablet = await h.api('POST', '/v1/recipients/alice/devices', { platform: 'fcm', token: 'fcm-token-old-tablet' });
    const browser = push.subscribe({ applicationServerKey: public_key });
    const laptop = await h.api('POST', '/v1/recipients/alice/devices', { platform: 'webpush', subscription: browser });
    assert.deepEqual([phone.status, tablet.status, laptop.status], [201, 201, 201]);
    fcm.script('fcm-token-old-tablet', fcmErrors.unregistered());

    const first = await h.api('POST', '/v1/notifications', { to: 'alice', title: 'Deploy', body: 'v42 is live' });
    assert.equal(first.status, 202, first.text);
    assert.deepEqual(first.body.deliveries.map((d: any) => [d.channel, d.device]).sort(), [
      ['fcm', phone.body.id],
      ['fcm', tablet.body.id],
      ['webpush', laptop.body.id],
    ].sort());
    const n1 = await settled(h, first.body.id);
    const byDevice = new Map(n1.deliveries.map((d: any) => [d.device, d]));
    assert.equal((byDevice.get(phone.body.id) as any).status, 'sent');
    assert.equal((byDevice.get(laptop.body.id) as any).status, 'sent');
    assert.equal((byDevice.get(tablet.body.id) as any).status, 'exhausted');
    assert.equal((byDevice.get(tablet.body.id) as any).error_class, 'unregistered');
    assert.equal(n1.status, 'partial');
    assert.deepEqual(push.payloadsFor(browser).map((p: any) => [p.title, p.body]), [['Deploy', 'v42 is live']], 'the browser decrypts what was sent');

    const devices = (await h.api('GET', '/v1/recipients/alice/devices')).body.data;
    const disabled = devices.filter((d: any) => d.disabled_at !== null).map((d: any) => d.id);
    assert.deepEqual(disabled, [tablet.body.id]);
    assert.ok(!JSON.stringify(devices).includes('fcm-token-old-tablet'), 'tokens are masked');

    const second = await h.api('POST', '/v1/notifications', { to: 'alice', title: 'Again', body: 'v43' });
    assert.equal(second.status, 202);
    assert.deepEqual(second.body.deliveries.map((d: any) => d.device).sort(), [phone.body.id, laptop.body.id].sort());
    const n2 = await settled(h, second.body.id);
    assert.equal(n2.status, 'sent');
    assert.equal(fcm.sends.filter((s) => s.body.message.token === 'fcm-token-old-tablet').length, 1, 'the disabled device was tried once only');

    // Registering the token again re-enables it.
    const again = await h.api('POST', '/v1/recipients/alice/devices', { platform: 'fcm', token: 'fcm-token-old-tablet' });
    assert.equal(again.status, 200);
    assert.equal(again.body.id, tablet.body.id);
    assert.equal(again.body.disabled_at, null);
  });

  it('the same token registered by another recipient moves to its newest owner', async () => {
    await h.api('PUT', '/v1/recipients/bob', {});
    await h.api('PUT', '/v1/recipients/carol', {});
    const a = await h.api('POST', '/v1/recipients/bob/devices', { platform: 'fcm', token: 'shared-phone' });
    const b = await h.api('POST', '/v1/recipients/carol/devices', { platform: 'fcm', token: 'shared-phone' });
    assert.equal(a.status, 201);
    assert.equal(b.status, 200);
    assert.equal(b.body.id, a.body.id);
    assert.equal(b.body.recipient, 'carol');
    assert.deepEqual((await h.api('GET', '/v1/recipients/bob/devices')).body.data, []);
    const refused = await h.api('POST', '/v1/notifications', { to: 'bob', title: 't', channels: ['fcm'] });
    assert.equal(refused.status, 422);
    assert.equal(refused.body.code, 'no_channel');
    assert.equal((await h.api('DELETE', `/v1/recipients/carol/devices/${a.body.id}`)).status, 204);
    assert.equal((await h.api('DELETE', `/v1/recipients/carol/devices/${a.body.id}`)).status, 404);
  });

  it('refuses malformed devices with a clear 422', async () => {
    const bad = [
      { platform: 'apns', token: 'not-hex' },
      { platform: 'webpush', token: 'x' },
      { platform: 'fcm' },
      { platform: 'webpush', subscription: { endpoint: 'https://push.example/1', keys: { p256dh: 'AAAA', auth: 'AAAAAAAAAAAAAAAAAAAAAA' } } },
      { platform: 'pager', token: 'x' },
    ];
    for (const body of bad) {
      const res = await h.api('POST', '/v1/recipients/alice/devices', body);
      assert.equal(res.status, 422, JSON.stringify(body));
      assert.equal(res.body.code, 'validation_failed');
    }
    assert.equal((await h.api('POST', '/v1/recipients/nobody/devices', { platform: 'fcm', token: 't' })).status, 404);
  });
});

describeOnStores('providers API', (store) => {
  let h: TestHerald;
  before(async () => {
    h = await startHeraldOn(store);
  });
  after(() => h.stop());

  it('stores credentials sealed and shows them masked; validates each provider by its own schema', async () => {
    const token = 'tw-secret-auth-token-0123456789';
    const bad = await h.api('PUT', '/v1/providers/twilio', { config: { account_sid: 'AC' + '0'.repeat(32), auth_token: token } });
    assert.equal(bad.status, 422, 'twilio needs from or messaging_service_sid');
    const config = { account_sid: 'AC' + 'a'.repeat(32), auth_token: token, from: '+15005550006' };
    const created = await h.api('PUT', '/v1/providers/twilio', { config, base_url: 'https://api.twilio.example' });
    assert.equal(created.status, 201);
    assert.equal(created.body.channel, 'sms');
    assert.equal(created.body.base_url, 'https://api.twilio.example');
    assert.notEqual(created.body.config.auth_token, token);
    assert.equal((await h.api('PUT', '/v1/providers/twilio', { config })).status, 200);

    const list = await h.api('GET', '/v1/providers');
    assert.deepEqual(list.body.data.map((p: any) => [p.provider, p.configured]), [
      ['fcm', false], ['apns', false], ['webpush', false], ['pushover', false], ['twilio', true], ['kakao', false], ['smtp', false],
    ]);
    assert.ok(!list.text.includes(token), 'the secret never comes back');
    const row = await h.herald.services.store.db.selectFrom('providers').select('config').executeTakeFirstOrThrow();
    assert.ok(!row.config.includes(token), 'sealed at rest');

    const smtp = await h.api('PUT', '/v1/providers/smtp', { config: { url: 'smtp://mailer:hunter2@mail.example:587', from: 'Acme <no-reply@acme.example>' } });
    assert.equal(smtp.body.config.url, 'smtp://mailer:****@mail.example:587');

    assert.equal((await h.api('DELETE', '/v1/providers/twilio')).status, 204);
    assert.equal((await h.api('DELETE', '/v1/providers/twilio')).status, 404);
    assert.equal((await h.api('PUT', '/v1/providers/telegraph', { config: {} })).status, 404);
    const audit = (await h.api('GET', '/v1/audit')).body.data.map((e: any) => e.action);
    assert.ok(audit.includes('provider.put') && audit.includes('provider.delete'));
  });

  it('refuses credentials that would fail every send: keys that do not parse, a VAPID pair that does not match', async () => {
    const sa = { type: 'service_account', project_id: 'p', private_key_id: 'k', private_key: '-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n', client_email: 'a@p.iam.gserviceaccount.com' };
    const fcmBad = await h.api('PUT', '/v1/providers/fcm', { config: { service_account: sa } });
    assert.equal(fcmBad.status, 422, fcmBad.text);
    assert.match(fcmBad.body.errors[0].message, /service_account.private_key is not a usable PEM private key/);
    const apns = { team_id: 'ABCDE12345', key_id: 'KEY1234567', topic: 'com.example.app', private_key: RSA_PEM };
    const apnsBad = await h.api('PUT', '/v1/providers/apns', { config: apns });
    assert.equal(apnsBad.status, 422, apnsBad.text);
    assert.match(apnsBad.body.errors[0].message, /P-256/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    assert.equal((await h.api('PUT', '/v1/providers/apns', { config: { ...apns, private_key: ec } })).status, 201);
    const a = (await h.api('PUT', '/v1/providers/webpush', { config: { subject: 'mailto:ops@example.com' } })).body.config;
    const b = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'jwk' });
    const otherPublic = Buffer.concat([Buffer.from([4]), Buffer.from(b.x!, 'base64url'), Buffer.from(b.y!, 'base64url')]).toString('base64url');
    const stored = await h.herald.services.providers.get('ws_default', 'webpush');
    const mismatched = await h.api('PUT', '/v1/providers/webpush', { config: { subject: 'mailto:ops@example.com', vapid_public_key: otherPublic, vapid_private_key: stored!.config.vapid_private_key } });
    assert.equal(mismatched.status, 422, mismatched.text);
    assert.match(mismatched.body.errors[0].message, /not the public key of vapid_private_key/);
    assert.equal((await h.api('GET', '/v1/providers/webpush')).body.config.vapid_public_key, a.vapid_public_key, 'nothing changed');
  });

  it('needs the admin scope to change credentials', async () => {
    const key = (await h.api('POST', '/v1/keys', { name: 'sender', scopes: ['send', 'read'] })).body.key;
    const res = await fetch(`${h.url}/v1/providers/pushover`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ config: { app_token: pushoverKey() } }),
    });
    assert.equal(res.status, 403);
  });
});

describeOnStores('SMS over Twilio with signed status callbacks', (store) => {
  let h: TestHerald;
  let twilio: FakeTwilio;
  before(async () => {
    twilio = await startFakeTwilio();
    const port = await freePort();
    h = await startHeraldOn(store, { PORT: String(port), HERALD_PUBLIC_URL: `http://127.0.0.1:${port}` });
    await h.api('PUT', '/v1/providers/twilio', { config: twilio.config(), base_url: twilio.url });
  });
  after(async () => {
    await h.stop();
    await twilio.close();
  });

  it('sends, then moves the delivery to delivered on a verified callback; forged and replayed callbacks change nothing', async () => {
    await h.api('PUT', '/v1/recipients/dana', { phone: '+14155550123' });
    const sent = await h.api('POST', '/v1/notifications', { to: 'dana', title: 'Code', body: 'Your code is 123456', channels: ['sms'] });
    assert.equal(sent.status, 202, sent.text);
    const n = await settled(h, sent.body.id);
    const d = n.deliveries[0];
    assert.equal(d.status, 'sent');
    const message = twilio.messages.get(d.provider_message_id)!;
    assert.ok(message, 'the delivery records the Twilio message sid');
    assert.match(message.statusCallback ?? '', new RegExp(`^http://127\\.0\\.0\\.1:\\d+/v1/callbacks/twilio\\?delivery=${d.id}&token=`));

    // A callback signed with another auth token is refused.
    const forged = await twilio.sendStatusCallback(d.provider_message_id, 'undelivered', { token: 'not-the-auth-token' });
    assert.equal(forged.status, 403);
    // A URL whose token was tampered with is refused, even when correctly signed.
    const tampered = await twilio.sendStatusCallback(d.provider_message_id, 'undelivered', { url: message.statusCallback!.replace(/token=.{4}/, 'token=AAAA') });
    assert.equal(tampered.status, 403);

    assert.equal((await twilio.sendStatusCallback(d.provider_message_id, 'sent')).status, 204);
    assert.equal((await twilio.sendStatusCallback(d.provider_message_id, 'delivered')).status, 204);
    assert.equal((await twilio.sendStatusCallback(d.provider_message_id, 'sent')).status, 204, 'a late report is accepted and ignored');
    const after1 = (await h.api('GET', `/v1/notifications/${sent.body.id}`)).body;
    assert.equal(after1.deliveries[0].status, 'delivered');
    assert.equal(after1.deliveries[0].status_detail.twilio_status, 'delivered');
    assert.equal(after1.status, 'sent');
  });

  it('POST /v1/providers/twilio/test makes one real attempt and answers the vendor\'s verdict', async () => {
    await h.api('PUT', '/v1/recipients/tess', { phone: '+14155550125' });
    const ok = await h.api('POST', '/v1/providers/twilio/test', { to: 'tess' });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.ok, true);
    assert.ok(twilio.messages.has(ok.body.provider_message_id));
    twilio.failTo('+14155550125', { code: 21211 });
    const bad = await h.api('POST', '/v1/providers/twilio/test', { to: 'tess', body: 'again' });
    assert.deepEqual([bad.body.ok, bad.body.outcome, bad.body.http_status], [false, 'permanent', 400]);
    assert.match(bad.body.error, /not a valid phone number/);
    assert.equal((await h.api('POST', '/v1/providers/twilio/test', { to: 'nobody' })).status, 404);
    assert.equal((await h.api('POST', '/v1/providers/fcm/test', { to: 'tess' })).status, 404, 'fcm is not configured');
    const none = await h.api('GET', '/v1/notifications?recipient=tess');
    assert.deepEqual(none.body.data, [], 'a test is not a notification');
  });

  it('HERALD_THROUGHPUT paces a lane: 10 SMS at 5/s take about a second', async () => {
    const paced = await startHeraldOn(store, { HERALD_THROUGHPUT: 'sms:5' });
    try {
      await paced.api('PUT', '/v1/providers/twilio', { config: twilio.config(), base_url: twilio.url });
      await paced.api('PUT', '/v1/recipients/pat', { phone: '+14155550126' });
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push((await paced.api('POST', '/v1/notifications', { to: 'pat', body: `m${i}`, channels: ['sms'] })).body.id);
      for (const id of ids) await settled(paced, id);
      const starts = (
        await paced.herald.services.store.db
          .selectFrom('attempt_log')
          .innerJoin('deliveries', 'deliveries.id', 'attempt_log.delivery_id')
          .select('attempt_log.started_at')
          .where('deliveries.notification_id', 'in', ids)
          .execute()
      ).map((r) => r.started_at);
      assert.equal(starts.length, 10);
      // A bucket of 5 tokens refilled at 5/s: the 10th attempt cannot start before ~1 s after the first.
      assert.ok(Math.max(...starts) - Math.min(...starts) >= 800, `spread ${Math.max(...starts) - Math.min(...starts)} ms`);
    } finally {
      await paced.stop();
    }
  });

  it('an undelivered report fails the notification and keeps the error code', async () => {
    await h.api('PUT', '/v1/recipients/erin', { phone: '+14155550124' });
    const sent = await h.api('POST', '/v1/notifications', { to: 'erin', body: 'hello', channels: ['sms'] });
    const d = (await settled(h, sent.body.id)).deliveries[0];
    assert.equal((await twilio.sendStatusCallback(d.provider_message_id, 'undelivered', { errorCode: '30003' })).status, 204);
    const n = (await h.api('GET', `/v1/notifications/${sent.body.id}`)).body;
    assert.equal(n.deliveries[0].status, 'undelivered');
    assert.equal(n.deliveries[0].status_detail.error_code, '30003');
    assert.equal(n.status, 'failed');
  });
});

describeOnStores('Pushover emergency priority: receipts followed until acknowledged', (store) => {
  let h: TestHerald;
  let po: FakePushover;
  const app = pushoverKey('a');
  before(async () => {
    po = await startFakePushover();
    po.registerApp(app);
    const port = await freePort();
    h = await startHeraldOn(store, { PORT: String(port), HERALD_PUBLIC_URL: `http://127.0.0.1:${port}`, HERALD_RECEIPT_POLL_INTERVAL: '5s' });
    await h.api('PUT', '/v1/providers/pushover', { config: { app_token: app }, base_url: po.url });
  });
  after(async () => {
    await h.stop();
    await po.close();
  });

  const emergency = { pushover: { priority: 2, retry: 30, expire: 3600 } };

  it('the callback records who acknowledged', async () => {
    const user = pushoverKey('u');
    po.registerUser(user, ['phone']);
    await h.api('PUT', '/v1/recipients/oncall', { pushover: { user_key: user } });
    const sent = await h.api('POST', '/v1/notifications', { to: 'oncall', title: 'DB down', body: 'primary unreachable', channels: ['pushover'], channel_options: emergency });
    assert.equal(sent.status, 202, sent.text);
    const d = (await settled(h, sent.body.id)).deliveries[0];
    assert.equal(d.status, 'sent');
    const receipt = po.messages.at(-1)!.receipt!;
    assert.ok(receipt);
    await po.acknowledge(receipt, { user, device: 'phone' });
    const n = await settled(h, sent.body.id, ['acknowledged']);
    assert.equal(n.deliveries[0].status_detail.acknowledged_by, user);
    assert.equal(n.deliveries[0].status_detail.acknowledged_by_device, 'phone');
    assert.equal(n.status, 'sent');
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`herald_pushover_app_remaining\\{workspace="[^"]+"\\} ${po.limits.remaining}`));
  });

  it('without a callback, the receipt is polled until acknowledged', async () => {
    const user = pushoverKey('v');
    po.registerUser(user, ['watch']);
    await h.api('PUT', '/v1/recipients/oncall2', { pushover: { user_key: user } });
    const sent = await h.api('POST', '/v1/notifications', { to: 'oncall2', title: 'Disk full', channels: ['pushover'], channel_options: emergency });
    await settled(h, sent.body.id);
    const receipt = po.messages.at(-1)!.receipt!;
    po.receipts.get(receipt)!.callback = null; // Pushover lost the callback: only polling can tell.
    await po.acknowledge(receipt, { user, device: 'watch' });
    const n = await settled(h, sent.body.id, ['acknowledged']);
    assert.equal(n.deliveries[0].status_detail.acknowledged_by_device, 'watch');
    assert.ok(po.requests.some((r) => r.method === 'GET' && r.path === `/1/receipts/${receipt}.json`), 'the receipts API was polled');
  });

  it('refuses emergency options without retry and expire at accept', async () => {
    const res = await h.api('POST', '/v1/notifications', { to: 'oncall', title: 'x', channels: ['pushover'], channel_options: { pushover: { priority: 2 } } });
    assert.equal(res.status, 422);
    assert.equal(res.body.code, 'validation_failed');
  });
});

describeOnStores('Kakao AlimTalk falls back to SMS when rejected', (store) => {
  let h: TestHerald;
  let kakao: FakeKakao;
  let twilio: FakeTwilio;
  before(async () => {
    kakao = await FakeKakao.start({ appKey: 'app-key-1', secretKey: 'nhn-secret', senderKey: 's'.repeat(40), templates: { WELCOME: { content: 'Welcome, #{name}!' } } });
    twilio = await startFakeTwilio();
    h = await startHeraldOn(store);
    await h.api('PUT', '/v1/providers/kakao', { config: { app_key: 'app-key-1', secret_key: 'nhn-secret', sender_key: 's'.repeat(40) }, base_url: kakao.baseUrl });
    await h.api('PUT', '/v1/providers/twilio', { config: twilio.config(), base_url: twilio.url });
    await h.api('PUT', '/v1/recipients/minji', { phone: '+821012345678', kakao: { phone: '+821012345678' } });
  });
  after(async () => {
    await h.stop();
    await kakao.close();
    await twilio.close();
  });

  it('AlimTalk goes out with the template and its variables', async () => {
    const sent = await h.api('POST', '/v1/notifications', { to: 'minji', title: 'Welcome', body: 'Welcome, Minji!', channels: ['kakao'], channel_options: { kakao: { template_code: 'WELCOME', variables: { name: 'Minji' } } } });
    const n = await settled(h, sent.body.id);
    assert.equal(n.deliveries[0].status, 'sent');
    assert.equal(kakao.messages.at(-1)!.templateCode, 'WELCOME');
    assert.equal(kakao.messages.at(-1)!.content, 'Welcome, Minji!');
  });

  it('an unknown template with fallback allowed: the kakao delivery is skipped and an SMS goes instead', async () => {
    const before = twilio.messages.size;
    const sent = await h.api('POST', '/v1/notifications', { to: 'minji', title: 'Hi', body: 'Your parcel arrives today', channels: ['kakao'], fallback: true, channel_options: { kakao: { template_code: 'NOPE' } } });
    const n = await settled(h, sent.body.id);
    const kakaoD = n.deliveries.find((d: any) => d.channel === 'kakao');
    const smsD = n.deliveries.find((d: any) => d.channel === 'sms');
    assert.equal(kakaoD.status, 'skipped');
    assert.equal(kakaoD.reason, 'fallback:sms');
    assert.ok(smsD, 'an SMS delivery was created');
    assert.equal(smsD.status, 'sent');
    assert.equal(n.status, 'sent');
    assert.equal(twilio.messages.size, before + 1);
    assert.match(String(twilio.messages.get(smsD.provider_message_id)!.resource.body), /parcel arrives today/);
  });

  it('without fallback the rejection goes to the dead-letter queue', async () => {
    const sent = await h.api('POST', '/v1/notifications', { to: 'minji', body: 'x', channels: ['kakao'], channel_options: { kakao: { template_code: 'NOPE' } } });
    const n = await settled(h, sent.body.id);
    assert.deepEqual(n.deliveries.map((d: any) => [d.channel, d.status]), [['kakao', 'exhausted']]);
  });
});

describeOnStores('gone chat webhooks and the circuit breaker', (store) => {
  let slack: FakeSlack;
  let fcm: FakeFcm;
  before(async () => {
    slack = await startFakeSlack();
    fcm = await startFakeFcm({ projectId: PROJECT, clientEmail: EMAIL, publicKey: rsa.publicKey });
  });
  after(async () => {
    await slack.close();
    await fcm.close();
  });

  it('a Slack webhook of an archived channel is disabled; PUT re-enables it', async () => {
    const h = await startHeraldOn(store);
    try {
      const hook = slack.newWebhook();
      slack.setState(hook, 'channel_is_archived');
      await h.api('PUT', '/v1/recipients/team', { slack: { webhook_url: hook } });
      const sent = await h.api('POST', '/v1/notifications', { to: 'team', title: 'Release', channels: ['slack'] });
      const n = await settled(h, sent.body.id);
      assert.equal(n.deliveries[0].status, 'exhausted');
      const r = (await h.api('GET', '/v1/recipients/team')).body;
      assert.deepEqual(r.disabled_addresses, ['slack']);
      assert.ok(!JSON.stringify(r).includes(new URL(hook).pathname.slice(-12)), 'the webhook URL is masked');
      const refused = await h.api('POST', '/v1/notifications', { to: 'team', title: 'Again', channels: ['slack'] });
      assert.equal(refused.status, 422);
      await h.api('PUT', '/v1/recipients/team', { slack: { webhook_url: hook } });
      assert.deepEqual((await h.api('GET', '/v1/recipients/team')).body.disabled_addresses, []);
    } finally {
      await h.stop();
    }
  });

  it('repeated retryable failures open the circuit: due deliveries wait without spending attempts until a probe succeeds', async () => {
    const h = await startHeraldOn(store, { HERALD_CIRCUIT_THRESHOLD: '3', HERALD_CIRCUIT_COOLDOWN: '5s', HERALD_CONCURRENCY: 'fcm:1', HERALD_RETRY_SCHEDULE: '50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms' });
    try {
      await h.api('PUT', '/v1/providers/fcm', { config: { service_account: serviceAccount(fcm) }, base_url: fcm.url });
      await h.api('PUT', '/v1/recipients/frank', {});
      await h.api('POST', '/v1/recipients/frank/devices', { platform: 'fcm', token: 'flaky-device' });
      fcm.script('flaky-device', fcmErrors.unavailable());
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await h.api('POST', '/v1/notifications', { to: 'frank', title: `n${i}` })).body.id);

      await waitFor(async () => (await h.api('GET', '/v1/providers/fcm')).body.circuit === 'open', 10_000, 'the circuit to open');
      const sendsWhenOpened = fcm.sends.length;
      assert.equal(sendsWhenOpened, 3, 'three failures opened it');
      const metrics = await (await fetch(`${h.url}/metrics`)).text();
      assert.match(metrics, /herald_circuit_state\{[^}]*channel="fcm"[^}]*\} 2/);
      // While open (cooldown 5 s, far longer than this check even on a busy machine) nothing is
      // attempted, though retries fall due every 50 ms.
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(fcm.sends.length, sendsWhenOpened);
      const waiting = await h.herald.services.store.db.selectFrom('deliveries').select(['attempts']).where('notification_id', 'in', ids).execute();
      assert.equal(waiting.reduce((sum, d) => sum + d.attempts, 0), 3, 'no attempt was spent while open');

      fcm.script('flaky-device', (n) => ({ status: 200, body: { name: `projects/${PROJECT}/messages/ok-${n}` } }));
      for (const id of ids) assert.equal((await settled(h, id, undefined, 30_000)).status, 'sent');
      assert.equal((await h.api('GET', '/v1/providers/fcm')).body.circuit, 'closed');
      assert.equal(fcm.sends.length, 3 + 4, 'one probe, then the rest');
    } finally {
      await h.stop();
    }
  });
});
