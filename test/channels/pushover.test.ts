// The Pushover channel against a fake Pushover API (test/fakes/pushover.ts) that validates requests
// as api.pushover.net does and answers with its bodies, status codes and X-Limit-App-* headers.

import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ajv } from 'ajv';
import { Value } from 'typebox/value';
import { parseCidrList } from '../../src/net/address-policy.ts';
import { SafeHttp } from '../../src/net/safe-http.ts';
import { DeliveryError, PermanentError, RateLimitedError, RetryableError, type DeliveryJob, type ProviderCredentials } from '../../src/channels/channel.ts';
import {
  PUSHOVER_SECRET_FIELDS,
  PushoverChannel,
  PushoverOptions,
  PushoverProviderConfig,
  parseReceiptCallback,
  pollReceipt,
  type AppLimits,
} from '../../src/channels/pushover.ts';
import { pushoverKey, startFakePushover, type FakePushover } from '../fakes/pushover.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';

const APP = pushoverKey('app');
const USER = pushoverKey('usr');
const CREATED_AT = Date.UTC(2025, 0, 2, 3, 4, 5, 678);

let fake: FakePushover;
let http: SafeHttp;
let limitsSeen: Array<{ workspaceId: string; limits: AppLimits }>;
let channel: PushoverChannel;

function creds(over: Partial<ProviderCredentials> = {}): ProviderCredentials {
  return { provider: 'pushover', config: { app_token: APP }, baseUrl: fake.url, version: 'v1', ...over };
}

function job(over: { options?: Record<string, unknown>; title?: string; body?: string; device?: string | null; userKey?: string; callbackUrl?: string; provider?: ProviderCredentials | null } = {}): DeliveryJob {
  return {
    deliveryId: 'dlv_1',
    notificationId: 'ntf_1',
    workspaceId: 'ws_1',
    channel: 'pushover',
    attempt: 1,
    notification: {
      kind: 'deploy',
      title: over.title ?? 'Deploy finished',
      body: over.body ?? 'All green',
      data: null,
      createdAt: CREATED_AT,
      options: over.options ?? {},
      fallback: false,
    },
    recipient: {
      id: 'alice',
      name: 'Alice',
      email: null,
      phone: null,
      locale: null,
      timezone: null,
      webhookUrl: null,
      webhookSecret: null,
      pushover: { userKey: over.userKey ?? USER, device: over.device === undefined ? null : over.device },
      slackWebhookUrl: null,
      discordWebhookUrl: null,
      kakaoPhone: null,
    },
    ...(over.provider === null ? {} : { provider: over.provider ?? creds() }),
    ...(over.callbackUrl ? { callbackUrl: over.callbackUrl } : {}),
  };
}

const signal = () => AbortSignal.timeout(10_000);

