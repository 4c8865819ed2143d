// Kakao AlimTalk channel against a fake NHN Cloud KakaoTalk Bizmessage API (test/fakes/kakao.ts):
// what is sent, how every documented answer is classified, fallback to SMS (Herald's and NHN's own
// resend), limits, and the provider/option schemas.

import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { Value } from 'typebox/value';
import { SafeHttp } from '../../src/net/safe-http.ts';
import { parseCidrList } from '../../src/net/address-policy.ts';
import { DeliveryError, PermanentError, RateLimitedError, RetryableError, type DeliveryJob } from '../../src/channels/channel.ts';
import { KakaoChannel, KakaoOptions, KakaoProviderConfig, KAKAO_SECRET_FIELDS, nhnRecipientNo } from '../../src/channels/kakao.ts';
import { FakeKakao } from '../fakes/kakao.ts';

const APP_KEY = 'AppKey-123';
const SECRET = 'secret-xyz';
const SENDER_KEY = 'f3e1c0a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3'; // 40 characters
const SEND_NO = '0212345678';
const PHONE = '+821012345678';
const NATIONAL = '01012345678';

let fake: FakeKakao;
let http: SafeHttp;
let channel: KakaoChannel;
let seq = 0;

function job(over: { options?: Record<string, unknown>; fallback?: boolean; phone?: string | null; config?: Record<string, unknown>; title?: string; baseUrl?: string; provider?: null } = {}): DeliveryJob {
  const n = ++seq;
  return {
    deliveryId: `dlv_${n}`,
    notificationId: `ntf_${n}`,
    workspaceId: 'ws_1',
    channel: 'kakao',
    attempt: 1,
    notification: {
      kind: 'order.shipped',
      title: over.title ?? 'Order shipped',
      body: 'Your order 42 is on its way',
      data: null,
      createdAt: Date.now(),
      options: over.options ?? { template_code: 'ORDER_SHIPPED', variables: { name: 'Kim', order: '42' } },
      fallback: over.fallback ?? false,
    },
    recipient: {
      id: 'r1', name: null, email: null, phone: null, locale: null, timezone: null, webhookUrl: null, webhookSecret: null,
      pushover: null, slackWebhookUrl: null, discordWebhookUrl: null,
      kakaoPhone: over.phone === undefined ? PHONE : over.phone,
    },
    ...(over.provider === null
      ? {}
      : {
          provider: {
            provider: 'kakao' as const,
            config: over.config ?? { app_key: APP_KEY, secret_key: SECRET, sender_key: SENDER_KEY },
            baseUrl: over.baseUrl ?? fake.baseUrl,
            version: 'v1',
          },
        }),
  };
}

const withFallbackConfig = { app_key: APP_KEY, secret_key: SECRET, sender_key: SENDER_KEY, sms_fallback: { send_no: SEND_NO } };

