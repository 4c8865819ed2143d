// The Web Push channel against a fake push service that verifies VAPID and decrypts every message as
// a browser would (test/fakes/webpush.ts, its own RFC 8291 implementation, proven here on RFC 8291's
// example first).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Value } from 'typebox/value';
import { DeliveryError, type DeliveryJob, type ProviderCredentials } from '../../src/channels/channel.ts';
import {
  generateVapidKeys,
  WEBPUSH_MAX_PLAINTEXT_BYTES,
  WEBPUSH_SECRET_FIELDS,
  WebpushChannel,
  WebpushOptions,
  WebpushProviderConfig,
} from '../../src/channels/webpush.ts';
import { parseCidrList } from '../../src/net/address-policy.ts';
import { SafeHttp } from '../../src/net/safe-http.ts';
import { decryptAes128gcm, FakePushService, type BrowserSubscription } from '../fakes/webpush.ts';

const b64 = (s: string) => Buffer.from(s, 'base64url');

describe('fake push service decryption (RFC 8291)', () => {
  // RFC 8291 section 5 and Appendix A.
  const vector = {
    uaPublic: 'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4',
    uaPrivate: 'q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94',
    authSecret: 'BTBZMqHH6r4Tts7J_aSIgg',
    body:
      'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml' +
      'mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT' +
      'pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN',
  };
  const ua = { privateKey: b64(vector.uaPrivate), publicKey: b64(vector.uaPublic), authSecret: b64(vector.authSecret) };

  test('decrypts the RFC example to its plaintext', () => {
    assert.equal(decryptAes128gcm(b64(vector.body), ua).toString('utf8'), 'When I grow up, I want to be a watermelon');
  });

  test('rejects a tampered message, a wrong auth secret and a truncated one', () => {
    const tampered = b64(vector.body);
    tampered[tampered.length - 20]! ^= 1;
    assert.throws(() => decryptAes128gcm(tampered, ua));
    assert.throws(() => decryptAes128gcm(b64(vector.body), { ...ua, authSecret: Buffer.alloc(16) }));
    assert.throws(() => decryptAes128gcm(b64(vector.body).subarray(0, 90), ua));
  });
});