async function rejects(p: Promise<unknown>): Promise<DeliveryError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DeliveryError, `expected a DeliveryError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the delivery to fail');
}

function lastMessageForm(): Record<string, string> {
  const r = fake.requests.at(-1);
  assert.ok(r, 'the fake received a request');
  assert.equal(r.method, 'POST');
  assert.equal(r.path, '/1/messages.json');
  return r.form;
}

before(async () => {
  fake = await startFakePushover();
  fake.registerApp(APP);
  fake.registerUser(USER, ['iphone', 'pixel']);
  http = new SafeHttp({ allow: parseCidrList('127.0.0.0/8,::1/128'), timeoutMs: 5000 });
});

after(async () => {
  await http.close();
  await fake.close();
});

beforeEach(() => {
  fake.requests.length = 0;
  fake.limits.remaining = 10_000;
  limitsSeen = [];
  channel = new PushoverChannel({ http, onAppLimits: (workspaceId, limits) => limitsSeen.push({ workspaceId, limits }) });
});

describe('sending', () => {
  it('posts a form the fake accepts, returns the request id and reports the app quota', async () => {
    const res = await channel.deliver(job(), signal());
    assert.equal(fake.requests.length, 1);
    const r = fake.requests[0]!;
    assert.equal(r.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.deepEqual(r.repeated, []);
    assert.deepEqual(r.form, {
      token: APP,
      user: USER,
      title: 'Deploy finished',
      message: 'All green',
      timestamp: String(Math.floor(CREATED_AT / 1000)),
    });
    const sent = fake.messages.at(-1)!;
    assert.equal(res.providerMessageId, sent.request);
    assert.match(res.providerMessageId!, /^[0-9a-f-]{36}$/);
    assert.equal(res.httpStatus, 200);
    assert.equal(res.receipt, undefined);
    assert.deepEqual(limitsSeen, [{ workspaceId: 'ws_1', limits: { limit: 10_000, remaining: 9_999, resetAt: fake.limits.reset } }]);
  });

  it('maps channel_options and the recipient device onto Pushover fields', async () => {
    await channel.deliver(job({ device: 'iphone', options: { priority: 1, sound: 'cashregister', url: 'https://ci.example/42', url_title: 'Build 42', html: true, ttl: 3600 } }), signal());
    const f = lastMessageForm();
    assert.equal(f.device, 'iphone');
    assert.equal(f.priority, '1');
    assert.equal(f.sound, 'cashregister');
    assert.equal(f.url, 'https://ci.example/42');
    assert.equal(f.url_title, 'Build 42');
    assert.equal(f.html, '1');
    assert.equal(f.ttl, '3600');
    assert.equal(f.retry, undefined);
    assert.equal(f.expire, undefined);
    assert.equal(f.callback, undefined);
  });

  it('lets options.device override the recipient device', async () => {
    await channel.deliver(job({ device: 'iphone', options: { device: 'pixel' } }), signal());
    assert.equal(lastMessageForm().device, 'pixel');
  });

  it('sends the title as the message when the body is empty', async () => {
    await channel.deliver(job({ body: '' }), signal());
    const f = lastMessageForm();
    assert.equal(f.message, 'Deploy finished');
    assert.equal(f.title, undefined);
  });

  it('refuses a notification with neither title nor body without calling Pushover', async () => {
    const err = await rejects(channel.deliver(job({ body: '', title: '' }), signal()));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'empty_message');
    assert.equal(fake.requests.length, 0);
  });

  it('needs the workspace credentials and a recipient user key', async () => {
    const noCreds = await rejects(channel.deliver(job({ provider: null }), signal()));
    assert.equal(noCreds.errorClass, 'no_credentials');
    assert.equal(noCreds.kind, 'permanent');
    const j = job();
    j.recipient.pushover = null;
    const noAddress = await rejects(channel.deliver(j, signal()));
    assert.equal(noAddress.errorClass, 'no_address');
    assert.equal(fake.requests.length, 0);
  });
});

describe('emergency priority', () => {
  it('sends retry, expire and the callback URL, and returns the receipt to follow', async () => {
    const before = Date.now();
    const res = await channel.deliver(job({ options: { priority: 2, retry: 60, expire: 3600, ttl: 99 }, callbackUrl: 'https://herald.example/v1/callbacks/pushover/abc' }), signal());
    const afterMs = Date.now();
    const f = lastMessageForm();
    assert.equal(f.priority, '2');
    assert.equal(f.retry, '60');
    assert.equal(f.expire, '3600');
    assert.equal(f.callback, 'https://herald.example/v1/callbacks/pushover/abc');
    assert.equal(f.ttl, undefined, 'ttl is not sent with priority 2 (Pushover ignores it)');
    const sent = fake.messages.at(-1)!;
    assert.ok(sent.receipt);
    assert.equal(res.providerMessageId, sent.receipt);
    assert.equal(res.receipt?.id, sent.receipt);
    assert.ok(res.receipt!.expiresAt >= before + 3_600_000 && res.receipt!.expiresAt <= afterMs + 3_600_000, 'expiresAt = now + expire');
  });

  it('asks for no callback when Herald has no public URL', async () => {
    await channel.deliver(job({ options: { priority: 2, retry: 30, expire: 10800 } }), signal());
    assert.equal(lastMessageForm().callback, undefined);
  });

  for (const [label, options, pattern] of [
    ['without retry', { priority: 2, expire: 600 }, /retry/],
    ['without expire', { priority: 2, retry: 60 }, /expire/],
    ['retry under 30 s', { priority: 2, retry: 29, expire: 600 }, /retry/],
    ['expire over 10800 s', { priority: 2, retry: 60, expire: 10801 }, /expire/],
    ['priority out of range', { priority: 3 }, /priority/],
  ] as const) {
    it(`is refused before sending ${label}`, async () => {
      const err = await rejects(channel.deliver(job({ options: options as Record<string, unknown> }), signal()));
      assert.ok(err instanceof PermanentError);
      assert.equal(err.errorClass, 'invalid_options');
      assert.match(err.message, pattern);
      assert.equal(fake.requests.length, 0);
    });
  }
});

describe('option and config schemas', () => {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const check = (v: unknown) => {
    const byTypebox = Value.Check(PushoverOptions, v);
    const byAjv = ajv.validate(PushoverOptions, v);
    assert.equal(byTypebox, byAjv, `TypeBox and Ajv agree on ${JSON.stringify(v)}`);
    return byAjv;
  };

  it('accepts valid options', () => {
    assert.equal(check({}), true);
    assert.equal(check({ priority: 1, sound: 'siren', url: 'https://x.example', url_title: 'x', html: true, ttl: 60, device: 'iphone,pixel' }), true);
    assert.equal(check({ priority: 2, retry: 30, expire: 10800 }), true);
  });

  it('rejects emergency options without retry/expire or outside their bounds', () => {
    assert.equal(check({ priority: 2 }), false);
    assert.equal(check({ priority: 2, retry: 60 }), false);
    assert.equal(check({ priority: 2, expire: 60 }), false);
    assert.equal(check({ priority: 2, retry: 29, expire: 60 }), false);
    assert.equal(check({ priority: 2, retry: 60, expire: 10801 }), false);
  });

  it('rejects unknown fields, bad priorities, long urls and bad device names', () => {
    assert.equal(check({ prio: 1 }), false);
    assert.equal(check({ priority: -3 }), false);
    assert.equal(check({ priority: 1.5 }), false);
    assert.equal(check({ url: `https://x.example/${'a'.repeat(500)}` }), false);
    assert.equal(check({ url_title: 'x'.repeat(101) }), false);
    assert.equal(check({ device: 'a device' }), false);
    assert.equal(check({ html: 1 }), false);
  });

  it('validates the provider config and names its secret', () => {
    assert.equal(Value.Check(PushoverProviderConfig, { app_token: APP }), true);
    assert.equal(Value.Check(PushoverProviderConfig, { app_token: 'short' }), false);
    assert.equal(Value.Check(PushoverProviderConfig, { app_token: APP, extra: 1 }), false);
    assert.deepEqual([...PUSHOVER_SECRET_FIELDS], ['app_token']);
  });
});