async function rejects(p: Promise<unknown>): Promise<DeliveryError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DeliveryError, `expected a DeliveryError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the delivery to fail');
}

function lastBody(): any {
  return fake.requests.at(-1)!.json;
}

before(async () => {
  fake = await FakeKakao.start({
    appKey: APP_KEY,
    secretKey: SECRET,
    senderKey: SENDER_KEY,
    smsSendNos: [SEND_NO],
    templates: {
      ORDER_SHIPPED: { content: '#{name}님, 주문 #{order}이(가) 발송되었습니다.' },
      PENDING_TPL: { content: '#{name}님 안녕하세요', status: 'TSC02' },
      BIG: { content: 'A#{a}B#{b}' },
    },
  });
  http = new SafeHttp({ allow: parseCidrList('127.0.0.0/8,::1/128'), timeoutMs: 5000 });
  channel = new KakaoChannel({ http });
});

after(async () => {
  await channel.close();
  await http.close();
  await fake.close();
});

beforeEach(() => {
  fake.requests.length = 0;
  fake.resends.length = 0;
});

describe('sending', () => {
  it('posts the template, variables and national number to NHN and returns the requestId', async () => {
    const j = job();
    const res = await channel.deliver(j, AbortSignal.timeout(5000));
    assert.equal(fake.requests.length, 1);
    const req = fake.requests[0]!;
    assert.equal(req.method, 'POST');
    assert.equal(req.path, `/alimtalk/v2.3/appkeys/${APP_KEY}/messages`);
    assert.equal(req.headers['x-secret-key'], SECRET);
    assert.match(String(req.headers['content-type']), /^application\/json/);
    assert.deepEqual(req.json, {
      senderKey: SENDER_KEY,
      templateCode: 'ORDER_SHIPPED',
      recipientList: [{ recipientNo: NATIONAL, templateParameter: { name: 'Kim', order: '42' }, recipientGroupingKey: j.deliveryId, resendParameter: { isResend: false } }],
    });
    const msg = fake.messages.at(-1)!;
    assert.equal(msg.content, 'Kim님, 주문 42이(가) 발송되었습니다.');
    assert.equal(msg.messageStatus, 'COMPLETED');
    assert.equal(res.httpStatus, 200);
    assert.equal(res.providerMessageId, msg.requestId);
    assert.match(res.providerMessageId!, /^\d{14}[A-Za-z0-9_-]{10}$/);
  });

  it('converts +82 numbers to the national form and sends other countries as E.164 digits', () => {
    assert.equal(nhnRecipientNo('+821012345678'), '01012345678');
    assert.equal(nhnRecipientNo('+82212345678'), '0212345678');
    assert.equal(nhnRecipientNo('+819012345678'), '819012345678');
    assert.equal(nhnRecipientNo('01012345678'), null);
    assert.equal(nhnRecipientNo('+82'), null);
  });

  it('asks NHN to resend as SMS when the send allows fallback and sms_fallback is configured', async () => {
    await channel.deliver(job({ fallback: true, config: withFallbackConfig }), AbortSignal.timeout(5000));
    assert.deepEqual(lastBody().recipientList[0].resendParameter, { isResend: true, resendSendNo: SEND_NO, resendTitle: 'Order shipped' });
  });

  it('options.fallback overrides the send: false turns NHN resend off, true turns it on', async () => {
    await channel.deliver(job({ fallback: true, options: { template_code: 'ORDER_SHIPPED', variables: { name: 'K', order: '1' }, fallback: false }, config: withFallbackConfig }), AbortSignal.timeout(5000));
    assert.deepEqual(lastBody().recipientList[0].resendParameter, { isResend: false });
    await channel.deliver(job({ fallback: false, options: { template_code: 'ORDER_SHIPPED', variables: { name: 'K', order: '1' }, fallback: true }, config: withFallbackConfig }), AbortSignal.timeout(5000));
    assert.equal(lastBody().recipientList[0].resendParameter.isResend, true);
  });

  it('leaves resend to the NHN console when fallback is allowed but no sms_fallback is configured', async () => {
    await channel.deliver(job({ fallback: true }), AbortSignal.timeout(5000));
    assert.equal('resendParameter' in lastBody().recipientList[0], false);
  });

  it('an international number gets resendType SMS (NHN resends abroad only as SMS)', async () => {
    await channel.deliver(job({ phone: '+819012345678', fallback: true, config: withFallbackConfig }), AbortSignal.timeout(5000));
    const rec = lastBody().recipientList[0];
    assert.equal(rec.recipientNo, '819012345678');
    assert.equal(rec.resendParameter.resendType, 'SMS');
  });
});

describe('failures NHN learns of after accepting', () => {
  it('not a KakaoTalk user: accepted, and NHN itself resends as SMS when asked to', async () => {
    fake.script(NATIONAL, { kind: 'not_kakao_user' });
    const res = await channel.deliver(job({ fallback: true, config: withFallbackConfig }), AbortSignal.timeout(5000));
    assert.equal(fake.resends.length, 1);
    assert.deepEqual(fake.resends[0], { recipientNo: NATIONAL, sendNo: SEND_NO, type: 'SMS', title: 'Order shipped', content: 'Kim님, 주문 42이(가) 발송되었습니다.' });
    const lookup = await http.request('GET', fake.messageUrl(res.providerMessageId!, 1), { 'x-secret-key': SECRET });
    const m = JSON.parse(lookup.excerpt).message;
    assert.equal(m.messageStatus, 'FAILED');
    assert.equal(m.resultCode, '3019');
    assert.equal(m.resendStatus, 'RSC04');
  });

  it('not a KakaoTalk user without fallback: nothing is resent', async () => {
    fake.script(NATIONAL, { kind: 'not_kakao_user' });
    await channel.deliver(job({ fallback: false, config: withFallbackConfig }), AbortSignal.timeout(5000));
    assert.equal(fake.resends.length, 0);
    assert.equal(fake.messages.at(-1)!.resendStatus, 'RSC01');
  });
});

describe('permanent errors', () => {
  it('no template_code: no_template, nothing sent, fallback sms only when allowed', async () => {
    const a = await rejects(channel.deliver(job({ options: {}, fallback: true }), AbortSignal.timeout(5000)));
    assert.ok(a instanceof PermanentError);
    assert.equal(a.errorClass, 'no_template');
    assert.equal(a.fallback, 'sms');
    const b = await rejects(channel.deliver(job({ options: {}, fallback: false }), AbortSignal.timeout(5000)));
    assert.equal((b as PermanentError).fallback, undefined);
    assert.equal(fake.requests.length, 0);
  });

  it('a missing template variable: template_parameter (-3049) with fallback', async () => {
    const err = await rejects(channel.deliver(job({ options: { template_code: 'ORDER_SHIPPED', variables: { name: 'Kim' } }, fallback: true }), AbortSignal.timeout(5000)));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'template_parameter');
    assert.equal(err.fallback, 'sms');
    assert.equal(err.addressGone, false);
    assert.match(err.message, /-3049/);
    assert.equal(err.detail.httpStatus, 200);
    assert.match(err.detail.response!, /-1031/);
  });

  it('an unknown template: unknown_template (-3003); fallback only when allowed', async () => {
    const err = await rejects(channel.deliver(job({ options: { template_code: 'NOPE' } }), AbortSignal.timeout(5000)));
    assert.equal(err.errorClass, 'unknown_template');
    assert.equal((err as PermanentError).fallback, undefined);
    assert.match(err.message, /-3003/);
  });

  it('a template not approved: template_not_approved (-3005) with fallback', async () => {
    const err = await rejects(channel.deliver(job({ options: { template_code: 'PENDING_TPL', variables: { name: 'x' } }, fallback: true }), AbortSignal.timeout(5000)));
    assert.equal(err.errorClass, 'template_not_approved');
    assert.equal((err as PermanentError).fallback, 'sms');
  });

  it('a wrong secret key or app key: auth, never a fallback', async () => {
    const a = await rejects(channel.deliver(job({ fallback: true, config: { app_key: APP_KEY, secret_key: 'wrong', sender_key: SENDER_KEY } }), AbortSignal.timeout(5000)));
    assert.equal(a.errorClass, 'auth');
    assert.match(a.message, /-1001/);
    assert.equal((a as PermanentError).fallback, undefined);
    const b = await rejects(channel.deliver(job({ config: { app_key: 'other', secret_key: SECRET, sender_key: SENDER_KEY } }), AbortSignal.timeout(5000)));
    assert.equal(b.errorClass, 'auth');
    assert.match(b.message, /-1000/);
  });

  it('an unknown sender key: invalid_sender (-2017)', async () => {
    const err = await rejects(channel.deliver(job({ fallback: true, config: { app_key: APP_KEY, secret_key: SECRET, sender_key: 'b'.repeat(40) } }), AbortSignal.timeout(5000)));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'invalid_sender');
    assert.equal(err.fallback, undefined);
  });

  it('an unregistered SMS send number: fallback_config (-1003)', async () => {
    const err = await rejects(channel.deliver(job({ fallback: true, config: { ...withFallbackConfig, sms_fallback: { send_no: '0299999999' } } }), AbortSignal.timeout(5000)));
    assert.equal(err.errorClass, 'fallback_config');
    assert.match(err.message, /-1003/);
  });

  it('a number NHN rejects: invalid_number (-4019), address gone, no fallback', async () => {
    const err = await rejects(channel.deliver(job({ phone: '+82212345678', fallback: true }), AbortSignal.timeout(5000)));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'invalid_number');
    assert.equal(err.addressGone, true);
    assert.equal(err.fallback, undefined);
    assert.equal(lastBody().recipientList[0].recipientNo, '0212345678');
  });

  it('a kakao_phone that is not E.164 is invalid_number without a request', async () => {
    const err = await rejects(channel.deliver(job({ phone: '010-1234-5678' }), AbortSignal.timeout(5000)));
    assert.equal(err.errorClass, 'invalid_number');
    assert.equal(fake.requests.length, 0);
  });

  it('no kakao_phone: no_address; no credentials: no_credentials', async () => {
    assert.equal((await rejects(channel.deliver(job({ phone: null }), AbortSignal.timeout(5000)))).errorClass, 'no_address');
    assert.equal((await rejects(channel.deliver(job({ provider: null }), AbortSignal.timeout(5000)))).errorClass, 'no_credentials');
    assert.equal(fake.requests.length, 0);
  });

  it('a recipient who unsubscribed (-3301): unsubscribed with fallback', async () => {
    fake.script(NATIONAL, { kind: 'result', code: -3301, message: 'The unsubscribed recipient are found.' });
    const err = await rejects(channel.deliver(job({ fallback: true }), AbortSignal.timeout(5000)));
    assert.equal(err.errorClass, 'unsubscribed');
    assert.equal((err as PermanentError).fallback, 'sms');
  });

  it('Kakao results in sendResults are classified too: 3019 not_kakao_user, 3020 blocked (fallback)', async () => {
    fake.script(NATIONAL, { kind: 'result', code: 3019, message: 'Not a KakaoTalk user' });
    const a = await rejects(channel.deliver(job({ fallback: true }), AbortSignal.timeout(5000)));
    assert.equal(a.errorClass, 'not_kakao_user');
    assert.equal((a as PermanentError).fallback, 'sms');
    assert.equal(a.addressGone, false);
    fake.script(NATIONAL, { kind: 'result', code: 3020, message: 'AlimTalk blocked' });
    const b = await rejects(channel.deliver(job({ fallback: false }), AbortSignal.timeout(5000)));
    assert.equal(b.errorClass, 'blocked');
    assert.equal((b as PermanentError).fallback, undefined);
  });

  it('content not matching the template (-3010): Herald falls back unless NHN was asked to resend', async () => {
    fake.script(NATIONAL, { kind: 'result', code: -3010, message: 'The contents are not matched to template.' });
    const a = await rejects(channel.deliver(job({ fallback: true }), AbortSignal.timeout(5000)));
    assert.equal(a.errorClass, 'template_mismatch');
    assert.equal((a as PermanentError).fallback, 'sms');
    fake.script(NATIONAL, { kind: 'result', code: -3010, message: 'The contents are not matched to template.' });
    const b = await rejects(channel.deliver(job({ fallback: true, config: withFallbackConfig }), AbortSignal.timeout(5000)));
    assert.equal(b.errorClass, 'template_mismatch');
    assert.equal((b as PermanentError).fallback, undefined);
    assert.match(b.message, /NHN resends/);
  });

  it('a per-recipient failure under a success header is still a failure', async () => {
    const body = JSON.stringify({
      header: { resultCode: 0, resultMessage: 'SUCCESS', isSuccessful: true },
      message: { requestId: 'r1', senderGroupingKey: null, sendResults: [{ recipientSeq: 1, recipientNo: NATIONAL, resultCode: -3049, resultMessage: 'The template parameter is not matched to template.' }] },
    });
    fake.script(NATIONAL, { kind: 'raw', status: 200, body, headers: { 'content-type': 'application/json' } });
    const err = await rejects(channel.deliver(job(), AbortSignal.timeout(5000)));
    assert.equal(err.errorClass, 'template_parameter');
  });

  it('an unknown NHN code is permanent rejected, with the code in the message', async () => {
    fake.script(NATIONAL, { kind: 'result', code: -8888, message: 'Something new.' });
    const err = await rejects(channel.deliver(job({ fallback: true }), AbortSignal.timeout(5000)));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'rejected');
    assert.match(err.message, /-8888: Something new\./);
    assert.equal(err.fallback, undefined);
  });
});

describe('retryable errors', () => {
  it('a gateway 503 with Retry-After: http_503 with retryAfterMs', async () => {
    fake.script(NATIONAL, { kind: 'server_error', status: 503, retryAfter: '12' });
    const err = await rejects(channel.deliver(job(), AbortSignal.timeout(5000)));
    assert.ok(err instanceof RetryableError);
    assert.equal(err.errorClass, 'http_503');
    assert.equal(err.retryAfterMs, 12_000);
    assert.equal(err.detail.httpStatus, 503);
  });

  it('NHN system error (-9999): provider_error', async () => {
    fake.script(NATIONAL, { kind: 'system_error' });
    const err = await rejects(channel.deliver(job({ fallback: true }), AbortSignal.timeout(5000)));
    assert.ok(err instanceof RetryableError);
    assert.equal(err.errorClass, 'provider_error');
    assert.equal(err.detail.httpStatus, 500);
  });

  it('429: RateLimitedError with Retry-After', async () => {
    fake.script(NATIONAL, { kind: 'throttled', retryAfter: '7' });
    const err = await rejects(channel.deliver(job(), AbortSignal.timeout(5000)));
    assert.ok(err instanceof RateLimitedError);
    assert.equal(err.errorClass, 'rate_limited');
    assert.equal(err.retryAfterMs, 7000);
  });

  it('Kakao 4156 (maximum send count exceeded) is rate limiting', async () => {
    fake.script(NATIONAL, { kind: 'result', code: 4156, message: 'max send count exceeded' });
    const err = await rejects(channel.deliver(job(), AbortSignal.timeout(5000)));
    assert.ok(err instanceof RateLimitedError);
  });

  it('a 2xx that is not an NHN answer: bad_response (retryable)', async () => {
    fake.script(NATIONAL, { kind: 'raw', status: 200, body: '<html>proxy</html>' });
    const err = await rejects(channel.deliver(job(), AbortSignal.timeout(5000)));
    assert.ok(err instanceof RetryableError);
    assert.equal(err.errorClass, 'bad_response');
  });

  it('a 4xx that is not an NHN answer is permanent http_<status>', async () => {
    fake.script(NATIONAL, { kind: 'raw', status: 403, body: 'Forbidden' });
    const err = await rejects(channel.deliver(job(), AbortSignal.timeout(5000)));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'http_403');
  });

  it('no answer in time: timeout', async () => {
    const quick = new SafeHttp({ allow: parseCidrList('127.0.0.0/8,::1/128'), timeoutMs: 300 });
    try {
      fake.script(NATIONAL, { kind: 'hang' });
      const err = await rejects(new KakaoChannel({ http: quick }).deliver(job(), AbortSignal.timeout(10_000)));
      assert.ok(err instanceof RetryableError);
      assert.equal(err.errorClass, 'timeout');
    } finally {
      await quick.close();
    }
  });

  it('connection refused: network', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const err = await rejects(channel.deliver(job({ baseUrl: `http://127.0.0.1:${port}` }), AbortSignal.timeout(5000)));
    assert.ok(err instanceof RetryableError);
    assert.equal(err.errorClass, 'network');
  });

  it('a destination outside the allowed networks: destination_refused (permanent)', async () => {
    const strict = new SafeHttp({ allow: [], timeoutMs: 5000 });
    try {
      const err = await rejects(new KakaoChannel({ http: strict }).deliver(job(), AbortSignal.timeout(5000)));
      assert.ok(err instanceof PermanentError);
      assert.equal(err.errorClass, 'destination_refused');
      assert.equal(fake.requests.length, 0);
    } finally {
      await strict.close();
    }
  });
});

