// The Twilio SMS channel against a fake Twilio (test/fakes/twilio.ts) that validates requests as
// Twilio does and answers with Twilio's bodies; Twilio request signatures against Twilio's
// published example and the fake's own signer.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { DeliveryError, PermanentError, RateLimitedError, RetryableError, type DeliveryJob } from '../../src/channels/channel.ts';
import { SmsChannel, SmsOptions, smsText, TWILIO_SECRET_FIELDS, TwilioProviderConfig } from '../../src/channels/sms.ts';
import {
  computeTwilioSignature,
  parseTwilioCallback,
  TWILIO_CALLBACK_FIELDS,
  twilioCallbackStatus,
  verifyTwilioSignature,
} from '../../src/inbound/verifiers/twilio.ts';
import { parseCidrList } from '../../src/net/address-policy.ts';
import { SafeHttp } from '../../src/net/safe-http.ts';
import { startFakeTwilio, type FakeTwilio } from '../fakes/twilio.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';

const TO = '+14155550100';
const OTHER_SENDER = '+15005550009';

let fake: FakeTwilio;
let http: SafeHttp;
let channel: SmsChannel;
let n = 0;

before(async () => {
  fake = await startFakeTwilio({ senders: ['+15005550006', OTHER_SENDER] });
  http = new SafeHttp({ allow: parseCidrList('127.0.0.0/8,::1/128'), timeoutMs: 5000 });
  channel = new SmsChannel({ http });
});

after(async () => {
  await channel.close();
  await http.close();
  await fake.close();
});

function job(opts: { config?: Record<string, unknown>; baseUrl?: string | null; title?: string; body?: string; options?: Record<string, unknown>; phone?: string | null; callbackUrl?: string; noProvider?: boolean } = {}): DeliveryJob {
  n++;
  return {
    deliveryId: `dlv_${n}`,
    notificationId: `ntf_${n}`,
    workspaceId: 'ws_1',
    channel: 'sms',
    attempt: 1,
    notification: { kind: 'alert', title: opts.title ?? 'Deploy finished', body: opts.body ?? 'All green', data: null, createdAt: Date.now(), options: opts.options ?? {}, fallback: false },
    recipient: {
      id: 'alice',
      name: null,
      email: null,
      phone: opts.phone === undefined ? TO : opts.phone,
      locale: null,
      timezone: null,
      webhookUrl: null,
      webhookSecret: null,
      pushover: null,
      slackWebhookUrl: null,
      discordWebhookUrl: null,
      kakaoPhone: null,
    },
    ...(opts.noProvider ? {} : { provider: { provider: 'twilio' as const, config: opts.config ?? fake.config(), baseUrl: opts.baseUrl === undefined ? fake.url : opts.baseUrl, version: 'v1' } }),
    ...(opts.callbackUrl ? { callbackUrl: opts.callbackUrl } : {}),
  };
}

const signal = () => new AbortController().signal;

async function failure(j: DeliveryJob, ch: SmsChannel = channel): Promise<DeliveryError> {
  try {
    await ch.deliver(j, signal());
  } catch (err) {
    assert.ok(err instanceof DeliveryError, `not a DeliveryError: ${String(err)}`);
    return err;
  }
  assert.fail('deliver succeeded');
}

/** The last request the fake received, asserting there was one more than `before`. */
function lastRequest(countBefore: number) {
  assert.equal(fake.requests.length, countBefore + 1, 'exactly one request to Twilio');
  return fake.requests.at(-1)!;
}

