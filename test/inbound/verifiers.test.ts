// The broker's signature verifiers: each provider's official test vector (webhook-signatures.md),
// requests signed by independent implementations (@octokit/webhooks-methods, stripe's
// generateTestHeaderString, standardwebhooks), and every refusal classified: wrong secret,
// stale timestamp, altered body, re-serialised JSON, missing and malformed headers. Pure
// functions with an injected clock: no store involved.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import Stripe from 'stripe';
import { Webhook } from 'standardwebhooks';
import { verify, type Verdict } from '../../src/inbound/verifiers/index.ts';
import { verifyGithub } from '../../src/inbound/verifiers/github.ts';
import { verifySlack } from '../../src/inbound/verifiers/slack.ts';
import { verifyStandard } from '../../src/inbound/verifiers/standard.ts';
import { verifyStripe } from '../../src/inbound/verifiers/stripe.ts';
import { verifyTwilio } from '../../src/inbound/verifiers/twilio.ts';
import { verifyShopify } from '../../src/inbound/verifiers/shopify.ts';
import { verifyGitlab } from '../../src/inbound/verifiers/gitlab.ts';
import { verifyJira } from '../../src/inbound/verifiers/jira.ts';
import { verifyHmac } from '../../src/inbound/verifiers/hmac.ts';