describe('limits', () => {
  it('a variable over 1300 characters is payload_too_large before sending', async () => {
    const err = await rejects(channel.deliver(job({ options: { template_code: 'BIG', variables: { a: 'x'.repeat(1301), b: '' } }, fallback: true }), AbortSignal.timeout(5000)));
    assert.equal(err.errorClass, 'payload_too_large');
    assert.equal((err as PermanentError).fallback, 'sms');
    assert.equal(fake.requests.length, 0);
  });

  it('variables together over 1300 characters are payload_too_large; exactly 1300 is sent', async () => {
    const err = await rejects(channel.deliver(job({ options: { template_code: 'BIG', variables: { a: 'x'.repeat(700), b: 'y'.repeat(601) } } }), AbortSignal.timeout(5000)));
    assert.equal(err.errorClass, 'payload_too_large');
    assert.equal(fake.requests.length, 0);
    // 1298 characters of values + "A" and "B" = 1300: NHN accepts it.
    await channel.deliver(job({ options: { template_code: 'BIG', variables: { a: '가'.repeat(700), b: 'y'.repeat(598) } } }), AbortSignal.timeout(5000));
    assert.equal(Array.from(fake.messages.at(-1)!.content).length, 1300);
  });

  it('the fake enforces NHN’s own 1300 limit on the filled template (-2019)', async () => {
    const err = await rejects(channel.deliver(job({ options: { template_code: 'BIG', variables: { a: 'x'.repeat(650), b: 'y'.repeat(650) } }, fallback: true }), AbortSignal.timeout(5000)));
    assert.equal(err.errorClass, 'payload_too_large');
    assert.match(err.message, /-2019/);
    assert.equal(fake.requests.length, 1);
  });

  it('a long title is cut to 40 characters with an ellipsis for the LMS resend title', async () => {
    const title = '가'.repeat(60);
    await channel.deliver(job({ title, fallback: true, config: withFallbackConfig }), AbortSignal.timeout(5000));
    const t = lastBody().recipientList[0].resendParameter.resendTitle as string;
    assert.equal(Array.from(t).length, 40);
    assert.equal(t, `${'가'.repeat(39)}…`);
  });

  it('a template_code over 20 characters is invalid_options', async () => {
    const err = await rejects(channel.deliver(job({ options: { template_code: 'T'.repeat(21) } }), AbortSignal.timeout(5000)));
    assert.equal(err.errorClass, 'invalid_options');
    assert.equal(fake.requests.length, 0);
  });
});