describe('sending', () => {
  it('POSTs the form Twilio expects with basic auth and returns the message SID', async () => {
    const before = fake.requests.length;
    const result = await channel.deliver(job({ callbackUrl: 'https://herald.example.com/v1/callbacks/twilio/dlv_x?t=abc' }), signal());
    const req = lastRequest(before);
    assert.equal(req.method, 'POST');
    assert.equal(req.path, `/2010-04-01/Accounts/${fake.accountSid}/Messages.json`);
    assert.equal(req.user, fake.accountSid);
    assert.equal(req.password, fake.authToken);
    assert.match(String(req.headers['content-type']), /^application\/x-www-form-urlencoded/);
    assert.deepEqual(req.form, {
      To: TO,
      From: '+15005550006',
      Body: 'Deploy finished\nAll green',
      StatusCallback: 'https://herald.example.com/v1/callbacks/twilio/dlv_x?t=abc',
    });
    assert.equal(req.status, 201);
    assert.match(result.providerMessageId!, /^SM[0-9a-f]{32}$/);
    assert.equal(result.providerMessageId, req.sid);
    assert.equal(result.httpStatus, 201);
    assert.ok(!result.response!.includes('All green'), 'the attempt log keeps no copy of the message text');
  });

  it('asks for no status callback when Herald has no public URL', async () => {
    const before = fake.requests.length;
    await channel.deliver(job(), signal());
    assert.equal('StatusCallback' in lastRequest(before).form, false);
  });

  it('sends through a Messaging Service when configured (Twilio answers "accepted")', async () => {
    const before = fake.requests.length;
    const result = await channel.deliver(job({ config: fake.config({}, 'messaging_service') }), signal());
    const req = lastRequest(before);
    assert.equal(req.form.MessagingServiceSid, [...fake.messagingServices][0]);
    assert.equal('From' in req.form, false);
    assert.equal(fake.messages.get(result.providerMessageId!)!.resource.status, 'accepted');
  });

  it('uses options.from as the sender', async () => {
    const before = fake.requests.length;
    await channel.deliver(job({ options: { from: OTHER_SENDER } }), signal());
    assert.equal(lastRequest(before).form.From, OTHER_SENDER);
  });

  it('joins title and body, or sends whichever is present', async () => {
    assert.equal(smsText('  Hi ', ' there '), 'Hi\nthere');
    assert.equal(smsText('', 'only body'), 'only body');
    assert.equal(smsText('only title', '  '), 'only title');
    const before = fake.requests.length;
    await channel.deliver(job({ title: '', body: 'Code 123456' }), signal());
    assert.equal(lastRequest(before).form.Body, 'Code 123456');
  });

  it('uses https://api.twilio.com when the provider sets no base URL', async () => {
    const urls: string[] = [];
    const recording = {
      request: async (_method: string, url: string) => {
        urls.push(url);
        return { status: 201, headers: {}, excerpt: '{"sid":"SM00000000000000000000000000000000","status":"queued"}' };
      },
    } as unknown as SafeHttp;
    const result = await new SmsChannel({ http: recording }).deliver(job({ baseUrl: null }), signal());
    assert.deepEqual(urls, [`https://api.twilio.com/2010-04-01/Accounts/${fake.accountSid}/Messages.json`]);
    assert.equal(result.providerMessageId, 'SM00000000000000000000000000000000');
  });
});

describe('refusing before sending', () => {
  const cases: [string, () => DeliveryJob, string][] = [
    ['no phone number', () => job({ phone: null }), 'no_address'],
    ['no provider', () => job({ noProvider: true }), 'config'],
    ['both from and messaging_service_sid', () => job({ config: { ...fake.config(), messaging_service_sid: [...fake.messagingServices][0] } }), 'config'],
    ['neither from nor messaging_service_sid', () => job({ config: { account_sid: fake.accountSid, auth_token: fake.authToken } }), 'config'],
    ['a malformed account sid', () => job({ config: fake.config({ account_sid: 'ACnope' }) }), 'config'],
    ['max_segments out of range', () => job({ config: fake.config({ max_segments: 11 }) }), 'config'],
    ['an empty message', () => job({ title: ' ', body: '' }), 'empty_message'],
  ];
  for (const [name, make, errorClass] of cases) {
    it(`${name}: permanent '${errorClass}', nothing sent`, async () => {
      const before = fake.requests.length;
      const err = await failure(make());
      assert.ok(err instanceof PermanentError);
      assert.equal(err.errorClass, errorClass);
      assert.equal(err.addressGone, false);
      assert.equal(fake.requests.length, before);
    });
  }
});