const req = (body: string | Buffer, headers: Record<string, string>, now = Date.now()) => ({ body: Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'), headers, now });
const refused = (v: Verdict, reason: string) => assert.deepEqual(v, { ok: false, reason });

describe('GitHub (X-Hub-Signature-256)', () => {
  it('accepts the official vector', () => {
    const v = verifyGithub(req('Hello, World!', { 'x-hub-signature-256': 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17' }), ["It's a Secret to Everybody"]);
    assert.deepEqual(v, { ok: true });
  });

  it('accepts a body signed by @octokit/webhooks-methods, with the old and the new secret during a rotation', async () => {
    const body = JSON.stringify({ action: 'opened', number: 7, pull_request: { title: 'Ünïcode ✓' } });
    const sig = await octokitSign('new-secret', body);
    assert.deepEqual(verifyGithub(req(body, { 'x-hub-signature-256': sig }), ['old-secret', 'new-secret']), { ok: true });
    refused(verifyGithub(req(body, { 'x-hub-signature-256': sig }), ['old-secret']), 'mismatch');
  });

  it('refuses a wrong secret, an altered body, a re-serialised JSON body, a missing or malformed header', async () => {
    const body = '{"a": 1,  "b": [1, 2]}';
    const sig = await octokitSign('s3cret', body);
    refused(verifyGithub(req(body, { 'x-hub-signature-256': sig }), ['other']), 'mismatch');
    refused(verifyGithub(req(body.replace('1', '2'), { 'x-hub-signature-256': sig }), ['s3cret']), 'mismatch');
    refused(verifyGithub(req(JSON.stringify(JSON.parse(body)), { 'x-hub-signature-256': sig }), ['s3cret']), 'mismatch');
    refused(verifyGithub(req(body, {}), ['s3cret']), 'missing');
    refused(verifyGithub(req(body, { 'x-hub-signature-256': 'sha1=abc' }), ['s3cret']), 'malformed');
    refused(verifyGithub(req(body, { 'x-hub-signature-256': sig.slice(0, -2) }), ['s3cret']), 'malformed');
  });
});

describe('Stripe (Stripe-Signature)', () => {
  const stripe = new Stripe('sk_test_unused');
  const secret = 'whsec_test_secret_for_herald';
  const payload = JSON.stringify({ id: 'evt_1', type: 'invoice.paid', data: { object: { amount: 100 } } }, null, 2);

  it("accepts stripe's generateTestHeaderString, and several v1 values", () => {
    const header = stripe.webhooks.generateTestHeaderString({ payload, secret });
    assert.deepEqual(verifyStripe(req(payload, { 'stripe-signature': header }), [secret]), { ok: true });
    const t = Math.floor(Date.now() / 1000);
    const other = stripe.webhooks.generateTestHeaderString({ payload, secret: 'whsec_other', timestamp: t });
    const mine = stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: t });
    const both = `t=${t},v1=${other.split('v1=')[1]},v1=${mine.split('v1=')[1]}`;
    assert.deepEqual(verifyStripe(req(payload, { 'stripe-signature': both }), [secret]), { ok: true });
  });

  it('refuses a stale timestamp (past the 300 s tolerance), a wrong secret, an altered or re-serialised body', () => {
    const now = Date.now();
    const old = stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: Math.floor(now / 1000) - 301 });
    refused(verifyStripe(req(payload, { 'stripe-signature': old }, now), [secret]), 'stale');
    const header = stripe.webhooks.generateTestHeaderString({ payload, secret });
    refused(verifyStripe(req(payload, { 'stripe-signature': header }), ['whsec_wrong']), 'mismatch');
    refused(verifyStripe(req(payload + ' ', { 'stripe-signature': header }), [secret]), 'mismatch');
    refused(verifyStripe(req(JSON.stringify(JSON.parse(payload)), { 'stripe-signature': header }), [secret]), 'mismatch');
    refused(verifyStripe(req(payload, { 'stripe-signature': 'v1=abc' }), [secret]), 'malformed');
    refused(verifyStripe(req(payload, {}), [secret]), 'missing');
  });
});

describe('Slack (X-Slack-Signature v0)', () => {
  const body =
    'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
  const headers = { 'x-slack-request-timestamp': '1531420618', 'x-slack-signature': 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503' };

  it('accepts the official vector at its time, and refuses it 5 minutes and a second later', () => {
    assert.deepEqual(verifySlack(req(body, headers, 1531420618_000), ['8f742231b10e8888abcd99yyyzzz85a5']), { ok: true });
    refused(verifySlack(req(body, headers, 1531420618_000 + 301_000), ['8f742231b10e8888abcd99yyyzzz85a5']), 'stale');
    refused(verifySlack(req(body, headers, 1531420618_000), ['wrong']), 'mismatch');
    refused(verifySlack(req(body + 'x', headers, 1531420618_000), ['8f742231b10e8888abcd99yyyzzz85a5']), 'mismatch');
    refused(verifySlack(req(body, { 'x-slack-signature': headers['x-slack-signature'] }, 1531420618_000), ['8f742231b10e8888abcd99yyyzzz85a5']), 'missing');
  });
});

describe('Standard Webhooks (webhook-signature)', () => {
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const id = 'msg_p5jXN8AQM9LWM0D4loKWxJek';

  it('accepts the official v1 vector', () => {
    const headers = { 'webhook-id': id, 'webhook-timestamp': '1614265330', 'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' };
    assert.deepEqual(verifyStandard(req('{"test": 2432232314}', headers, 1614265330_000), [secret]), { ok: true });
    refused(verifyStandard(req('{"test": 2432232314}', headers, 1614265330_000 + 301_000), [secret]), 'stale');
    refused(verifyStandard(req('{"test":2432232314}', headers, 1614265330_000), [secret]), 'mismatch');
  });

  it('accepts what the standardwebhooks package signs, among several signatures (v1a skipped)', () => {
    const wh = new Webhook(secret);
    const now = new Date();
    const body = JSON.stringify({ type: 'user.created', data: { id: 1 } });
    const sig = wh.sign(id, now, body);
    const ts = String(Math.floor(now.getTime() / 1000));
    const headers = { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': `v1a,AAAA v1,bm90LWl0 ${sig}` };
    assert.deepEqual(verifyStandard(req(body, headers), [secret]), { ok: true });
    refused(verifyStandard(req(body, { ...headers, 'webhook-signature': sig }), ['whsec_' + Buffer.from('another key of 24 bytes!').toString('base64')]), 'mismatch');
    refused(verifyStandard(req(body, { ...headers, 'webhook-signature': 'garbage' }), [secret]), 'malformed');
    refused(verifyStandard(req(body, { 'webhook-id': id, 'webhook-signature': sig }), [secret]), 'missing');
  });
});

describe('Twilio (X-Twilio-Signature)', () => {
  it('accepts the published vector over the URL and the sorted form parameters', () => {
    const params = { CallSid: 'CA1234567890ABCDE', Caller: '+14158675310', Digits: '1234', From: '+14158675310', To: '+18005551212' };
    const url = 'https://example.com/myapp.php?foo=1&bar=2';
    const r = req(new URLSearchParams(params).toString(), { 'x-twilio-signature': 'L/OH5YylLD5NRKLltdqwSvS0BnU=' });
    assert.deepEqual(verifyTwilio(r, ['12345'], url, params), { ok: true });
    refused(verifyTwilio(r, ['54321'], url, params), 'mismatch');
    refused(verifyTwilio(r, ['12345'], url, { ...params, Digits: '9999' }), 'mismatch');
    refused(verifyTwilio(r, ['12345'], 'https://example.com/other.php?foo=1&bar=2', params), 'mismatch');
    refused(verifyTwilio(req('', {}), ['12345'], url, params), 'missing');
    refused(verifyTwilio(req('', { 'x-twilio-signature': 'nope' }), ['12345'], url, params), 'malformed');
  });
});

describe('Shopify, GitLab, Jira and generic HMAC', () => {
  const body = '{"id":820982911946154508,"topic":"orders/create"}';

  it('Shopify: base64 HMAC-SHA256 of the body', () => {
    const sig = createHmac('sha256', 'shpss_secret').update(body).digest('base64');
    assert.deepEqual(verifyShopify(req(body, { 'x-shopify-hmac-sha256': sig }), ['shpss_secret']), { ok: true });
    refused(verifyShopify(req(body, { 'x-shopify-hmac-sha256': sig }), ['other']), 'mismatch');
    refused(verifyShopify(req(body, { 'x-shopify-hmac-sha256': 'abc' }), ['shpss_secret']), 'malformed');
    refused(verifyShopify(req(body, {}), ['shpss_secret']), 'missing');
  });

  it('GitLab: the token itself, any of the secrets', () => {
    assert.deepEqual(verifyGitlab(req(body, { 'x-gitlab-token': 'glt-2' }), ['glt-1', 'glt-2']), { ok: true });
    refused(verifyGitlab(req(body, { 'x-gitlab-token': 'glt-3' }), ['glt-1', 'glt-2']), 'mismatch');
    refused(verifyGitlab(req(body, { 'x-gitlab-token': 'glt-' }), ['glt-1']), 'mismatch');
    refused(verifyGitlab(req(body, {}), ['glt-1']), 'missing');
  });

  it('Jira: sha256=<hex> in X-Hub-Signature', () => {
    const sig = `sha256=${createHmac('sha256', 'jira-secret').update(body).digest('hex')}`;
    assert.deepEqual(verifyJira(req(body, { 'x-hub-signature': sig }), ['jira-secret']), { ok: true });
    refused(verifyJira(req(body, { 'x-hub-signature-256': sig }), ['jira-secret']), 'missing');
    refused(verifyJira(req(body + ' ', { 'x-hub-signature': sig }), ['jira-secret']), 'mismatch');
  });

  it('generic HMAC: header, algorithm, encoding and prefix as configured', () => {
    const o = { header: 'X-Signature', algorithm: 'sha1' as const, encoding: 'base64' as const, prefix: 'sig=' };
    const sig = `sig=${createHmac('sha1', 'k').update(body).digest('base64')}`;
    assert.deepEqual(verifyHmac(req(body, { 'x-signature': sig }), ['k'], o), { ok: true });
    refused(verifyHmac(req(body, { 'x-signature': sig.slice(4) }), ['k'], o), 'malformed');
    refused(verifyHmac(req(body, { 'x-signature': sig }), ['not-k'], o), 'mismatch');
    const hex = { header: 'x-sig', algorithm: 'sha256' as const, encoding: 'hex' as const };
    assert.deepEqual(verifyHmac(req(body, { 'x-sig': createHmac('sha256', 'k').update(body).digest('hex').toUpperCase() }), ['k'], hex), { ok: true });
    refused(verifyHmac(req(body, { 'x-sig': 'zz' }), ['k'], hex), 'malformed');
  });

  it('provider none accepts anything; the dispatcher picks the provider', () => {
    assert.deepEqual(verify('none', req(body, {}), [], { url: '', form: {}, hmac: undefined }), { ok: true });
    refused(verify('github', req(body, {}), ['x'], { url: '', form: {}, hmac: undefined }), 'missing');
  });
});