describe('limits', () => {
  it('truncates message and title (by code point) with an ellipsis', async () => {
    const body = '😀'.repeat(1500);
    const title = 't'.repeat(300);
    await channel.deliver(job({ body, title }), signal());
    const f = lastMessageForm();
    const msg = Array.from(f.message!);
    assert.equal(msg.length, 1024);
    assert.equal(msg.at(-1), '…');
    assert.equal(msg.slice(0, 1023).join(''), '😀'.repeat(1023));
    assert.equal(f.title, `${'t'.repeat(249)}…`);
  });

  it('never cuts an HTML message inside a tag', async () => {
    const body = `${'x'.repeat(1020)}<font color="#ff0000">red</font>`;
    await channel.deliver(job({ body, options: { html: true } }), signal());
    const f = lastMessageForm();
    assert.equal(f.message, `${'x'.repeat(1020)}…`);
  });

  it('leaves text at the limit untouched', async () => {
    const body = 'b'.repeat(1024);
    await channel.deliver(job({ body, title: 'a'.repeat(250) }), signal());
    const f = lastMessageForm();
    assert.equal(f.message, body);
    assert.equal(f.title, 'a'.repeat(250));
  });

  it('truncates url_title and refuses an over-long url without sending', async () => {
    await channel.deliver(job({ options: { url: 'https://x.example', url_title: 'u'.repeat(150) } }), signal());
    assert.equal(lastMessageForm().url_title, `${'u'.repeat(99)}…`);
    fake.requests.length = 0;
    const err = await rejects(channel.deliver(job({ options: { url: `https://x.example/${'a'.repeat(600)}` } }), signal()));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'payload_too_large');
    assert.match(err.message, /512/);
    assert.equal(fake.requests.length, 0);
  });
});