describe('segment limits', () => {
  const long = 'a'.repeat(2000); // 14 concatenated GSM-7 segments

  it('truncates to 10 segments by default, with "..."', async () => {
    const before = fake.requests.length;
    await channel.deliver(job({ title: '', body: long }), signal());
    const body = lastRequest(before).form.Body!;
    assert.equal(body, `${'a'.repeat(1527)}...`);
  });

  it('truncates to the provider max_segments; options may lower it but not raise it', async () => {
    let before = fake.requests.length;
    await channel.deliver(job({ title: '', body: long, config: fake.config({ max_segments: 2 }) }), signal());
    assert.equal(lastRequest(before).form.Body, `${'a'.repeat(303)}...`);

    before = fake.requests.length;
    await channel.deliver(job({ title: '', body: long, config: fake.config({ max_segments: 2 }), options: { max_segments: 1 } }), signal());
    assert.equal(lastRequest(before).form.Body, `${'a'.repeat(157)}...`);

    before = fake.requests.length;
    await channel.deliver(job({ title: '', body: long, config: fake.config({ max_segments: 2 }), options: { max_segments: 5 } }), signal());
    assert.equal(lastRequest(before).form.Body!.length, 306);
  });

  it('truncates UCS-2 text with "…" at 67 code units per segment', async () => {
    const before = fake.requests.length;
    await channel.deliver(job({ title: 'Überweisung', body: 'ç'.repeat(300), options: { max_segments: 2 } }), signal());
    const body = lastRequest(before).form.Body!;
    assert.equal(body.length, 134);
    assert.ok(body.startsWith('Überweisung\nçç'));
    assert.ok(body.endsWith('ç…'));
  });

  it('rejects with too_many_segments when on_too_long is "reject", saying how many it needed', async () => {
    const before = fake.requests.length;
    const err = await failure(job({ title: '', body: long, config: fake.config({ on_too_long: 'reject', max_segments: 3 }) }));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'too_many_segments');
    assert.match(err.message, /needs 14 SMS segments/);
    assert.match(err.message, /limit is 3/);
    assert.equal(fake.requests.length, before);
  });

  it('lets options.on_too_long override the provider setting', async () => {
    const before = fake.requests.length;
    await channel.deliver(job({ title: '', body: long, config: fake.config({ on_too_long: 'reject' }), options: { on_too_long: 'truncate' } }), signal());
    assert.equal(lastRequest(before).form.Body!.length, 1530);
    const err = await failure(job({ title: '', body: long, options: { on_too_long: 'reject', max_segments: 13 } }));
    assert.equal(err.errorClass, 'too_many_segments');
  });

  it('sends a message exactly at the limit unchanged', async () => {
    const before = fake.requests.length;
    await channel.deliver(job({ title: '', body: 'a'.repeat(160), options: { max_segments: 1, on_too_long: 'reject' } }), signal());
    assert.equal(lastRequest(before).form.Body, 'a'.repeat(160));
  });
});