describe('schemas', () => {
  it('provider config: app_key, secret_key, 40-character sender_key, optional sms_fallback.send_no', () => {
    assert.equal(Value.Check(KakaoProviderConfig, withFallbackConfig), true);
    assert.equal(Value.Check(KakaoProviderConfig, { app_key: APP_KEY, secret_key: SECRET, sender_key: SENDER_KEY }), true);
    assert.equal(Value.Check(KakaoProviderConfig, { app_key: APP_KEY, secret_key: SECRET, sender_key: 'short' }), false);
    assert.equal(Value.Check(KakaoProviderConfig, { app_key: APP_KEY, sender_key: SENDER_KEY }), false);
    assert.equal(Value.Check(KakaoProviderConfig, { ...withFallbackConfig, sms_fallback: { send_no: '+82-2-1234' } }), false);
    assert.equal(Value.Check(KakaoProviderConfig, { ...withFallbackConfig, extra: 1 }), false);
    assert.deepEqual(KAKAO_SECRET_FIELDS, ['secret_key']);
  });

  it('options: template_code, string variables, fallback; nothing else', () => {
    assert.equal(Value.Check(KakaoOptions, { template_code: 'ORDER_SHIPPED', variables: { name: 'Kim' }, fallback: true }), true);
    assert.equal(Value.Check(KakaoOptions, {}), true);
    assert.equal(Value.Check(KakaoOptions, { template_code: 'T'.repeat(21) }), false);
    assert.equal(Value.Check(KakaoOptions, { variables: { n: 1 } }), false);
    assert.equal(Value.Check(KakaoOptions, { variables: { n: 'x'.repeat(1301) } }), false);
    assert.equal(Value.Check(KakaoOptions, { template: 'x' }), false);
  });
});