describe("Pushover's errors", () => {
  it('an invalid user key is permanent and marks the address gone', async () => {
    const err = await rejects(channel.deliver(job({ userKey: pushoverKey('gone') }), signal()));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'invalid_user');
    assert.equal(err.addressGone, true);
    assert.equal(err.message, 'user identifier is not a valid user, group, or subscribed user key, see https://pushover.net/api#identifiers');
    assert.equal(err.detail.httpStatus, 400);
    assert.match(err.detail.response!, /"user":"invalid"/);
    assert.equal(limitsSeen.length, 1, 'the quota headers of an error answer are reported too');
  });

  it('an invalid app token is auth, not the address', async () => {
    const err = await rejects(channel.deliver(job({ provider: creds({ config: { app_token: pushoverKey('bad') } }) }), signal()));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'auth');
    assert.equal(err.addressGone, false);
    assert.equal(err.message, 'application token is invalid, see https://pushover.net/api');
  });

  it("an unknown device is the address's fault only when it is the recipient's own device", async () => {
    const own = await rejects(channel.deliver(job({ device: 'oldphone' }), signal()));
    assert.equal(own.errorClass, 'invalid_device');
    assert.equal(own.addressGone, true);
    assert.equal(own.message, 'device name is not valid for user');
    const fromOptions = await rejects(channel.deliver(job({ options: { device: 'oldphone' } }), signal()));
    assert.equal(fromOptions.errorClass, 'invalid_device');
    assert.equal(fromOptions.addressGone, false);
  });

  it('other 4xx answers are permanent with Pushover\'s own text, all errors joined', async () => {
    const err = await rejects(channel.deliver(job({ options: { sound: 'kazoo' } }), signal()));
    assert.equal(err.errorClass, 'invalid_request');
    assert.equal(err.kind, 'permanent');
    assert.equal(err.message, 'sound is not a valid sound for this application');
    fake.failNext({ status: 400, body: JSON.stringify({ title: 'is too long', url: 'is invalid', errors: ['title is too long', 'url is invalid'], status: 0, request: 'x' }) });
    const two = await rejects(channel.deliver(job(), signal()));
    assert.equal(two.message, 'title is too long; url is invalid');
    assert.equal(two.addressGone, false);
  });

  it('429 waits until the app quota resets (X-Limit-App-Reset)', async () => {
    fake.limits.remaining = 0;
    const before = Date.now();
    const err = await rejects(channel.deliver(job(), signal()));
    const afterMs = Date.now();
    assert.ok(err instanceof RateLimitedError);
    assert.equal(err.errorClass, 'rate_limited');
    assert.equal(err.detail.httpStatus, 429);
    const reset = fake.limits.reset * 1000;
    assert.ok(err.retryAfterMs! <= reset - before && err.retryAfterMs! >= reset - afterMs, `retryAfterMs ${err.retryAfterMs} ends at the reset`);
    assert.deepEqual(limitsSeen.at(-1)?.limits, { limit: 10_000, remaining: 0, resetAt: fake.limits.reset });
  });

  it('5xx is retryable, honouring Retry-After and never sooner than 5 s', async () => {
    fake.failNext({ status: 503, headers: { 'Retry-After': '7' } });
    const e503 = await rejects(channel.deliver(job(), signal()));
    assert.ok(e503 instanceof RetryableError);
    assert.equal(e503.errorClass, 'http_503');
    assert.equal(e503.retryAfterMs, 7000);
    fake.failNext({ status: 500 });
    const e500 = await rejects(channel.deliver(job(), signal()));
    assert.equal(e500.errorClass, 'http_500');
    assert.equal(e500.retryAfterMs, 5000);
    assert.equal(limitsSeen.length, 0, 'no quota headers on these answers, no report');
  });

  it('scripted failures can target one user key', async () => {
    const other = pushoverKey('oth');
    fake.registerUser(other);
    fake.failNext({ status: 502, user: other });
    await channel.deliver(job(), signal());
    const err = await rejects(channel.deliver(job({ userKey: other }), signal()));
    assert.equal(err.errorClass, 'http_502');
  });
});