describe("Twilio's answers", () => {
  let k = 0;
  /** A fresh To number, so scripted failures never leak between tests. */
  const number = () => `+1415555${String(2000 + ++k).padStart(4, '0')}`;

  const permanent: [number, string, boolean][] = [
    [21211, 'invalid_number', true],
    [21614, 'not_mobile', true],
    [21610, 'opted_out', false],
    [21408, 'config', false],
    [21606, 'config', false],
    [21659, 'config', false],
    [21212, 'config', false],
    [21617, 'payload_too_large', false],
    [21612, 'twilio_21612', false],
  ];
  for (const [code, errorClass, addressGone] of permanent) {
    it(`${code}: permanent '${errorClass}'${addressGone ? ', address gone' : ''}, with Twilio's code and message`, async () => {
      const to = number();
      fake.failTo(to, { code, ...(code === 21612 ? { message: "The 'To' phone number is not currently reachable using the 'From' phone number via SMS." } : {}) });
      const err = await failure(job({ phone: to }));
      assert.ok(err instanceof PermanentError, err.constructor.name);
      assert.equal(err.errorClass, errorClass);
      assert.equal(err.addressGone, addressGone);
      assert.equal(err.retryAfterMs, undefined);
      assert.match(err.message, new RegExp(`Twilio error ${code} \\(HTTP 400\\)`));
      const sent = JSON.parse(err.detail.response!);
      assert.equal(sent.code, code);
      assert.ok(err.message.includes(sent.message), err.message);
      assert.equal(err.detail.httpStatus, 400);
    });
  }

  it("a From that is not the account's: Twilio's own 21606, permanent 'config'", async () => {
    const err = await failure(job({ config: fake.config({ from: '+15551234567' }) }));
    assert.equal(err.errorClass, 'config');
    assert.match(err.message, /21606/);
  });

  it("a wrong auth token: 401 / 20003, permanent 'auth'", async () => {
    const err = await failure(job({ config: fake.config({ auth_token: 'f'.repeat(32) }) }));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'auth');
    assert.equal(err.detail.httpStatus, 401);
    assert.match(err.message, /20003.*Authenticate/);
  });

  it("another account's SID with these credentials: 20003, permanent 'auth'", async () => {
    const err = await failure(job({ config: fake.config({ account_sid: `AC${'0'.repeat(32)}` }) }));
    assert.equal(err.errorClass, 'auth');
  });

  it("a base URL that is not Twilio's API root: 404 / 20404, permanent 'config'", async () => {
    const err = await failure(job({ baseUrl: `${fake.url}/proxy` }));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'config');
    assert.equal(err.detail.httpStatus, 404);
  });

  it('429 / 20429 with Retry-After: rate limited for that long', async () => {
    const to = number();
    fake.failTo(to, { status: 429, retryAfter: '7' });
    const err = await failure(job({ phone: to }));
    assert.ok(err instanceof RateLimitedError);
    assert.equal(err.kind, 'rate_limited');
    assert.equal(err.errorClass, 'rate_limited');
    assert.equal(err.retryAfterMs, 7000);
    assert.match(err.message, /20429/);
  });

  it('429 without Retry-After: rate limited, the queue picks the delay', async () => {
    const to = number();
    fake.failTo(to, { status: 429 });
    const err = await failure(job({ phone: to }));
    assert.ok(err instanceof RateLimitedError);
    assert.equal(err.retryAfterMs, undefined);
  });

  it('code 20429 under another status is still rate limiting', async () => {
    const to = number();
    fake.failTo(to, { code: 20429, status: 400 });
    assert.ok((await failure(job({ phone: to }))) instanceof RateLimitedError);
  });

  it('500: retryable, and the next attempt goes through', async () => {
    const to = number();
    fake.failTo(to, { status: 500, times: 1 });
    const err = await failure(job({ phone: to }));
    assert.ok(err instanceof RetryableError);
    assert.equal(err.errorClass, 'http_500');
    assert.equal(err.addressGone, false);
    assert.match(err.message, /20500/);
    const ok = await channel.deliver(job({ phone: to }), signal());
    assert.match(ok.providerMessageId!, /^SM/);
  });

  it('503 with Retry-After: retryable after that delay', async () => {
    const to = number();
    fake.failTo(to, { status: 503, retryAfter: '12' });
    const err = await failure(job({ phone: to }));
    assert.ok(err instanceof RetryableError);
    assert.equal(err.errorClass, 'http_503');
    assert.equal(err.retryAfterMs, 12_000);
  });

  it('a 502 with a non-JSON body from a proxy: retryable http_502', async () => {
    const to = number();
    fake.failTo(to, { status: 502, rawBody: '<html>Bad Gateway</html>' });
    const err = await failure(job({ phone: to }));
    assert.ok(err instanceof RetryableError);
    assert.equal(err.errorClass, 'http_502');
    assert.equal(err.detail.response, '<html>Bad Gateway</html>');
  });

  it('an unknown 4xx without a Twilio body: permanent http_<status>', async () => {
    const to = number();
    fake.failTo(to, { status: 403, rawBody: 'Forbidden' });
    const err = await failure(job({ phone: to }));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'http_403');
  });
});

