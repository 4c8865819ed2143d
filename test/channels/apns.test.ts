// The APNs channel against a fake APNs (test/fakes/apns.ts): an HTTP/2 TLS server that verifies the
// provider JWT with the team's public key and checks headers and payload the way Apple does.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { Value } from 'typebox/value';
import { parseCidrList } from '../../src/net/address-policy.ts';
import { DeliveryError, PermanentError, RateLimitedError, RetryableError, type DeliveryJob } from '../../src/channels/channel.ts';
import {
  ApnsChannel,
  ApnsOptions,
  ApnsProviderConfig,
  APNS_SECRET_FIELDS,
  apnsBaseUrl,
  apnsId,
  type ApnsChannelOptions,
} from '../../src/channels/apns.ts';
import { FakeApns, generateApnsKey, generateTlsCert, startFakeApns, type TlsMaterial } from '../fakes/apns.ts';

const TEAM = 'TEAM123456';
const KID = 'KEY1234567';
const TOPIC = 'com.example.app';
const LOOPBACK = parseCidrList('127.0.0.0/8,::1/128');
const key = generateApnsKey();
let tlsMaterial: TlsMaterial;

let n = 0;
/** A fresh 64-hex device token. */
function deviceToken(): string {
  return (++n).toString(16).padStart(8, '0').repeat(8);
}

class Clock {
  t = Date.UTC(2026, 0, 1, 12, 0, 0);
  readonly now = () => this.t;
  advance(ms: number) {
    this.t += ms;
  }
}

async function setup(opts: { topics?: string[]; minTokenUpdateIntervalSec?: number; channel?: Partial<ApnsChannelOptions> } = {}) {
  const clock = new Clock();
  const fake = await startFakeApns({
    teamId: TEAM,
    keyId: KID,
    publicKeyPem: key.publicKeyPem,
    topics: opts.topics ?? [TOPIC, 'com.example.other', 'com.example.override'],
    tls: tlsMaterial,
    now: clock.now,
    minTokenUpdateIntervalSec: opts.minTokenUpdateIntervalSec,
  });
  const channel = new ApnsChannel({ allow: LOOPBACK, timeoutMs: 5000, now: clock.now, ...opts.channel });
  return { clock, fake, channel };
}

function job(fake: FakeApns, over: { token?: string; app?: string | null; options?: Record<string, unknown>; title?: string; body?: string; data?: unknown; config?: Record<string, unknown>; baseUrl?: string | null; version?: string; deliveryId?: string; workspaceId?: string } = {}): DeliveryJob {
  return {
    deliveryId: over.deliveryId ?? `dlv_${++n}`,
    notificationId: 'ntf_1',
    workspaceId: over.workspaceId ?? 'ws_1',
    channel: 'apns',
    attempt: 1,
    notification: {
      kind: 'deploy',
      title: over.title ?? 'Deploy finished',
      body: over.body ?? 'All green',
      data: over.data === undefined ? { build: 42 } : over.data,
      createdAt: Date.now(),
      options: over.options ?? {},
      fallback: false,
    },
    recipient: { id: 'alice', name: null, email: null, phone: null, locale: null, timezone: null, webhookUrl: null, webhookSecret: null, pushover: null, slackWebhookUrl: null, discordWebhookUrl: null, kakaoPhone: null },
    device: { id: 'dev_1', platform: 'apns', token: over.token ?? deviceToken(), app: over.app ?? null },
    provider: {
      provider: 'apns',
      config: over.config ?? { team_id: TEAM, key_id: KID, private_key: key.privateKeyPem, topic: TOPIC, ca: tlsMaterial.cert },
      baseUrl: over.baseUrl === undefined ? fake.url : over.baseUrl,
      version: over.version ?? 'v1',
    },
  };
}