describe('network errors', () => {
  it('a closed port is a retryable network error', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const err = await rejects(channel.deliver(job({ provider: creds({ baseUrl: `http://127.0.0.1:${port}` }) }), signal()));
    assert.ok(err instanceof RetryableError);
    assert.equal(err.errorClass, 'network');
  });

  it('a server that never answers is a retryable timeout', async () => {
    const hang: Server = createServer(() => {});
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const quick = new SafeHttp({ allow: parseCidrList('127.0.0.0/8'), timeoutMs: 200 });
    try {
      const ch = new PushoverChannel({ http: quick });
      const err = await rejects(ch.deliver(job({ provider: creds({ baseUrl: `http://127.0.0.1:${(hang.address() as AddressInfo).port}` }) }), signal()));
      assert.ok(err instanceof RetryableError);
      assert.equal(err.errorClass, 'timeout');
    } finally {
      await quick.close();
      hang.closeAllConnections();
      await new Promise<void>((r) => hang.close(() => r()));
    }
  });

  it('a destination outside the allowed networks is refused for good', async () => {
    const strict = new SafeHttp({ allow: [], timeoutMs: 2000 });
    try {
      const err = await rejects(new PushoverChannel({ http: strict }).deliver(job(), signal()));
      assert.ok(err instanceof PermanentError);
      assert.equal(err.errorClass, 'destination_refused');
      assert.equal(fake.requests.length, 0);
    } finally {
      await strict.close();
    }
  });
});