describe('WebpushChannel', () => {
  let fake: FakePushService;
  let http: SafeHttp;
  let channel: WebpushChannel;
  let clock = Date.now();
  const keys = generateVapidKeys();
  const provider: ProviderCredentials = {
    provider: 'webpush',
    config: { vapid_public_key: keys.publicKey, vapid_private_key: keys.privateKey, subject: 'mailto:ops@example.com' },
    baseUrl: null,
    version: 'v1',
  };
  let n = 0;

  function job(sub: BrowserSubscription | undefined, over: { options?: Record<string, unknown>; body?: string; title?: string; data?: unknown; provider?: ProviderCredentials | null } = {}): DeliveryJob {
    n++;
    return {
      deliveryId: `dlv_${n}`,
      notificationId: `ntf_${n}`,
      workspaceId: 'ws_1',
      channel: 'webpush',
      attempt: 1,
      notification: {
        kind: 'deploy',
        title: over.title ?? 'Deploy finished',
        body: over.body ?? 'All green',
        data: over.data ?? { build: 42 },
        createdAt: Date.now(),
        options: over.options ?? {},
        fallback: false,
      },
      recipient: {
        id: 'alice', name: null, email: null, phone: null, locale: null, timezone: null, webhookUrl: null, webhookSecret: null,
        pushover: null, slackWebhookUrl: null, discordWebhookUrl: null, kakaoPhone: null,
      },
      ...(sub ? { device: { id: `dev_${n}`, platform: 'webpush' as const, token: sub.endpoint, subscription: sub, app: null } } : {}),
      ...(over.provider === null ? {} : { provider: over.provider ?? provider }),
    };
  }

  const signal = () => AbortSignal.timeout(10_000);

  async function failure(p: Promise<unknown>): Promise<DeliveryError> {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof DeliveryError, `expected a DeliveryError, got ${err}`);
      return err;
    }
    assert.fail('expected the delivery to fail');
  }

  before(async () => {
    fake = await FakePushService.start();
    http = new SafeHttp({ allow: parseCidrList('127.0.0.0/8,::1/128'), timeoutMs: 5000 });
    channel = new WebpushChannel({ http, now: () => clock });
  });

  after(async () => {
    await channel.close();
    await http.close();
    await fake.close();
  });

  test('delivers an encrypted, VAPID-signed message the browser can read', async () => {
    const sub = fake.subscribe({ applicationServerKey: keys.publicKey });
    const j = job(sub);
    const res = await channel.deliver(j, signal());

    const [req] = fake.requestsFor(sub);
    assert.ok(req);
    assert.equal(req.status, 201, req.refused);
    assert.equal(res.httpStatus, 201);
    assert.match(res.providerMessageId ?? '', new RegExp(`^${fake.origin}/m/[0-9a-f-]{36}$`));
    assert.deepEqual(fake.payloadsFor(sub), [{ title: 'Deploy finished', body: 'All green', data: { build: 42 }, id: j.notificationId, delivery_id: j.deliveryId }]);
    assert.equal(req.headers['content-encoding'], 'aes128gcm');
    assert.equal(req.headers['ttl'], '86400');
    assert.equal(req.headers['urgency'], 'normal');
    assert.equal(req.headers['topic'], undefined);
    assert.equal(req.vapid?.k, keys.publicKey);
    assert.equal(req.vapid?.claims.aud, fake.origin);
    assert.equal(req.vapid?.claims.sub, 'mailto:ops@example.com');
    const exp = req.vapid?.claims.exp as number;
    const nowS = Math.floor(clock / 1000);
    assert.ok(exp > nowS + 11 * 3600 && exp <= nowS + 12 * 3600 + 1, `exp ${exp} is 12 h ahead of ${nowS}`);
  });

  test('sends channel options as headers and payload fields', async () => {
    const sub = fake.subscribe();
    const options = { ttl: 60, urgency: 'high', topic: 'order-42_status', icon: 'https://example.com/i.png', badge: 'https://example.com/b.png', url: 'https://example.com/orders/42', tag: 'order-42' };
    const j = job(sub, { options });
    await channel.deliver(j, signal());
    const [req] = fake.requestsFor(sub);
    assert.equal(req?.status, 201, req?.refused);
    assert.equal(req?.headers['ttl'], '60');
    assert.equal(req?.headers['urgency'], 'high');
    assert.equal(req?.headers['topic'], 'order-42_status');
    assert.deepEqual(fake.payloadsFor(sub), [
      { title: 'Deploy finished', body: 'All green', data: { build: 42 }, id: j.notificationId, delivery_id: j.deliveryId, url: options.url, icon: options.icon, badge: options.badge, tag: options.tag },
    ]);
  });

  test('ttl 0 is sent as 0, not the default', async () => {
    const sub = fake.subscribe();
    await channel.deliver(job(sub, { options: { ttl: 0 } }), signal());
    assert.equal(fake.requestsFor(sub)[0]?.headers['ttl'], '0');
  });

  const answers: Array<{ name: string; answer: { status: number; retryAfter?: string; body?: string }; kind: string; errorClass: string; addressGone: boolean; retryAfterMs?: number }> = [
    { name: '404', answer: { status: 404 }, kind: 'permanent', errorClass: 'unregistered', addressGone: true },
    { name: '410', answer: { status: 410 }, kind: 'permanent', errorClass: 'unregistered', addressGone: true },
    { name: '413', answer: { status: 413 }, kind: 'permanent', errorClass: 'payload_too_large', addressGone: false },
    { name: '429 with Retry-After', answer: { status: 429, retryAfter: '30' }, kind: 'rate_limited', errorClass: 'rate_limited', addressGone: false, retryAfterMs: 30_000 },
    { name: '429 without Retry-After', answer: { status: 429 }, kind: 'rate_limited', errorClass: 'rate_limited', addressGone: false },
    { name: '500', answer: { status: 500 }, kind: 'retryable', errorClass: 'http_500', addressGone: false },
    { name: '503 with Retry-After', answer: { status: 503, retryAfter: '120' }, kind: 'retryable', errorClass: 'http_503', addressGone: false, retryAfterMs: 120_000 },
    { name: '401', answer: { status: 401 }, kind: 'permanent', errorClass: 'vapid', addressGone: false },
    { name: '403 (FCM key mismatch)', answer: { status: 403, body: 'the key in the authorization header does not correspond to the sender ID used to subscribe this user.\n' }, kind: 'permanent', errorClass: 'vapid', addressGone: false },
    { name: '400 UnauthorizedRegistration', answer: { status: 400, body: '<HTML><TITLE>UnauthorizedRegistration</TITLE><H2>Error 400</H2></HTML>' }, kind: 'permanent', errorClass: 'vapid', addressGone: false },
    { name: '400', answer: { status: 400 }, kind: 'permanent', errorClass: 'bad_request', addressGone: false },
  ];
  for (const a of answers) {
    test(`a push service answering ${a.name} is ${a.kind} ${a.errorClass}`, async () => {
      const sub = fake.subscribe();
      fake.script(sub, a.answer);
      const err = await failure(channel.deliver(job(sub), signal()));
      assert.equal(err.kind, a.kind);
      assert.equal(err.errorClass, a.errorClass);
      assert.equal(err.addressGone, a.addressGone);
      assert.equal(err.retryAfterMs, a.retryAfterMs);
      assert.equal(err.detail.httpStatus, a.answer.status);
      assert.ok(err.detail.response && err.detail.response.length > 0, 'the vendor body is kept');
      assert.equal(fake.requestsFor(sub).length, 1);
    });
  }

  test('after a scripted failure the next attempt succeeds', async () => {
    const sub = fake.subscribe();
    fake.script(sub, { status: 503 });
    await failure(channel.deliver(job(sub), signal()));
    const res = await channel.deliver(job(sub), signal());
    assert.equal(res.httpStatus, 201);
    assert.equal(fake.payloadsFor(sub).length, 1);
  });

  test('an unsubscribed browser (410 errno 106) and an unknown endpoint (404 errno 102) disable the device', async () => {
    const sub = fake.subscribe();
    fake.unsubscribe(sub);
    const gone = await failure(channel.deliver(job(sub), signal()));
    assert.equal(gone.errorClass, 'unregistered');
    assert.equal(gone.addressGone, true);
    assert.match(gone.detail.response ?? '', /"errno":106/);
    const unknown = { endpoint: `${fake.origin}/wpush/v2/never-issued`, keys: sub.keys };
    const missing = await failure(channel.deliver(job(unknown), signal()));
    assert.equal(missing.errorClass, 'unregistered');
    assert.equal(missing.addressGone, true);
    assert.equal(missing.detail.httpStatus, 404);
  });

  test('keys other than the ones the browser subscribed with are refused as vapid, without disabling the device', async () => {
    const sub = fake.subscribe({ applicationServerKey: keys.publicKey });
    const other = generateVapidKeys();
    const otherProvider = { ...provider, version: 'other', config: { ...provider.config, vapid_public_key: other.publicKey, vapid_private_key: other.privateKey } };
    const err = await failure(channel.deliver(job(sub, { provider: otherProvider }), signal()));
    assert.equal(err.kind, 'permanent');
    assert.equal(err.errorClass, 'vapid');
    assert.equal(err.addressGone, false);
    assert.equal(err.detail.httpStatus, 401);
    assert.equal(fake.requestsFor(sub)[0]?.refused, 'VAPID public key mismatch');
  });

  describe('payload limit', () => {
    test('a long body is cut with an ellipsis to exactly fill 4096 encrypted bytes', async () => {
      const sub = fake.subscribe();
      const body = 'x'.repeat(10_000);
      await channel.deliver(job(sub, { body }), signal());
      const [req] = fake.requestsFor(sub);
      assert.equal(req?.status, 201, req?.refused);
      assert.equal(req?.body.length, 4096);
      assert.equal(Buffer.byteLength(req!.plaintext!), WEBPUSH_MAX_PLAINTEXT_BYTES);
      const payload = fake.payloadsFor(sub)[0] as { body: string; title: string };
      assert.ok(payload.body.endsWith('x…'));
      assert.ok(body.startsWith(payload.body.slice(0, -1)));
      assert.equal(payload.title, 'Deploy finished');
    });

    test('a body that fits is sent whole, at the limit too', async () => {
      const sub = fake.subscribe();
      const size = Buffer.byteLength(JSON.stringify({ title: 'Deploy finished', body: '', data: { build: 42 }, id: `ntf_${n + 1}`, delivery_id: `dlv_${n + 1}` }));
      const body = 'y'.repeat(WEBPUSH_MAX_PLAINTEXT_BYTES - size);
      await channel.deliver(job(sub, { body }), signal());
      assert.equal(fake.requestsFor(sub)[0]?.body.length, 4096);
      assert.equal((fake.payloadsFor(sub)[0] as { body: string }).body, body);
    });

    test('multi-byte bodies are cut between characters, never inside one', async () => {
      const sub = fake.subscribe();
      const body = '한글😀"\\'.repeat(1000);
      await channel.deliver(job(sub, { body }), signal());
      const [req] = fake.requestsFor(sub);
      assert.ok(req!.body.length <= 4096 && req!.body.length > 4096 - 12, `encrypted ${req!.body.length} bytes`);
      const cut = (fake.payloadsFor(sub)[0] as { body: string }).body;
      assert.ok(cut.isWellFormed(), 'no lone surrogate');
      assert.ok(cut.endsWith('…'));
      assert.ok(body.startsWith(cut.slice(0, -1)));
    });

    test('an emoji sequence is never split', async () => {
      const sub = fake.subscribe();
      const family = '👩‍👩‍👧‍👦';
      await channel.deliver(job(sub, { body: family.repeat(1000) }), signal());
      const cut = (fake.payloadsFor(sub)[0] as { body: string }).body;
      assert.ok(cut.endsWith('…'));
      assert.ok(cut.length > 100);
      assert.equal((cut.length - 1) % family.length, 0, 'whole families only');
      assert.equal(cut.slice(0, -1), family.repeat((cut.length - 1) / family.length));
    });

    test('data too large to fit even with the body cut is permanent payload_too_large, and nothing is sent', async () => {
      const sub = fake.subscribe();
      const err = await failure(channel.deliver(job(sub, { data: { blob: 'z'.repeat(5000) } }), signal()));
      assert.equal(err.kind, 'permanent');
      assert.equal(err.errorClass, 'payload_too_large');
      assert.match(err.message, /3993/);
      assert.equal(fake.requestsFor(sub).length, 0);
    });
  });

  describe('VAPID token cache', () => {
    test('reuses the token per credentials and origin, and renews it when less than an hour is left', async () => {
      const sub = fake.subscribe();
      const send = async (p = provider) => {
        await channel.deliver(job(sub, { provider: p }), signal());
        const reqs = fake.requestsFor(sub);
        const last = reqs[reqs.length - 1]!;
        assert.equal(last.status, 201, last.refused);
        return last.vapid!;
      };
      const start = clock;
      try {
        const first = await send();
        assert.equal((await send()).token, first.token);
        clock = start + 10 * 3600_000;
        assert.equal((await send()).token, first.token, 'two hours left: reused');
        clock = start + 11.5 * 3600_000;
        const renewed = await send();
        assert.notEqual(renewed.token, first.token, 'half an hour left: renewed');
        assert.ok((renewed.claims.exp as number) > (first.claims.exp as number));
        const rotated = await send({ ...provider, version: 'v2' });
        assert.notEqual(rotated.token, renewed.token, 'new credentials version: new token');
      } finally {
        clock = start;
      }
    });
  });

  describe('provider and subscription problems', () => {
    test('no provider', async () => {
      const err = await failure(channel.deliver(job(fake.subscribe(), { provider: null }), signal()));
      assert.equal(err.kind, 'permanent');
      assert.equal(err.errorClass, 'no_provider');
    });

    test('a private key that does not match the public key, or missing keys', async () => {
      const other = generateVapidKeys();
      const mismatched = { ...provider, version: 'mismatch', config: { ...provider.config, vapid_private_key: other.privateKey } };
      const err = await failure(channel.deliver(job(fake.subscribe(), { provider: mismatched }), signal()));
      assert.equal(err.errorClass, 'provider_config');
      assert.match(err.message, /not the public key/);
      const keyless = { ...provider, version: 'keyless', config: { subject: 'mailto:ops@example.com' } };
      assert.equal((await failure(channel.deliver(job(fake.subscribe(), { provider: keyless }), signal()))).errorClass, 'provider_config');
    });

    test('a device without a subscription', async () => {
      const err = await failure(channel.deliver(job(undefined), signal()));
      assert.equal(err.errorClass, 'no_address');
    });

    test('unusable subscriptions are permanent and disable the device', async () => {
      const good = fake.subscribe();
      const bad: BrowserSubscription[] = [
        { ...good, keys: { ...good.keys, p256dh: good.keys.p256dh.slice(0, 40) } },
        { ...good, keys: { ...good.keys, p256dh: Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 7)]).toString('base64url') } },
        { ...good, keys: { ...good.keys, auth: 'c2hvcnQ' } },
        { ...good, endpoint: 'ftp://push.example.com/x' },
        { ...good, endpoint: 'not a url' },
      ];
      for (const sub of bad) {
        const err = await failure(channel.deliver(job(sub), signal()));
        assert.equal(err.errorClass, 'invalid_subscription', sub.endpoint);
        assert.equal(err.addressGone, true);
      }
      assert.equal(fake.requestsFor(good).length, 0);
    });

    test('invalid channel options are permanent', async () => {
      const err = await failure(channel.deliver(job(fake.subscribe(), { options: { urgency: 'urgent' } }), signal()));
      assert.equal(err.errorClass, 'invalid_options');
    });
  });

  describe('network', () => {
    test('a push endpoint outside the SSRF policy is refused before sending', async () => {
      const strict = new SafeHttp({ allow: [], timeoutMs: 5000 });
      try {
        const sub = fake.subscribe();
        const err = await failure(new WebpushChannel({ http: strict }).deliver(job(sub), signal()));
        assert.equal(err.kind, 'permanent');
        assert.equal(err.errorClass, 'destination_refused');
        assert.equal(fake.requestsFor(sub).length, 0);
      } finally {
        await strict.close();
      }
    });

    test('a closed port is a retryable network error', async () => {
      const s = createServer();
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      const port = (s.address() as AddressInfo).port;
      await new Promise<void>((r) => s.close(() => r()));
      const sub = fake.subscribe();
      const err = await failure(channel.deliver(job({ ...sub, endpoint: `http://127.0.0.1:${port}/wpush/v2/x` }), signal()));
      assert.equal(err.kind, 'retryable');
      assert.equal(err.errorClass, 'network');
    });

    test('a push service that never answers is a retryable timeout', async () => {
      const quick = new SafeHttp({ allow: parseCidrList('127.0.0.0/8'), timeoutMs: 300 });
      try {
        const sub = fake.subscribe();
        fake.script(sub, 'hang');
        const err = await failure(new WebpushChannel({ http: quick }).deliver(job(sub), signal()));
        assert.equal(err.kind, 'retryable');
        assert.equal(err.errorClass, 'timeout');
      } finally {
        await quick.close();
      }
    });
  });
});