async function rejection(p: Promise<unknown>): Promise<DeliveryError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DeliveryError, `expected a DeliveryError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the delivery to fail');
}

before(() => {
  tlsMaterial = generateTlsCert();
});

describe('APNs channel', () => {
  let fake: FakeApns;
  let channel: ApnsChannel;
  let clock: Clock;
  before(async () => {
    ({ fake, channel, clock } = await setup());
  });
  after(async () => {
    await channel.close();
    await fake.close();
  });

  it('sends an alert the fake accepts, with the JWT, headers and payload Apple expects', async () => {
    const token = deviceToken();
    const j = job(fake, {
      token,
      options: { sound: 'default', badge: 3, thread_id: 'deploys', category: 'DEPLOY', mutable_content: true, expiration: 1767268800, collapse_id: 'deploy-42' },
    });
    const res = await channel.deliver(j, new AbortController().signal);
    const got = fake.received.at(-1)!;
    assert.equal(got.status, 200, `fake answered ${got.status} ${got.reason}`);
    assert.equal(got.method, 'POST');
    assert.equal(got.path, `/3/device/${token}`);
    assert.equal(got.headers['apns-topic'], TOPIC);
    assert.equal(got.headers['apns-push-type'], 'alert');
    assert.equal(got.headers['apns-priority'], '10');
    assert.equal(got.headers['apns-expiration'], '1767268800');
    assert.equal(got.headers['apns-collapse-id'], 'deploy-42');
    assert.equal(got.headers['apns-id'], apnsId(j.deliveryId));
    assert.match(got.headers['apns-id']!, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(got.payload, {
      aps: { alert: { title: 'Deploy finished', body: 'All green' }, sound: 'default', badge: 3, 'thread-id': 'deploys', category: 'DEPLOY', 'mutable-content': 1 },
      build: 42,
    });
    assert.deepEqual(decodeProtectedHeader(got.jwt!), { alg: 'ES256', kid: KID });
    assert.deepEqual(decodeJwt(got.jwt!), { iss: TEAM, iat: Math.floor(clock.t / 1000) });
    assert.equal(res.providerMessageId, apnsId(j.deliveryId));
    assert.equal(res.httpStatus, 200);
  });

  it('the apns-id is stable across retries of one delivery and differs between deliveries', () => {
    assert.equal(apnsId('dlv_a'), apnsId('dlv_a'));
    assert.notEqual(apnsId('dlv_a'), apnsId('dlv_b'));
  });

  it('sends a background push (priority 5, content-available, no alert) for content_available without title or body', async () => {
    await channel.deliver(job(fake, { title: '', body: '', options: { content_available: true, sound: 'ignored', badge: 1 }, data: { sync: true } }), new AbortController().signal);
    const got = fake.received.at(-1)!;
    assert.equal(got.status, 200, got.reason);
    assert.equal(got.headers['apns-push-type'], 'background');
    assert.equal(got.headers['apns-priority'], '5');
    assert.equal(got.headers['apns-expiration'], undefined);
    assert.equal(got.headers['apns-collapse-id'], undefined);
    assert.deepEqual(got.payload, { aps: { 'content-available': 1 }, sync: true });
  });

  it('an alert with content_available keeps the alert and priority 10', async () => {
    await channel.deliver(job(fake, { options: { content_available: true } }), new AbortController().signal);
    const got = fake.received.at(-1)!;
    assert.equal(got.headers['apns-push-type'], 'alert');
    assert.equal(got.headers['apns-priority'], '10');
    assert.deepEqual((got.payload as any).aps, { alert: { title: 'Deploy finished', body: 'All green' }, 'content-available': 1 });
  });

  it('refuses background with priority 10 before sending', async () => {
    const before = fake.received.length;
    const err = await rejection(channel.deliver(job(fake, { options: { push_type: 'background', priority: 10 } }), new AbortController().signal));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'invalid_options');
    assert.equal(fake.received.length, before);
  });

  it('custom data: non-object data goes under "data"; a data key "aps" cannot replace the aps dictionary', async () => {
    await channel.deliver(job(fake, { data: [1, 2] }), new AbortController().signal);
    assert.deepEqual((fake.received.at(-1)!.payload as any).data, [1, 2]);
    await channel.deliver(job(fake, { data: { aps: { badge: 99 }, x: 1 } }), new AbortController().signal);
    assert.deepEqual(fake.received.at(-1)!.payload, { aps: { alert: { title: 'Deploy finished', body: 'All green' } }, x: 1 });
  });

  it('topic: options.topic over the device app over the provider topic', async () => {
    await channel.deliver(job(fake, { app: 'com.example.other' }), new AbortController().signal);
    assert.equal(fake.received.at(-1)!.headers['apns-topic'], 'com.example.other');
    await channel.deliver(job(fake, { app: 'com.example.other', options: { topic: 'com.example.override' } }), new AbortController().signal);
    assert.equal(fake.received.at(-1)!.headers['apns-topic'], 'com.example.override');
  });

  it('410 Unregistered: permanent, address gone, with the answer in the detail', async () => {
    const token = deviceToken();
    fake.script(token, { status: 410, reason: 'Unregistered', timestamp: 1767268800000 });
    const err = await rejection(channel.deliver(job(fake, { token }), new AbortController().signal));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'unregistered');
    assert.equal(err.addressGone, true);
    assert.equal(err.detail.httpStatus, 410);
    assert.deepEqual(JSON.parse(err.detail.response!), { reason: 'Unregistered', timestamp: 1767268800000 });
  });

  it('410 ExpiredToken: permanent, address gone', async () => {
    const token = deviceToken();
    fake.script(token, { status: 410, reason: 'ExpiredToken' });
    const err = await rejection(channel.deliver(job(fake, { token }), new AbortController().signal));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'expired_token');
    assert.equal(err.addressGone, true);
  });

  it('400 BadDeviceToken: permanent, address gone', async () => {
    const token = deviceToken();
    fake.script(token, { status: 400, reason: 'BadDeviceToken' });
    const err = await rejection(channel.deliver(job(fake, { token }), new AbortController().signal));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'bad_device_token');
    assert.equal(err.addressGone, true);
    assert.equal(err.detail.httpStatus, 400);
  });

  it('400 DeviceTokenNotForTopic (the fake checks the device topic): permanent, address gone', async () => {
    const token = deviceToken();
    fake.registerDevice(token, 'com.example.other');
    const err = await rejection(channel.deliver(job(fake, { token }), new AbortController().signal));
    assert.equal(fake.received.at(-1)!.reason, 'DeviceTokenNotForTopic');
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'device_token_not_for_topic');
    assert.equal(err.addressGone, true);
  });

  it('a device token that is not hex is refused before sending, address gone', async () => {
    const before = fake.received.length;
    const err = await rejection(channel.deliver(job(fake, { token: '../../3/device/zz' }), new AbortController().signal));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'bad_device_token');
    assert.equal(err.addressGone, true);
    assert.equal(fake.received.length, before);
  });

  it('other 400s (TopicDisallowed from the fake, scripted PayloadEmpty): permanent, address kept, errorClass from the reason', async () => {
    const err = await rejection(channel.deliver(job(fake, { options: { topic: 'com.example.notours' } }), new AbortController().signal));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'topic_disallowed');
    assert.equal(err.addressGone, false);
    assert.match(err.message, /400 TopicDisallowed/);

    const token = deviceToken();
    fake.script(token, { status: 400, reason: 'PayloadEmpty' });
    const err2 = await rejection(channel.deliver(job(fake, { token }), new AbortController().signal));
    assert.ok(err2 instanceof PermanentError);
    assert.equal(err2.errorClass, 'payload_empty');
    assert.equal(err2.addressGone, false);
  });

  it('400 IdleTimeout: retryable', async () => {
    const token = deviceToken();
    fake.script(token, { status: 400, reason: 'IdleTimeout', times: 1 });
    const err = await rejection(channel.deliver(job(fake, { token }), new AbortController().signal));
    assert.ok(err instanceof RetryableError);
    assert.equal(err.errorClass, 'idle_timeout');
    await channel.deliver(job(fake, { token }), new AbortController().signal);
  });

  it('403 other than token errors (Forbidden): permanent auth', async () => {
    const token = deviceToken();
    fake.script(token, { status: 403, reason: 'Forbidden' });
    const err = await rejection(channel.deliver(job(fake, { token }), new AbortController().signal));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'auth');
    assert.equal(err.addressGone, false);
    assert.equal(err.detail.httpStatus, 403);
  });

  it('413 PayloadTooLarge: permanent', async () => {
    const token = deviceToken();
    fake.script(token, { status: 413, reason: 'PayloadTooLarge' });
    const err = await rejection(channel.deliver(job(fake, { token }), new AbortController().signal));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'payload_too_large');
    assert.equal(err.addressGone, false);
  });

  it('429 TooManyRequests: rate limited, Retry-After honoured', async () => {
    const token = deviceToken();
    fake.script(token, { status: 429, reason: 'TooManyRequests', retryAfter: '30' });
    const err = await rejection(channel.deliver(job(fake, { token }), new AbortController().signal));
    assert.ok(err instanceof RateLimitedError);
    assert.equal(err.errorClass, 'rate_limited');
    assert.equal(err.retryAfterMs, 30_000);
    assert.equal(err.detail.httpStatus, 429);

    const token2 = deviceToken();
    fake.script(token2, { status: 429, reason: 'TooManyRequests' });
    const err2 = await rejection(channel.deliver(job(fake, { token: token2 }), new AbortController().signal));
    assert.ok(err2 instanceof RateLimitedError);
    assert.equal(err2.retryAfterMs, undefined);
  });

  it('500 and 503: retryable, Retry-After honoured; 503 (shutting down) makes the next delivery reconnect', async () => {
    const token = deviceToken();
    fake.script(token, { status: 500, reason: 'InternalServerError', times: 1 });
    const e500 = await rejection(channel.deliver(job(fake, { token }), new AbortController().signal));
    assert.ok(e500 instanceof RetryableError);
    assert.equal(e500.errorClass, 'http_500');
    assert.equal(e500.retryAfterMs, undefined);

    const sessions = fake.sessionsOpened;
    fake.script(token, { status: 503, reason: 'ServiceUnavailable', retryAfter: '120', times: 1 });
    const e503 = await rejection(channel.deliver(job(fake, { token }), new AbortController().signal));
    assert.ok(e503 instanceof RetryableError);
    assert.equal(e503.errorClass, 'http_503');
    assert.equal(e503.retryAfterMs, 120_000);
    assert.equal(e503.detail.httpStatus, 503);
    await channel.deliver(job(fake, { token }), new AbortController().signal);
    assert.equal(fake.sessionsOpened, sessions + 1);
  });

  it('truncates a long alert body with an ellipsis to fit 4096 bytes; the fake accepts it', async () => {
    const body = 'Ünïcödé 🚀 '.repeat(600);
    await channel.deliver(job(fake, { body }), new AbortController().signal);
    const got = fake.received.at(-1)!;
    assert.equal(got.status, 200, got.reason);
    const size = Buffer.byteLength(got.body);
    assert.ok(size <= 4096, `payload is ${size} bytes`);
    assert.ok(size > 4000, `payload is only ${size} bytes: truncated too much`);
    const sent = (got.payload as any).aps.alert.body as string;
    assert.ok(sent.endsWith('…'));
    assert.ok(body.startsWith(sent.slice(0, -1)), 'the truncated body is a prefix of the original');
    assert.equal(sent.includes('\uFFFD'), false);
  });

  it('a payload too large without the body to cut: PermanentError payload_too_large, nothing sent', async () => {
    const before = fake.received.length;
    const err = await rejection(channel.deliver(job(fake, { data: { blob: 'x'.repeat(5000) } }), new AbortController().signal));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'payload_too_large');
    assert.match(err.message, /4096/);
    const bg = await rejection(channel.deliver(job(fake, { title: '', body: '', options: { content_available: true }, data: { blob: 'x'.repeat(5000) } }), new AbortController().signal));
    assert.equal(bg.errorClass, 'payload_too_large');
    assert.equal(fake.received.length, before);
  });

  it('a collapse_id over 64 bytes is refused before sending', async () => {
    const err = await rejection(channel.deliver(job(fake, { options: { collapse_id: 'é'.repeat(40) } }), new AbortController().signal));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'invalid_options');
  });
});

describe('APNs provider token and sessions', () => {
  it('reuses one JWT and one HTTP/2 session; signs a new JWT after 50 minutes', async () => {
    const { fake, channel, clock } = await setup();
    try {
      for (let i = 0; i < 3; i++) await channel.deliver(job(fake), new AbortController().signal);
      await Promise.all([1, 2, 3].map(() => channel.deliver(job(fake), new AbortController().signal)));
      assert.equal(fake.received.length, 6);
      assert.ok(fake.received.every((r) => r.status === 200));
      assert.equal(fake.providerTokens.size, 1);
      assert.equal(fake.sessionsOpened, 1);

      clock.advance(49 * 60_000);
      await channel.deliver(job(fake), new AbortController().signal);
      assert.equal(fake.providerTokens.size, 1);

      clock.advance(2 * 60_000);
      await channel.deliver(job(fake), new AbortController().signal);
      assert.equal(fake.providerTokens.size, 2);
      assert.equal(decodeJwt(fake.received.at(-1)!.jwt!).iat, Math.floor(clock.t / 1000));
      assert.equal(fake.sessionsOpened, 1);
    } finally {
      await channel.close();
      await fake.close();
    }
  });

  it('stays within Apple\'s refresh rate (a fake enforcing 20 minutes between new tokens) over two hours of sends', async () => {
    const { fake, channel, clock } = await setup({ minTokenUpdateIntervalSec: 20 * 60 });
    try {
      for (let m = 0; m <= 120; m += 5) {
        await channel.deliver(job(fake), new AbortController().signal);
        clock.advance(5 * 60_000);
      }
      assert.ok(fake.received.every((r) => r.status === 200), 'no TooManyProviderTokenUpdates');
      assert.equal(fake.providerTokens.size, 3);
    } finally {
      await channel.close();
      await fake.close();
    }
  });

  it('new credentials (provider.version) get a new JWT and a new session; workspaces do not share them', async () => {
    const { fake, channel } = await setup();
    try {
      await channel.deliver(job(fake, { version: 'v1' }), new AbortController().signal);
      await channel.deliver(job(fake, { version: 'v2' }), new AbortController().signal);
      assert.equal(fake.sessionsOpened, 2);
      await channel.deliver(job(fake, { version: 'v2', workspaceId: 'ws_2' }), new AbortController().signal);
      assert.equal(fake.sessionsOpened, 3);
      assert.equal(fake.providerTokens.size, 3);
      assert.ok(fake.received.every((r) => r.status === 200));
      await channel.deliver(job(fake, { version: 'v2', workspaceId: 'ws_2' }), new AbortController().signal);
      assert.equal(fake.sessionsOpened, 3);
      assert.equal(fake.providerTokens.size, 3);
    } finally {
      await channel.close();
      await fake.close();
    }
  });

  it('403 ExpiredProviderToken drops the cached JWT (retryable); the next delivery signs a new one', async () => {
    const { fake, channel, clock } = await setup();
    try {
      await channel.deliver(job(fake), new AbortController().signal);
      clock.advance(1000);
      const token = deviceToken();
      fake.script(token, { status: 403, reason: 'ExpiredProviderToken', times: 1 });
      const err = await rejection(channel.deliver(job(fake, { token }), new AbortController().signal));
      assert.ok(err instanceof RetryableError);
      assert.equal(err.errorClass, 'expired_provider_token');
      assert.equal(fake.providerTokens.size, 1);
      await channel.deliver(job(fake, { token }), new AbortController().signal);
      assert.equal(fake.received.at(-1)!.status, 200);
      assert.equal(fake.providerTokens.size, 2);
    } finally {
      await channel.close();
      await fake.close();
    }
  });

  it('a token older than an hour by the fake\'s clock: 403 ExpiredProviderToken, retryable', async () => {
    const fakeClock = new Clock();
    const channelClock = new Clock();
    fakeClock.advance(61 * 60_000);
    const fake = await startFakeApns({ teamId: TEAM, keyId: KID, publicKeyPem: key.publicKeyPem, topics: [TOPIC], tls: tlsMaterial, now: fakeClock.now });
    const channel = new ApnsChannel({ allow: LOOPBACK, timeoutMs: 5000, now: channelClock.now });
    try {
      const err = await rejection(channel.deliver(job(fake), new AbortController().signal));
      assert.equal(fake.received.at(-1)!.reason, 'ExpiredProviderToken');
      assert.ok(err instanceof RetryableError);
      assert.equal(err.errorClass, 'expired_provider_token');
    } finally {
      await channel.close();
      await fake.close();
    }
  });

  it('a JWT signed with another key, or with the wrong key id: 403 InvalidProviderToken, retryable', async () => {
    const { fake, channel } = await setup();
    try {
      const other = generateApnsKey();
      const err = await rejection(channel.deliver(job(fake, { config: { team_id: TEAM, key_id: KID, private_key: other.privateKeyPem, topic: TOPIC, ca: tlsMaterial.cert } }), new AbortController().signal));
      assert.equal(fake.received.at(-1)!.reason, 'InvalidProviderToken');
      assert.ok(err instanceof RetryableError);
      assert.equal(err.errorClass, 'invalid_provider_token');

      const err2 = await rejection(channel.deliver(job(fake, { version: 'v2', config: { team_id: TEAM, key_id: 'OTHERKEY00', private_key: key.privateKeyPem, topic: TOPIC, ca: tlsMaterial.cert } }), new AbortController().signal));
      assert.equal(fake.received.at(-1)!.reason, 'InvalidProviderToken');
      assert.equal(err2.errorClass, 'invalid_provider_token');
      assert.equal(fake.providerTokens.size, 0);
    } finally {
      await channel.close();
      await fake.close();
    }
  });

  it('a private key that is not a PKCS#8 P-256 key: permanent invalid_config, nothing sent', async () => {
    const { fake, channel } = await setup();
    try {
      const err = await rejection(channel.deliver(job(fake, { config: { team_id: TEAM, key_id: KID, private_key: 'not a key', topic: TOPIC, ca: tlsMaterial.cert } }), new AbortController().signal));
      assert.ok(err instanceof PermanentError);
      assert.equal(err.errorClass, 'invalid_config');
      assert.equal(fake.received.length, 0);
    } finally {
      await channel.close();
      await fake.close();
    }
  });

  for (const close of [true, false]) {
    it(`reconnects after GOAWAY (${close ? 'connection closed' : 'connection left open'})`, async () => {
      const { fake, channel } = await setup();
      try {
        await channel.deliver(job(fake), new AbortController().signal);
        assert.equal(fake.sessionsOpened, 1);
        await fake.goawayAll(close);
        const res = await channel.deliver(job(fake), new AbortController().signal);
        assert.equal(res.httpStatus, 200);
        assert.equal(fake.sessionsOpened, 2);
        await channel.deliver(job(fake), new AbortController().signal);
        assert.equal(fake.sessionsOpened, 2);
      } finally {
        await channel.close();
        await fake.close();
      }
    });
  }

  it('close() closes the sessions', async () => {
    const { fake, channel } = await setup();
    try {
      await channel.deliver(job(fake), new AbortController().signal);
      assert.equal(fake.openSessions, 1);
      await channel.close();
      for (let i = 0; i < 100 && fake.openSessions > 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(fake.openSessions, 0);
      const err = await rejection(channel.deliver(job(fake), new AbortController().signal));
      assert.equal(err.errorClass, 'closed');
    } finally {
      await fake.close();
    }
  });
});

describe('APNs transport failures', () => {
  it('a request APNs never answers: RetryableError timeout', async () => {
    const { fake, channel } = await setup({ channel: { timeoutMs: 300 } });
    try {
      const token = deviceToken();
      fake.script(token, { status: 200, hang: true });
      const err = await rejection(channel.deliver(job(fake, { token }), new AbortController().signal));
      assert.ok(err instanceof RetryableError);
      assert.equal(err.errorClass, 'timeout');
      await channel.deliver(job(fake), new AbortController().signal);
    } finally {
      await channel.close();
      await fake.close();
    }
  });

  it('the caller\'s abort: RetryableError aborted', async () => {
    const { fake, channel } = await setup();
    try {
      const token = deviceToken();
      fake.script(token, { status: 200, hang: true });
      const ac = new AbortController();
      const p = channel.deliver(job(fake, { token }), ac.signal);
      while (!fake.received.some((r) => r.deviceToken === token)) await new Promise((r) => setTimeout(r, 5));
      ac.abort();
      const err = await rejection(p);
      assert.ok(err instanceof RetryableError);
      assert.equal(err.errorClass, 'aborted');
    } finally {
      await channel.close();
      await fake.close();
    }
  });

  it('loopback not in the allow list: PermanentError destination_refused, by name and by literal address', async () => {
    const { fake, channel: allowed } = await setup();
    await allowed.close();
    const channel = new ApnsChannel({ allow: [], timeoutMs: 5000 });
    try {
      const byName = await rejection(channel.deliver(job(fake), new AbortController().signal));
      assert.ok(byName instanceof PermanentError);
      assert.equal(byName.errorClass, 'destination_refused');
      const byIp = await rejection(channel.deliver(job(fake, { baseUrl: `https://127.0.0.1:${fake.port}` }), new AbortController().signal));
      assert.ok(byIp instanceof PermanentError);
      assert.equal(byIp.errorClass, 'destination_refused');
      assert.equal(fake.sessionsOpened, 0);
    } finally {
      await channel.close();
      await fake.close();
    }
  });

  it('a literal allowed address works (certificate checked against the IP)', async () => {
    const { fake, channel } = await setup();
    try {
      const res = await channel.deliver(job(fake, { baseUrl: `https://127.0.0.1:${fake.port}` }), new AbortController().signal);
      assert.equal(res.httpStatus, 200);
    } finally {
      await channel.close();
      await fake.close();
    }
  });

  it('a certificate not trusted (no ca in the config): RetryableError network', async () => {
    const { fake, channel } = await setup();
    try {
      const err = await rejection(channel.deliver(job(fake, { config: { team_id: TEAM, key_id: KID, private_key: key.privateKeyPem, topic: TOPIC } }), new AbortController().signal));
      assert.ok(err instanceof RetryableError);
      assert.equal(err.errorClass, 'network');
      assert.equal(fake.received.length, 0);
    } finally {
      await channel.close();
      await fake.close();
    }
  });

  it('nothing listening: RetryableError network', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const { fake, channel } = await setup();
    try {
      const err = await rejection(channel.deliver(job(fake, { baseUrl: `https://127.0.0.1:${port}` }), new AbortController().signal));
      assert.ok(err instanceof RetryableError);
      assert.equal(err.errorClass, 'network');
    } finally {
      await channel.close();
      await fake.close();
    }
  });

  it('a base_url that is not https: permanent invalid_config', async () => {
    const channel = new ApnsChannel({ allow: LOOPBACK, timeoutMs: 2000 });
    const fake = await startFakeApns({ teamId: TEAM, keyId: KID, publicKeyPem: key.publicKeyPem, topics: [TOPIC], tls: tlsMaterial });
    try {
      const err = await rejection(channel.deliver(job(fake, { baseUrl: `http://127.0.0.1:${fake.port}` }), new AbortController().signal));
      assert.ok(err instanceof PermanentError);
      assert.equal(err.errorClass, 'invalid_config');
      assert.equal(fake.received.length, 0);
    } finally {
      await channel.close();
      await fake.close();
    }
  });

  it('endpoints: production by default, sandbox when configured, base_url over both', () => {
    assert.equal(apnsBaseUrl(null, undefined), 'https://api.push.apple.com');
    assert.equal(apnsBaseUrl(null, 'production'), 'https://api.push.apple.com');
    assert.equal(apnsBaseUrl(null, 'sandbox'), 'https://api.sandbox.push.apple.com');
    assert.equal(apnsBaseUrl('https://proxy.internal', 'sandbox'), 'https://proxy.internal');
  });
});