describe('receipts', () => {
  it('polls a pending, then acknowledged receipt', async () => {
    const res = await channel.deliver(job({ options: { priority: 2, retry: 60, expire: 600 } }), signal());
    const id = res.receipt!.id;
    fake.requests.length = 0;
    const pending = await pollReceipt(http, creds(), id, signal());
    const r = fake.requests[0]!;
    assert.equal(r.method, 'GET');
    assert.equal(r.path, `/1/receipts/${id}.json`);
    assert.deepEqual(r.query, { token: APP });
    assert.equal(pending.acknowledged, false);
    assert.equal(pending.expired, false);
    assert.equal(pending.expiresAt, fake.receipts.get(id)!.expiresAt * 1000);
    assert.equal(pending.acknowledgedAt, undefined);

    await fake.acknowledge(id, { device: 'pixel', at: 1_700_000_000 });
    const acked = await pollReceipt(http, creds(), id, signal());
    assert.deepEqual(acked, {
      acknowledged: true,
      acknowledgedAt: 1_700_000_000_000,
      acknowledgedBy: USER,
      acknowledgedByDevice: 'pixel',
      expired: false,
      expiresAt: fake.receipts.get(id)!.expiresAt * 1000,
    });
  });

  it('reports an expired receipt', async () => {
    const res = await channel.deliver(job({ options: { priority: 2, retry: 30, expire: 60 } }), signal());
    fake.expire(res.receipt!.id);
    const state = await pollReceipt(http, creds(), res.receipt!.id, signal());
    assert.equal(state.expired, true);
    assert.equal(state.acknowledged, false);
  });

  it('classifies unknown receipts and a bad token', async () => {
    const missing = await rejects(pollReceipt(http, creds(), pushoverKey('nope'), signal()));
    assert.equal(missing.errorClass, 'receipt_not_found');
    assert.equal(missing.message, 'receipt not found; may be invalid or expired');
    const malformed = await rejects(pollReceipt(http, creds(), '../../messages', signal()));
    assert.equal(malformed.errorClass, 'receipt_not_found');
    const res = await channel.deliver(job({ options: { priority: 2, retry: 30, expire: 60 } }), signal());
    const auth = await rejects(pollReceipt(http, creds({ config: { app_token: pushoverKey('bad') } }), res.receipt!.id, signal()));
    assert.equal(auth.errorClass, 'auth');
  });

  it('polls no more often than Pushover allows: HERALD_RECEIPT_POLL_INTERVAL refuses less than 5 s', () => {
    // Pushover's rule: no more than one receipt request every 5 seconds. The setting is what the
    // receipt poller runs on (app.ts), so its lower bound is what keeps Herald within the rule.
    const PUSHOVER_MIN_MS = 5_000;
    const poll = (v: string) => loadConfig({}, { HERALD_RECEIPT_POLL_INTERVAL: v }).receiptPollInterval;
    assert.equal(poll('5s'), PUSHOVER_MIN_MS);
    for (const tooOften of ['4999ms', '4s', '1s', '100ms']) {
      assert.throws(() => poll(tooOften), (err: unknown) => err instanceof ConfigError && err.variable === 'HERALD_RECEIPT_POLL_INTERVAL', tooOften);
    }
    assert.ok(loadConfig({}, {}).receiptPollInterval >= PUSHOVER_MIN_MS, 'the default is within the rule');
  });

  it("parses Pushover's acknowledgement callback", async () => {
    const forms: Array<Record<string, string>> = [];
    const rx = createServer((req, res) => {
      let b = '';
      req.on('data', (c: Buffer) => (b += c.toString('utf8')));
      req.on('end', () => {
        forms.push(Object.fromEntries(new URLSearchParams(b)));
        res.end('ok');
      });
    });
    await new Promise<void>((r) => rx.listen(0, '127.0.0.1', r));
    try {
      const callbackUrl = `http://127.0.0.1:${(rx.address() as AddressInfo).port}/cb/pushover?sig=abc`;
      const res = await channel.deliver(job({ options: { priority: 2, retry: 30, expire: 600 }, callbackUrl }), signal());
      await fake.acknowledge(res.receipt!.id, { device: 'iphone', at: 1_700_000_123 });
      assert.equal(forms.length, 1);
      assert.deepEqual(parseReceiptCallback(forms[0]!), {
        receipt: res.receipt!.id,
        acknowledged: true,
        acknowledgedAt: 1_700_000_123_000,
        acknowledgedBy: USER,
        acknowledgedByDevice: 'iphone',
      });
    } finally {
      rx.closeAllConnections();
      await new Promise<void>((r) => rx.close(() => r()));
    }
  });

  it('rejects forms that are not a receipt callback', () => {
    assert.equal(parseReceiptCallback({}), null);
    assert.equal(parseReceiptCallback({ receipt: 'short', acknowledged: '1' }), null);
    assert.equal(parseReceiptCallback({ receipt: pushoverKey(), acknowledged: 'yes' }), null);
    assert.deepEqual(parseReceiptCallback({ receipt: 'A'.repeat(30), acknowledged: '0' }), { receipt: 'A'.repeat(30), acknowledged: false });
  });
});
