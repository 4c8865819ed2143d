// The FCM channel against a fake FCM backend (test/fakes/fcm.ts) that verifies the OAuth assertion's
// RS256 signature and claims, checks the Bearer token and the message shape and size, and answers
// with FCM's real bodies. Time is a shared clock so token expiry is tested without waiting.

import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Value } from 'typebox/value';
import { FcmChannel, FcmOptions, FcmProviderConfig, FCM_SECRET_FIELDS } from '../../src/channels/fcm.ts';
import { DeliveryError, PermanentError, RateLimitedError, RetryableError, type DeliveryJob } from '../../src/channels/channel.ts';
import { SafeHttp } from '../../src/net/safe-http.ts';
import { parseCidrList } from '../../src/net/address-policy.ts';
import { FCM_SCOPE, fcmErrors, startFakeFcm, type FakeFcm } from '../fakes/fcm.ts';

const PROJECT = 'herald-test';
const EMAIL = 'herald-sender@herald-test.iam.gserviceaccount.com';

function rsaPair(): { privatePem: string; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey };
}

const keys = rsaPair();
let clock = Date.now();
const now = () => clock;

let fake: FakeFcm;
let http: SafeHttp;
let channel: FcmChannel;
let n = 0;

function serviceAccount(over: Record<string, unknown> = {}) {
  return {
    type: 'service_account',
    project_id: PROJECT,
    private_key_id: 'key-1',
    private_key: keys.privatePem,
    client_email: EMAIL,
    client_id: '1234567890',
    token_uri: fake.tokenUri,
    ...over,
  };
}

interface JobInput {
  token?: string | null;
  title?: string;
  body?: string;
  data?: unknown;
  options?: Record<string, unknown>;
  version?: string;
  workspaceId?: string;
  config?: Record<string, unknown>;
  baseUrl?: string | null;
  provider?: false;
  createdAt?: number;
}

function job(input: JobInput = {}): DeliveryJob {
  const id = ++n;
  const token = input.token === undefined ? `device-token-${id}` : input.token;
  return {
    deliveryId: `dl_${id}`,
    notificationId: `nt_${id}`,
    workspaceId: input.workspaceId ?? 'ws_1',
    channel: 'fcm',
    attempt: 1,
    notification: {
      kind: 'transactional',
      title: input.title ?? 'Deploy finished',
      body: input.body ?? 'All green',
      data: input.data === undefined ? { build: 42, env: 'prod' } : input.data,
      createdAt: input.createdAt ?? clock,
      options: input.options ?? {},
      fallback: false,
    },
    recipient: {
      id: 'r1',
      name: null,
      email: null,
      phone: null,
      locale: null,
      timezone: null,
      webhookUrl: null,
      webhookSecret: null,
      pushover: null,
      slackWebhookUrl: null,
      discordWebhookUrl: null,
      kakaoPhone: null,
    },
    ...(token === null ? {} : { device: { id: `dev_${id}`, platform: 'fcm' as const, token, app: null } }),
    ...(input.provider === false
      ? {}
      : {
          provider: {
            provider: 'fcm' as const,
            config: input.config ?? { service_account: serviceAccount() },
            baseUrl: input.baseUrl === undefined ? fake.url : input.baseUrl,
            version: input.version ?? 'v1',
          },
        }),
  };
}

const signal = () => new AbortController().signal;