describe('APNs schemas', () => {
  it('provider config: requires team_id, key_id, private_key, topic; environment production|sandbox; private_key is secret', () => {
    const ok = { team_id: TEAM, key_id: KID, private_key: key.privateKeyPem, topic: TOPIC, environment: 'sandbox' };
    assert.equal(Value.Check(ApnsProviderConfig, ok), true);
    assert.equal(Value.Check(ApnsProviderConfig, { ...ok, environment: 'staging' }), false);
    assert.equal(Value.Check(ApnsProviderConfig, { ...ok, team_id: 'short' }), false);
    assert.equal(Value.Check(ApnsProviderConfig, { ...ok, extra: 1 }), false);
    const { topic: _topic, ...noTopic } = ok;
    assert.equal(Value.Check(ApnsProviderConfig, noTopic), false);
    assert.deepEqual([...APNS_SECRET_FIELDS], ['private_key']);
  });

  it('options: known fields only, with their ranges', () => {
    assert.equal(Value.Check(ApnsOptions, { push_type: 'background', priority: 5, expiration: 0, collapse_id: 'x', sound: 'default', badge: 0, thread_id: 't', category: 'c', mutable_content: true, content_available: true, topic: TOPIC }), true);
    assert.equal(Value.Check(ApnsOptions, { priority: 7 }), false);
    assert.equal(Value.Check(ApnsOptions, { push_type: 'voip' }), false);
    assert.equal(Value.Check(ApnsOptions, { collapse_id: 'x'.repeat(65) }), false);
    assert.equal(Value.Check(ApnsOptions, { badge: -1 }), false);
    assert.equal(Value.Check(ApnsOptions, { expiration: -1 }), false);
    assert.equal(Value.Check(ApnsOptions, { unknown: 1 }), false);
  });
});