describe('network failures', () => {
  it('a refused destination is permanent', async () => {
    const strict = new SafeHttp({ allow: [], timeoutMs: 5000 });
    try {
      const err = await failure(job(), new SmsChannel({ http: strict }));
      assert.ok(err instanceof PermanentError);
      assert.equal(err.errorClass, 'destination_refused');
    } finally {
      await strict.close();
    }
  });

  it('a closed port is retryable network', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const err = await failure(job({ baseUrl: `http://127.0.0.1:${port}` }));
    assert.ok(err instanceof RetryableError);
    assert.equal(err.errorClass, 'network');
  });

  it('a server that never answers is retryable timeout', async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const quick = new SafeHttp({ allow: parseCidrList('127.0.0.0/8'), timeoutMs: 200 });
    try {
      const err = await failure(job({ baseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` }), new SmsChannel({ http: quick }));
      assert.ok(err instanceof RetryableError);
      assert.equal(err.errorClass, 'timeout');
    } finally {
      await quick.close();
      silent.closeAllConnections();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});

describe('schemas', () => {
  const ajv = addFormats.default(new Ajv({ allErrors: true, strict: false }));
  const config = ajv.compile(TwilioProviderConfig);
  const options = ajv.compile(SmsOptions);
  const sid = `AC${'a1'.repeat(16)}`;
  const mg = `MG${'b2'.repeat(16)}`;

  it('accepts a config with exactly one of from and messaging_service_sid', () => {
    assert.ok(config({ account_sid: sid, auth_token: 'tok', from: '+15005550006' }), JSON.stringify(config.errors));
    assert.ok(config({ account_sid: sid, auth_token: 'tok', messaging_service_sid: mg, max_segments: 3, on_too_long: 'reject' }), JSON.stringify(config.errors));
    assert.equal(config({ account_sid: sid, auth_token: 'tok', from: '+15005550006', messaging_service_sid: mg }), false);
    assert.equal(config({ account_sid: sid, auth_token: 'tok' }), false);
  });

  it('rejects malformed config fields', () => {
    const ok = { account_sid: sid, auth_token: 'tok', from: '+15005550006' };
    assert.ok(config(ok));
    for (const bad of [
      { account_sid: 'AC123' },
      { auth_token: '' },
      { from: '15005550006' },
      { max_segments: 0 },
      { max_segments: 11 },
      { on_too_long: 'split' },
      { region: 'ie1' },
    ]) {
      assert.equal(config({ ...ok, ...bad }), false, JSON.stringify(bad));
    }
    assert.deepEqual([...TWILIO_SECRET_FIELDS], ['auth_token']);
  });

  it('validates channel options', () => {
    assert.ok(options({}));
    assert.ok(options({ max_segments: 1, on_too_long: 'reject', from: '+15005550006' }));
    assert.equal(options({ max_segments: 11 }), false);
    assert.equal(options({ from: 'Herald' }), false);
    assert.equal(options({ priority: 'high' }), false);
  });
});

describe('Twilio request signatures', () => {
  // https://www.twilio.com/docs/usage/security#validating-requests
  const TOKEN = '12345';
  const URL_ = 'https://example.com/myapp.php?foo=1&bar=2';
  const PARAMS = { CallSid: 'CA1234567890ABCDE', Caller: '+14158675310', Digits: '1234', From: '+14158675310', To: '+18005551212' };
  const SIGNATURE = 'L/OH5YylLD5NRKLltdqwSvS0BnU=';

  it("reproduces Twilio's published example", () => {
    assert.equal(computeTwilioSignature(TOKEN, URL_, PARAMS), SIGNATURE);
    assert.ok(verifyTwilioSignature(TOKEN, URL_, PARAMS, SIGNATURE));
  });

  it('sorts parameters by name whatever order they arrive in', () => {
    const reversed = Object.fromEntries(Object.entries(PARAMS).reverse());
    assert.equal(computeTwilioSignature(TOKEN, URL_, reversed), SIGNATURE);
  });

  it('rejects another token, URL, parameter value, extra parameter, or a missing header', () => {
    assert.equal(verifyTwilioSignature('54321', URL_, PARAMS, SIGNATURE), false);
    assert.equal(verifyTwilioSignature(TOKEN, 'https://example.com/myapp.php?foo=1&bar=3', PARAMS, SIGNATURE), false);
    assert.equal(verifyTwilioSignature(TOKEN, URL_, { ...PARAMS, Digits: '1235' }, SIGNATURE), false);
    assert.equal(verifyTwilioSignature(TOKEN, URL_, { ...PARAMS, Extra: '' }, SIGNATURE), false);
    assert.equal(verifyTwilioSignature(TOKEN, URL_, PARAMS, undefined), false);
    assert.equal(verifyTwilioSignature(TOKEN, URL_, PARAMS, ''), false);
    assert.equal(verifyTwilioSignature(TOKEN, URL_, PARAMS, SIGNATURE.slice(0, -1)), false);
  });

  it('accepts the URL with or without the default port, as Twilio helper libraries do', () => {
    assert.ok(verifyTwilioSignature(TOKEN, 'https://example.com:443/myapp.php?foo=1&bar=2', PARAMS, SIGNATURE));
    const withPort = computeTwilioSignature(TOKEN, 'https://example.com:443/myapp.php?foo=1&bar=2', PARAMS);
    assert.ok(verifyTwilioSignature(TOKEN, URL_, PARAMS, withPort));
    assert.equal(verifyTwilioSignature(TOKEN, 'https://example.com:8443/myapp.php?foo=1&bar=2', PARAMS, SIGNATURE), false);
  });

  it('maps MessageStatus to a delivery outcome', () => {
    assert.deepEqual(TWILIO_CALLBACK_FIELDS, { messageSid: 'MessageSid', messageStatus: 'MessageStatus', errorCode: 'ErrorCode' });
    assert.equal(twilioCallbackStatus('delivered'), 'delivered');
    assert.equal(twilioCallbackStatus('undelivered'), 'undelivered');
    assert.equal(twilioCallbackStatus('failed'), 'undelivered');
    assert.equal(twilioCallbackStatus('read'), 'read');
    for (const s of ['queued', 'sending', 'sent', 'accepted', 'scheduled', 'something-new']) assert.equal(twilioCallbackStatus(s), null, s);
  });

  describe("the fake's status callbacks", () => {
    let receiver: Receiver;
    before(async () => {
      receiver = await startReceiver();
    });
    after(() => receiver.close());

    it('arrive signed so that verifyTwilioSignature accepts them, carrying the status and error code', async () => {
      const callbackUrl = `${receiver.url}/v1/callbacks/twilio/dlv_cb?token=abc`;
      const { providerMessageId } = await channel.deliver(job({ callbackUrl }), signal());
      const sid = providerMessageId!;

      const sentCb = await fake.sendStatusCallback(sid, 'sent');
      const failedCb = await fake.sendStatusCallback(sid, 'undelivered', { errorCode: '30003' });
      const forged = await fake.sendStatusCallback(sid, 'delivered', { token: 'not-the-token' });
      assert.equal(sentCb.status, 200);
      const got = receiver.received.slice(-3);
      assert.equal(got.length, 3);

      const parse = (i: number) => Object.fromEntries(new URLSearchParams(got[i]!.body)) as Record<string, string>;
      const url = `${receiver.url}${got[0]!.path}`;
      assert.equal(url, callbackUrl);

      assert.ok(verifyTwilioSignature(fake.authToken, url, parse(0), String(got[0]!.headers['x-twilio-signature'])));
      assert.deepEqual(parseTwilioCallback(parse(0)), { messageSid: sid, messageStatus: 'sent', status: null, errorCode: null });

      assert.ok(verifyTwilioSignature(fake.authToken, url, parse(1), String(got[1]!.headers['x-twilio-signature'])));
      assert.deepEqual(parseTwilioCallback(parse(1)), { messageSid: sid, messageStatus: 'undelivered', status: 'undelivered', errorCode: '30003' });
      assert.equal(failedCb.params.ErrorCode, '30003');

      assert.equal(verifyTwilioSignature(fake.authToken, url, parse(2), String(got[2]!.headers['x-twilio-signature'])), false);
      assert.equal(forged.params.MessageStatus, 'delivered');
      // A tampered field breaks the signature.
      assert.equal(verifyTwilioSignature(fake.authToken, url, { ...parse(0), MessageStatus: 'delivered' }, String(got[0]!.headers['x-twilio-signature'])), false);
    });

    it('parseTwilioCallback ignores a callback without MessageSid or MessageStatus', () => {
      assert.equal(parseTwilioCallback({ MessageStatus: 'delivered' }), undefined);
      assert.equal(parseTwilioCallback({ MessageSid: 'SM1' }), undefined);
    });
  });
});