async function rejection(p: Promise<unknown>): Promise<DeliveryError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DeliveryError, `expected a DeliveryError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the delivery to fail');
}

const lastSend = () => fake.sends.at(-1)!;

before(async () => {
  fake = await startFakeFcm({ projectId: PROJECT, clientEmail: EMAIL, publicKey: keys.publicKey, now });
  http = new SafeHttp({ allow: parseCidrList('127.0.0.0/8,::1/128'), timeoutMs: 5000 });
});

after(async () => {
  await fake.close();
  await http.close();
});

beforeEach(() => {
  channel = new FcmChannel({ http, now });
});

describe('fcm channel: sending', () => {
  it('gets an access token with a signed assertion and posts the message; the name is the provider message id', async () => {
    const before = fake.tokenRequests;
    const j = job();
    const result = await channel.deliver(j, signal());

    assert.equal(fake.tokenRequests, before + 1);
    const claims = fake.assertions.at(-1)!;
    assert.equal(claims.iss, EMAIL);
    assert.equal(claims.aud, fake.tokenUri);
    assert.equal(claims.scope, FCM_SCOPE);
    assert.equal(claims.iat, Math.floor(clock / 1000));
    assert.equal((claims.exp as number) - (claims.iat as number), 3600);

    const sent = lastSend();
    assert.equal(sent.status, 200);
    assert.equal(sent.path, `/v1/projects/${PROJECT}/messages:send`);
    assert.equal(sent.headers.authorization, `Bearer ${fake.issued.at(-1)}`);
    assert.match(String(sent.headers['content-type']), /^application\/json/);
    assert.deepEqual(sent.body, {
      message: {
        token: j.device!.token,
        notification: { title: 'Deploy finished', body: 'All green' },
        data: { build: '42', env: 'prod', herald_notification_id: j.notificationId, herald_delivery_id: j.deliveryId, herald_kind: 'transactional' },
      },
    });
    assert.match(result.providerMessageId ?? '', new RegExp(`^projects/${PROJECT}/messages/`));
    assert.equal(result.httpStatus, 200);
  });

  it('maps channel_options to android, apns and webpush; ttl counts from acceptance; options data over notification data, herald ids over both', async () => {
    const j = job({
      createdAt: clock - 100_000,
      data: { build: 42, nested: { a: [1, 'x'] }, note: null, herald_kind: 'spoofed', from_app: 'yes' },
      options: { priority: 'high', ttl: 3600, collapse_key: 'deploys', android_channel_id: 'ops', image: 'https://img.example/x.png', data: { env: 'staging', build: 'override' } },
    });
    await channel.deliver(j, signal());
    const m = lastSend().body.message;
    assert.equal(lastSend().status, 200);
    assert.deepEqual(m.notification, { title: 'Deploy finished', body: 'All green', image: 'https://img.example/x.png' });
    assert.deepEqual(m.data, {
      build: 'override',
      nested: '{"a":[1,"x"]}',
      note: 'null',
      from_app: 'yes',
      env: 'staging',
      herald_kind: 'transactional',
      herald_notification_id: j.notificationId,
      herald_delivery_id: j.deliveryId,
    });
    assert.deepEqual(m.android, { priority: 'high', ttl: '3500s', collapse_key: 'deploys', notification: { channel_id: 'ops' } });
    assert.deepEqual(m.apns, { headers: { 'apns-priority': '10', 'apns-expiration': String(Math.floor(clock / 1000) + 3500), 'apns-collapse-id': 'deploys' } });
    assert.deepEqual(m.webpush, { headers: { Urgency: 'high', TTL: '3500' } });
  });

  it('normal priority is apns-priority 5; ttl 0 is now-or-never on every platform', async () => {
    await channel.deliver(job({ createdAt: clock - 50_000, options: { priority: 'normal', ttl: 0 } }), signal());
    const m = lastSend().body.message;
    assert.deepEqual(m.android, { priority: 'normal', ttl: '0s' });
    assert.deepEqual(m.apns, { headers: { 'apns-priority': '5', 'apns-expiration': '0' } });
    assert.deepEqual(m.webpush, { headers: { Urgency: 'normal', TTL: '0' } });
  });

  it('a notification whose ttl passed before the attempt is permanent "expired" and is not sent', async () => {
    const sends = fake.sends.length;
    const err = await rejection(channel.deliver(job({ createdAt: clock - 61_000, options: { ttl: 60 } }), signal()));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'expired');
    assert.equal(fake.sends.length, sends);
  });

  it('data that is not an object goes under "data"; a notification without title or body sends no notification', async () => {
    const j = job({ title: '', body: '', data: [1, 2] });
    await channel.deliver(j, signal());
    const m = lastSend().body.message;
    assert.equal(m.notification, undefined);
    assert.equal(m.data.data, '[1,2]');
  });

  it('config project_id overrides the service account project; an unknown project is permanent "auth"', async () => {
    const err = await rejection(channel.deliver(job({ config: { service_account: serviceAccount(), project_id: 'someone-else' } }), signal()));
    assert.equal(lastSend().path, '/v1/projects/someone-else/messages:send');
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'auth');
    assert.equal(err.addressGone, false);
    assert.equal(err.detail.httpStatus, 403);
    assert.match(err.detail.response ?? '', /PERMISSION_DENIED/);
  });

  it('a reserved data key is permanent "invalid_data_key" and nothing is sent', async () => {
    for (const data of [{ from: 'x' }, { google_sent: 'x' }, { 'gcm.x': 'y' }, { message_type: 'x' }]) {
      const sends = fake.sends.length;
      const err = await rejection(channel.deliver(job({ data }), signal()));
      assert.ok(err instanceof PermanentError);
      assert.equal(err.errorClass, 'invalid_data_key', JSON.stringify(data));
      assert.equal(fake.sends.length, sends);
    }
  });

  it('no device, no provider, or an unusable private key are permanent', async () => {
    assert.equal((await rejection(channel.deliver(job({ token: null }), signal()))).errorClass, 'no_address');
    assert.equal((await rejection(channel.deliver(job({ provider: false }), signal()))).errorClass, 'no_provider');
    const bad = await rejection(channel.deliver(job({ version: 'badkey', config: { service_account: serviceAccount({ private_key: '-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n' }) } }), signal()));
    assert.ok(bad instanceof PermanentError);
    assert.equal(bad.errorClass, 'config');
  });

  it('accepts a private key whose newlines arrive escaped as \\n', async () => {
    const escaped = keys.privatePem.replace(/\n/g, '\\n');
    const result = await channel.deliver(job({ version: 'escaped', config: { service_account: serviceAccount({ private_key: escaped }) } }), signal());
    assert.ok(result.providerMessageId);
  });
});

describe('fcm channel: access token cache', () => {
  it('reuses the token until 5 minutes before expiry, then fetches a new one', async () => {
    const start = clock;
    const base = fake.tokenRequests;
    await channel.deliver(job({ version: 'cache-1' }), signal());
    await channel.deliver(job({ version: 'cache-1' }), signal());
    assert.equal(fake.tokenRequests, base + 1);
    const first = fake.issued.at(-1)!;

    clock = start + (3599 - 301) * 1000;
    await channel.deliver(job({ version: 'cache-1' }), signal());
    assert.equal(fake.tokenRequests, base + 1, 'still cached 301 s before expiry');
    assert.equal(lastSend().headers.authorization, `Bearer ${first}`);

    clock = start + (3599 - 299) * 1000;
    await channel.deliver(job({ version: 'cache-1' }), signal());
    assert.equal(fake.tokenRequests, base + 2, 'refreshed 299 s before expiry');
    assert.notEqual(lastSend().headers.authorization, `Bearer ${first}`);
    assert.equal(lastSend().headers.authorization, `Bearer ${fake.issued.at(-1)}`);
  });

  it('a new provider version, or another workspace with the same version, gets its own token', async () => {
    const base = fake.tokenRequests;
    await channel.deliver(job({ version: 'cache-2' }), signal());
    await channel.deliver(job({ version: 'cache-3' }), signal());
    await channel.deliver(job({ version: 'cache-3', workspaceId: 'ws_other' }), signal());
    await channel.deliver(job({ version: 'cache-3' }), signal());
    assert.equal(fake.tokenRequests, base + 3);
  });

  it('concurrent deliveries share one token request', async () => {
    const base = fake.tokenRequests;
    const release = fake.holdTokens();
    const deliveries = Array.from({ length: 5 }, () => channel.deliver(job({ version: 'concurrent' }), signal()));
    await waitUntil(() => fake.tokenRequests > base);
    release();
    const results = await Promise.all(deliveries);
    assert.equal(results.length, 5);
    assert.equal(fake.tokenRequests, base + 1);
    assert.equal(new Set(fake.sends.slice(-5).map((s) => s.headers.authorization)).size, 1);
  });

  it('one delivery giving up does not cancel the token request the others wait on', async () => {
    const base = fake.tokenRequests;
    const release = fake.holdTokens();
    const ac = new AbortController();
    const a = channel.deliver(job({ version: 'abort' }), ac.signal);
    const b = channel.deliver(job({ version: 'abort' }), signal());
    await waitUntil(() => fake.tokenRequests > base);
    ac.abort();
    const err = await rejection(a);
    assert.ok(err instanceof RetryableError);
    release();
    const result = await b;
    assert.ok(result.providerMessageId);
    assert.equal(fake.tokenRequests, base + 1);
  });

  it('a 401 from FCM drops the cached token (retryable); the next attempt gets a new one', async () => {
    await channel.deliver(job({ version: 'revoked' }), signal());
    const base = fake.tokenRequests;
    fake.revoke(fake.issued.at(-1)!);
    const err = await rejection(channel.deliver(job({ version: 'revoked' }), signal()));
    assert.ok(err instanceof RetryableError);
    assert.equal(err.errorClass, 'access_token_rejected');
    assert.equal(err.detail.httpStatus, 401);
    assert.equal(err.addressGone, false);
    const result = await channel.deliver(job({ version: 'revoked' }), signal());
    assert.ok(result.providerMessageId);
    assert.equal(fake.tokenRequests, base + 1);
  });
});

describe('fcm channel: token endpoint answers', () => {
  it('an assertion signed with the wrong key is refused: permanent "auth"', async () => {
    const other = rsaPair();
    const err = await rejection(channel.deliver(job({ version: 'wrongkey', config: { service_account: serviceAccount({ private_key: other.privatePem }) } }), signal()));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'auth');
    assert.match(err.message, /Invalid JWT Signature/);
    assert.equal(err.detail.httpStatus, 400);
  });

  it('an unknown client_email is refused: permanent "auth"', async () => {
    const err = await rejection(channel.deliver(job({ version: 'wrongemail', config: { service_account: serviceAccount({ client_email: 'nobody@x.iam.gserviceaccount.com' }) } }), signal()));
    assert.equal(err.errorClass, 'auth');
    assert.match(err.message, /invalid_grant/);
  });

  it('5xx with Retry-After is retryable, 429 rate limited, a 200 without a token retryable; failures are not cached', async () => {
    const sends = fake.sends.length;
    try {
      fake.scriptToken({ status: 503, headers: { 'retry-after': '12' }, body: { error: 'backend_error' } });
      const e503 = await rejection(channel.deliver(job({ version: 'tok-fail' }), signal()));
      assert.ok(e503 instanceof RetryableError);
      assert.equal(e503.errorClass, 'token_http_503');
      assert.equal(e503.retryAfterMs, 12_000);

      fake.scriptToken({ status: 429, headers: { 'retry-after': '7' }, body: { error: 'rate_limit_exceeded' } });
      const e429 = await rejection(channel.deliver(job({ version: 'tok-fail' }), signal()));
      assert.ok(e429 instanceof RateLimitedError);
      assert.equal(e429.retryAfterMs, 7000);

      fake.scriptToken({ status: 200, body: { token_type: 'Bearer' } });
      const eBody = await rejection(channel.deliver(job({ version: 'tok-fail' }), signal()));
      assert.ok(eBody instanceof RetryableError);
      assert.equal(eBody.errorClass, 'token_response');
    } finally {
      fake.scriptToken(null);
    }
    assert.equal(fake.sends.length, sends, 'nothing was sent without a token');
    const ok = await channel.deliver(job({ version: 'tok-fail' }), signal());
    assert.ok(ok.providerMessageId);
  });
});

describe('fcm channel: FCM error answers', () => {
  const cases: { name: string; answer: ReturnType<typeof fcmErrors.unregistered>; type: typeof PermanentError | typeof RetryableError | typeof RateLimitedError; errorClass: string; addressGone: boolean; retryAfterMs?: number }[] = [
    { name: 'UNREGISTERED', answer: fcmErrors.unregistered(), type: PermanentError, errorClass: 'unregistered', addressGone: true },
    { name: 'INVALID_ARGUMENT on message.token', answer: fcmErrors.invalidTokenField(), type: PermanentError, errorClass: 'invalid_token', addressGone: true },
    { name: 'INVALID_ARGUMENT "not a valid FCM registration token"', answer: fcmErrors.invalidTokenMessage(), type: PermanentError, errorClass: 'invalid_token', addressGone: true },
    { name: 'INVALID_ARGUMENT about another field', answer: fcmErrors.invalidArgument('message.android.ttl', "Invalid value at 'message.android.ttl'"), type: PermanentError, errorClass: 'invalid_argument', addressGone: false },
    { name: 'INVALID_ARGUMENT without details (payload too big)', answer: fcmErrors.payloadTooLarge(), type: PermanentError, errorClass: 'invalid_argument', addressGone: false },
    { name: 'SENDER_ID_MISMATCH', answer: fcmErrors.senderIdMismatch(), type: PermanentError, errorClass: 'sender_id_mismatch', addressGone: true },
    { name: 'THIRD_PARTY_AUTH_ERROR', answer: fcmErrors.thirdPartyAuth(), type: PermanentError, errorClass: 'auth', addressGone: false },
    { name: 'QUOTA_EXCEEDED with Retry-After', answer: fcmErrors.quotaExceeded('17'), type: RateLimitedError, errorClass: 'rate_limited', addressGone: false, retryAfterMs: 17_000 },
    { name: '429 RESOURCE_EXHAUSTED with only an ErrorInfo', answer: fcmErrors.rateLimitExceeded(), type: RateLimitedError, errorClass: 'rate_limited', addressGone: false },
    { name: 'QUOTA_EXCEEDED without Retry-After', answer: fcmErrors.quotaExceeded(), type: RateLimitedError, errorClass: 'rate_limited', addressGone: false },
    { name: 'UNAVAILABLE with Retry-After', answer: fcmErrors.unavailable('30'), type: RetryableError, errorClass: 'http_503', addressGone: false, retryAfterMs: 30_000 },
    { name: 'INTERNAL', answer: fcmErrors.internal(), type: RetryableError, errorClass: 'http_500', addressGone: false },
    { name: 'INTERNAL with Retry-After', answer: fcmErrors.internal('5'), type: RetryableError, errorClass: 'http_500', addressGone: false, retryAfterMs: 5000 },
    { name: '502 HTML from the front end', answer: { status: 502, headers: { 'content-type': 'text/html' }, body: '<html>502. That’s an error.</html>' }, type: RetryableError, errorClass: 'http_502', addressGone: false },
  ];

  for (const c of cases) {
    it(`${c.name} -> ${c.type.name} ${c.errorClass}${c.addressGone ? ', address gone' : ''}`, async () => {
      const j = job({ version: 'errors' });
      fake.script(j.device!.token, c.answer);
      const err = await rejection(channel.deliver(j, signal()));
      assert.ok(err instanceof c.type, `${err.constructor.name}: ${err.message}`);
      assert.equal(err.errorClass, c.errorClass);
      assert.equal(err.addressGone, c.addressGone);
      assert.equal(err.retryAfterMs, c.retryAfterMs);
      assert.equal(err.detail.httpStatus, c.answer.status);
      assert.ok((err.detail.response ?? '').length > 0);
    });
  }

  it('Retry-After as an HTTP date', async () => {
    const j = job({ version: 'errors' });
    fake.script(j.device!.token, fcmErrors.unavailable(new Date(Date.now() + 120_000).toUTCString()));
    const err = await rejection(channel.deliver(j, signal()));
    assert.ok(err.retryAfterMs! > 110_000 && err.retryAfterMs! <= 120_000, String(err.retryAfterMs));
  });

  it('THIRD_PARTY_AUTH_ERROR does not drop the access token', async () => {
    await channel.deliver(job({ version: 'tpa' }), signal());
    const base = fake.tokenRequests;
    const j = job({ version: 'tpa' });
    fake.script(j.device!.token, fcmErrors.thirdPartyAuth());
    await rejection(channel.deliver(j, signal()));
    await channel.deliver(job({ version: 'tpa' }), signal());
    assert.equal(fake.tokenRequests, base);
  });

  it('a 503 then 200 for the same token: the retry succeeds', async () => {
    const j = job({ version: 'errors' });
    fake.script(j.device!.token, (count) => (count === 1 ? fcmErrors.unavailable() : { status: 200, body: { name: `projects/${PROJECT}/messages/retried` } }));
    await rejection(channel.deliver(j, signal()));
    const ok = await channel.deliver({ ...j, attempt: 2 }, signal());
    assert.equal(ok.providerMessageId, `projects/${PROJECT}/messages/retried`);
  });
});

describe('fcm channel: network', () => {
  it('a refused connection is retryable "network"', async () => {
    const port = await closedPort();
    const err = await rejection(channel.deliver(job({ version: 'net', baseUrl: `http://127.0.0.1:${port}` }), signal()));
    assert.ok(err instanceof RetryableError);
    assert.equal(err.errorClass, 'network');
  });

  it('a destination outside the address policy is permanent "destination_refused"', async () => {
    const strict = new SafeHttp({ allow: [], timeoutMs: 5000 });
    try {
      const err = await rejection(new FcmChannel({ http: strict, now }).deliver(job({ version: 'blocked' }), signal()));
      assert.ok(err instanceof PermanentError);
      assert.equal(err.errorClass, 'destination_refused');
    } finally {
      await strict.close();
    }
  });

  it('an endpoint that never answers is retryable "timeout"', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const quick = new SafeHttp({ allow: parseCidrList('127.0.0.0/8'), timeoutMs: 300 });
    try {
      const slow = new FcmChannel({ http: quick, now });
      const err = await rejection(slow.deliver(job({ version: 'slow', baseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` }), signal()));
      assert.ok(err instanceof RetryableError);
      assert.equal(err.errorClass, 'timeout');
    } finally {
      for (const s of sockets) s.destroy();
      await quick.close();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});

describe('fcm channel: payload limit', () => {
  it('the fake refuses a message over 4096 bytes (so the tests below can fail)', async () => {
    await channel.deliver(job({ version: 'limit' }), signal());
    const res = await fetch(`${fake.url}/v1/projects/${PROJECT}/messages:send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${fake.issued.at(-1)}` },
      body: JSON.stringify({ message: { token: 't', notification: { title: 'x', body: 'y'.repeat(4096) } } }),
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as any).error.status, 'INVALID_ARGUMENT');
  });

  it('a long body is cut with "…" to exactly fill the limit', async () => {
    const body = 'b'.repeat(10_000);
    await channel.deliver(job({ version: 'limit', body }), signal());
    const sent = lastSend();
    assert.equal(sent.status, 200);
    const m = sent.body.message;
    assert.equal(fake.payloadBytes(m), 4096);
    assert.ok(m.notification.body.endsWith('…'));
    assert.ok(body.startsWith(m.notification.body.slice(0, -1)));
    assert.equal(m.notification.title, 'Deploy finished');
  });

  it('cuts between whole characters (no broken emoji or surrogate halves)', async () => {
    const body = '👩‍👩‍👧‍👦 가나다 '.repeat(400);
    await channel.deliver(job({ version: 'limit', body }), signal());
    const m = lastSend().body.message;
    assert.equal(lastSend().status, 200);
    assert.ok(fake.payloadBytes(m) <= 4096);
    assert.ok(fake.payloadBytes(m) > 4096 - 40, String(fake.payloadBytes(m)));
    const kept: string = m.notification.body.slice(0, -1);
    assert.ok(kept.isWellFormed());
    assert.ok(body.startsWith(kept));
    const boundaries = new Set([...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(body)].map((s) => s.index));
    assert.ok(boundaries.has(kept.length), `cut at ${kept.length}, inside a character`);
  });

  it('a title too long to leave room for the body is cut, and the body dropped', async () => {
    const title = 'T'.repeat(1000);
    const data = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`k${i}`, 'v'.repeat(500)]));
    await channel.deliver(job({ version: 'limit', title, body: 'some body', data }), signal());
    const m = lastSend().body.message;
    assert.equal(lastSend().status, 200);
    assert.equal(m.notification.body, undefined);
    assert.ok(m.notification.title.endsWith('…'));
    assert.equal(fake.payloadBytes(m), 4096);
  });

  it('data that cannot fit on its own is permanent "payload_too_large" and nothing is sent', async () => {
    const sends = fake.sends.length;
    const err = await rejection(channel.deliver(job({ version: 'limit', data: { blob: 'x'.repeat(4100) } }), signal()));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'payload_too_large');
    assert.match(err.message, /4096/);
    assert.equal(fake.sends.length, sends);
  });
});

describe('fcm schemas', () => {
  it('FcmOptions accepts the documented options and refuses others', () => {
    assert.ok(Value.Check(FcmOptions, { priority: 'high', ttl: 60, collapse_key: 'k', android_channel_id: 'c', image: 'https://x/y.png', data: { a: 'b' } }));
    assert.ok(Value.Check(FcmOptions, {}));
    assert.ok(Value.Check(FcmOptions, { data: { fromage: 'ok', my_google: 'ok' } }));
    for (const bad of [
      { priority: 'urgent' },
      { ttl: -1 },
      { ttl: 2_419_201 },
      { ttl: 1.5 },
      { image: 'http://insecure/x.png' },
      { data: { n: 1 } },
      { data: { from: 'x' } },
      { data: { google_x: 'x' } },
      { data: { GCM_x: 'x' } },
      { collapse_key: 'x'.repeat(65) },
      { sound: 'default' },
    ]) {
      assert.equal(Value.Check(FcmOptions, bad), false, JSON.stringify(bad));
    }
  });

  it('FcmProviderConfig takes the service-account key file as is; service_account is the secret', () => {
    const keyFile = { type: 'service_account', project_id: 'p', private_key_id: 'k', private_key: '-----BEGIN PRIVATE KEY-----\n…', client_email: 'a@p.iam.gserviceaccount.com', client_id: '1', auth_uri: 'https://accounts.google.com/o/oauth2/auth', token_uri: 'https://oauth2.googleapis.com/token', universe_domain: 'googleapis.com' };
    assert.ok(Value.Check(FcmProviderConfig, { service_account: keyFile }));
    assert.ok(Value.Check(FcmProviderConfig, { service_account: keyFile, project_id: 'other' }));
    assert.equal(Value.Check(FcmProviderConfig, { service_account: { ...keyFile, type: 'authorized_user' } }), false);
    assert.equal(Value.Check(FcmProviderConfig, { service_account: keyFile, server_key: 'legacy' }), false);
    const { private_key: _omitted, ...noKey } = keyFile;
    assert.equal(Value.Check(FcmProviderConfig, { service_account: noKey }), false);
    assert.deepEqual([...FCM_SECRET_FIELDS], ['service_account']);
  });
});

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitUntil(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