describe('schemas', () => {
  test('generated keys and a subject make a valid provider config; the private key is the secret', () => {
    const k = generateVapidKeys();
    assert.ok(Value.Check(WebpushProviderConfig, { vapid_public_key: k.publicKey, vapid_private_key: k.privateKey, subject: 'https://example.com/contact' }));
    assert.ok(Value.Check(WebpushProviderConfig, { subject: 'mailto:ops@example.com' }), 'keys may be omitted (Herald generates them)');
    assert.ok(!Value.Check(WebpushProviderConfig, { subject: 'ops@example.com' }));
    assert.ok(!Value.Check(WebpushProviderConfig, { subject: 'mailto:ops@example.com', vapid_public_key: k.privateKey }));
    assert.ok(!Value.Check(WebpushProviderConfig, { subject: 'mailto:ops@example.com', extra: 1 }));
    assert.deepEqual([...WEBPUSH_SECRET_FIELDS], ['vapid_private_key']);
  });

  test('channel options', () => {
    assert.ok(Value.Check(WebpushOptions, {}));
    assert.ok(Value.Check(WebpushOptions, { ttl: 0, urgency: 'very-low', topic: 'a'.repeat(32), icon: '/i.png', badge: '/b.png', url: '/x', tag: 't' }));
    assert.ok(!Value.Check(WebpushOptions, { topic: 'a'.repeat(33) }));
    assert.ok(!Value.Check(WebpushOptions, { topic: 'has space' }));
    assert.ok(!Value.Check(WebpushOptions, { urgency: 'urgent' }));
    assert.ok(!Value.Check(WebpushOptions, { ttl: -1 }));
    assert.ok(!Value.Check(WebpushOptions, { ttl: 2_419_201 }));
    assert.ok(!Value.Check(WebpushOptions, { priority: 'high' }));
  });
});
