// The Slack channel against the fake Slack incoming-webhook server (test/fakes/chat.ts): what is
// sent, how each of Slack's answers is classified, Block Kit limits, and the URL validator.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { SafeHttp } from '../../src/net/safe-http.ts';
import { parseCidrList } from '../../src/net/address-policy.ts';
import { DeliveryError, PermanentError, RateLimitedError, RetryableError, type DeliveryJob, type RecipientAddress } from '../../src/channels/channel.ts';
import { SlackChannel, SlackOptions, isSlackWebhookUrl, truncate, escapeAndTruncate } from '../../src/channels/slack.ts';
import { startFakeSlack, type FakeSlack, type SlackError } from '../fakes/chat.ts';

const CREATED_AT = Date.parse('2025-03-01T12:00:00Z');

function recipient(slackWebhookUrl: string | null): RecipientAddress {
  return {
    id: 'r1', name: null, email: null, phone: null, locale: null, timezone: null, webhookUrl: null, webhookSecret: null,
    pushover: null, slackWebhookUrl, discordWebhookUrl: null, kakaoPhone: null,
  };
}

function job(url: string | null, n: Partial<DeliveryJob['notification']> = {}): DeliveryJob {
  return {
    deliveryId: 'dlv_1', notificationId: 'ntf_1', workspaceId: 'ws_1', channel: 'slack', attempt: 1,
    notification: { kind: 'deploy', title: 'Deploy finished', body: 'All *green*', data: null, createdAt: CREATED_AT, options: {}, fallback: false, ...n },
    recipient: recipient(url),
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

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const signal = () => new AbortController().signal;
const allowLoopback = parseCidrList('127.0.0.0/8,::1/128');

let fake: FakeSlack;
let http: SafeHttp;
let slack: SlackChannel;

before(async () => {
  fake = await startFakeSlack();
  http = new SafeHttp({ allow: allowLoopback, timeoutMs: 5000 });
  slack = new SlackChannel({ http });
});
after(async () => {
  await slack.close();
  await http.close();
  await fake.close();
});

describe('a correct request', () => {
  test('is accepted: 200 "ok", and the fake received the Block Kit message', async () => {
    const url = fake.newWebhook();
    const res = await slack.deliver(job(url), signal());
    assert.deepEqual(res, { httpStatus: 200, response: 'ok' });
    const [r] = fake.requestsTo(url);
    assert.ok(r);
    assert.equal(fake.requestsTo(url).length, 1);
    assert.equal(r.method, 'POST');
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, {
      text: 'Deploy finished\nAll *green*',
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: 'Deploy finished', emoji: true } },
        { type: 'section', text: { type: 'mrkdwn', text: 'All *green*' } },
      ],
    });
  });

  test('options: username, icon and a link button with its label', async () => {
    const url = fake.newWebhook();
    const options = { username: 'Herald', icon_emoji: ':rocket:', link: 'https://ci.example.com/builds/42', link_text: 'View build' };
    await slack.deliver(job(url, { options }), signal());
    const { json } = fake.requestsTo(url)[0]!;
    assert.equal(json.username, 'Herald');
    assert.equal(json.icon_emoji, ':rocket:');
    assert.deepEqual(json.blocks[2], {
      type: 'actions',
      elements: [{ type: 'button', text: { type: 'plain_text', text: 'View build', emoji: true }, url: 'https://ci.example.com/builds/42', action_id: 'herald_link' }],
    });
    assert.equal(fake.requestsTo(url)[0]!.status, 200);
  });

  test('the link defaults to data.url when it is an http(s) URL; other data.url values are ignored', async () => {
    const url = fake.newWebhook();
    await slack.deliver(job(url, { data: { url: 'https://status.example.com/i/7' } }), signal());
    await slack.deliver(job(url, { data: { url: 'javascript:alert(1)' } }), signal());
    await slack.deliver(job(url, { data: { url: 42 } }), signal());
    const [withLink, js, num] = fake.requestsTo(url).map((r) => r.json);
    assert.equal(withLink.blocks[2].elements[0].url, 'https://status.example.com/i/7');
    assert.equal(withLink.blocks[2].elements[0].text.text, 'Open');
    assert.equal(js.blocks.length, 2);
    assert.equal(num.blocks.length, 2);
  });

  test('mentions and links in the body are escaped, so <!channel> cannot ping', async () => {
    const url = fake.newWebhook();
    await slack.deliver(job(url, { title: 'A <b> & c', body: '<!channel> see <https://evil.example|here> & *bold*' }), signal());
    const { json } = fake.requestsTo(url)[0]!;
    assert.equal(json.blocks[1].text.text, '&lt;!channel&gt; see &lt;https://evil.example|here&gt; &amp; *bold*');
    assert.equal(json.text, 'A &lt;b&gt; &amp; c\n&lt;!channel&gt; see &lt;https://evil.example|here&gt; &amp; *bold*');
    assert.equal(json.blocks[0].text.text, 'A <b> & c', 'plain_text is not parsed by Slack, so it is sent as is');
  });

  test('a body-only notification has no header block', async () => {
    const url = fake.newWebhook();
    await slack.deliver(job(url, { title: '', body: 'just a body' }), signal());
    const { json, status } = fake.requestsTo(url)[0]!;
    assert.deepEqual(json.blocks.map((b: { type: string }) => b.type), ['section']);
    assert.equal(json.text, 'just a body');
    assert.equal(status, 200);
  });
});

describe('limits', () => {
  test('title over 150 and body over 3000 characters are truncated with an ellipsis and accepted', async () => {
    const url = fake.newWebhook();
    const title = 'T'.repeat(400);
    const body = 'b'.repeat(5000);
    await slack.deliver(job(url, { title, body }), signal());
    const r = fake.requestsTo(url)[0]!;
    assert.equal(r.status, 200);
    const header = r.json.blocks[0].text.text as string;
    const section = r.json.blocks[1].text.text as string;
    assert.equal(header.length, 150);
    assert.equal(header, 'T'.repeat(149) + '…');
    assert.equal(section.length, 3000);
    assert.ok(section.endsWith('b…'));
    assert.ok(r.json.text.length <= 3000);
  });

  test('the fake enforces the same limits (an over-long header is refused as invalid_blocks)', async () => {
    const url = fake.newWebhook();
    const raw = await http.post(url, { 'content-type': 'application/json' }, JSON.stringify({ text: 'x', blocks: [{ type: 'header', text: { type: 'plain_text', text: 'T'.repeat(151) } }] }));
    assert.deepEqual([raw.status, raw.excerpt], [400, 'invalid_blocks']);
    const long = await http.post(url, { 'content-type': 'application/json' }, JSON.stringify({ blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'b'.repeat(3001) } }] }));
    assert.deepEqual([long.status, long.excerpt], [400, 'invalid_blocks']);
    const none = await http.post(url, { 'content-type': 'application/json' }, JSON.stringify({ username: 'x' }));
    assert.deepEqual([none.status, none.excerpt], [400, 'no_text']);
  });

  test('escaping counts against the limit and never leaves half an entity or half a surrogate pair', () => {
    const s = escapeAndTruncate('&'.repeat(1000), 3000);
    assert.ok(s.length <= 3000);
    assert.match(s, /^(&amp;)+…$/);
    const e = truncate('😀'.repeat(100), 150);
    assert.ok(e.length <= 150);
    assert.equal(e, '😀'.repeat(74) + '…');
    assert.equal(truncate('short', 150), 'short');
  });

  test('an empty notification is refused before sending', async () => {
    const url = fake.newWebhook();
    const err = await rejection(slack.deliver(job(url, { title: ' ', body: '' }), signal()));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'empty_message');
    assert.equal(fake.requestsTo(url).length, 0);
  });
});

describe("Slack's answers", () => {
  const cases: [SlackError, number, boolean][] = [
    ['channel_is_archived', 410, true],
    ['channel_not_found', 404, true],
    ['no_service', 404, true],
    ['invalid_token', 403, true],
    ['team_disabled', 403, true],
    ['action_prohibited', 403, false],
    ['posting_to_general_channel_denied', 403, false],
  ];
  for (const [error, status, gone] of cases) {
    test(`${status} ${error}: permanent, addressGone ${gone}`, async () => {
      const url = fake.newWebhook();
      fake.setState(url, error);
      const err = await rejection(slack.deliver(job(url), signal()));
      assert.ok(err instanceof PermanentError);
      assert.equal(err.kind, 'permanent');
      assert.equal(err.errorClass, error);
      assert.equal(err.addressGone, gone);
      assert.deepEqual(err.detail, { httpStatus: status, response: error });
      assert.equal(err.retryAfterMs, undefined);
    });
  }

  for (const error of ['invalid_payload', 'no_text', 'invalid_blocks'] as const) {
    test(`400 ${error}: permanent, the address stays`, async () => {
      const url = fake.newWebhook();
      fake.script(url, { status: 400, body: error });
      const err = await rejection(slack.deliver(job(url), signal()));
      assert.ok(err instanceof PermanentError);
      assert.equal(err.errorClass, error);
      assert.equal(err.addressGone, false);
      assert.equal(err.detail.httpStatus, 400);
    });
  }

  test('a URL that is not a webhook (404 no_service from the fake itself) disables the address', async () => {
    const err = await rejection(slack.deliver(job(`${fake.base}/services/nope`), signal()));
    assert.equal(err.errorClass, 'no_service');
    assert.equal(err.addressGone, true);
  });

  test('429 with Retry-After: rate limited for that many seconds', async () => {
    const url = fake.newWebhook();
    fake.rateLimit(url, 7);
    const err = await rejection(slack.deliver(job(url), signal()));
    assert.ok(err instanceof RateLimitedError);
    assert.equal(err.kind, 'rate_limited');
    assert.equal(err.retryAfterMs, 7000);
    assert.equal(err.detail.httpStatus, 429);
    await slack.deliver(job(url), signal());
    assert.deepEqual(fake.requestsTo(url).map((r) => r.status), [429, 200]);
  });

  test('500 rollup_error is retryable; 503 keeps its Retry-After', async () => {
    const url = fake.newWebhook();
    fake.script(url, { status: 500, body: 'rollup_error' }, { status: 503, body: 'unavailable', headers: { 'retry-after': '2' } });
    const e500 = await rejection(slack.deliver(job(url), signal()));
    assert.ok(e500 instanceof RetryableError);
    assert.equal(e500.errorClass, 'http_500');
    assert.equal(e500.addressGone, false);
    const e503 = await rejection(slack.deliver(job(url), signal()));
    assert.ok(e503 instanceof RetryableError);
    assert.equal(e503.errorClass, 'http_503');
    assert.equal(e503.retryAfterMs, 2000);
  });

  test('a redirect is not followed and is permanent', async () => {
    const url = fake.newWebhook();
    fake.script(url, { status: 302, headers: { location: 'https://elsewhere.example/' } });
    const err = await rejection(slack.deliver(job(url), signal()));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'http_redirect');
  });

  test('no answer within the timeout: retryable timeout', async () => {
    const quick = new SafeHttp({ allow: allowLoopback, timeoutMs: 200 });
    try {
      const url = fake.newWebhook();
      fake.script(url, { status: 0, hang: true });
      const err = await rejection(new SlackChannel({ http: quick }).deliver(job(url), signal()));
      assert.ok(err instanceof RetryableError);
      assert.equal(err.errorClass, 'timeout');
    } finally {
      await quick.close();
    }
  });

  test('connection refused: retryable network error', async () => {
    const err = await rejection(slack.deliver(job(`http://127.0.0.1:${await closedPort()}/services/T1/B1/x`), signal()));
    assert.ok(err instanceof RetryableError);
    assert.equal(err.errorClass, 'network');
  });

  test('a destination the SSRF policy refuses: permanent destination_refused, nothing sent', async () => {
    const strict = new SafeHttp({ allow: [], timeoutMs: 5000 });
    try {
      const url = fake.newWebhook();
      const err = await rejection(new SlackChannel({ http: strict }).deliver(job(url), signal()));
      assert.ok(err instanceof PermanentError);
      assert.equal(err.errorClass, 'destination_refused');
      assert.equal(fake.requestsTo(url).length, 0);
    } finally {
      await strict.close();
    }
  });

  test('a recipient without a Slack webhook: permanent no_address', async () => {
    const err = await rejection(slack.deliver(job(null), signal()));
    assert.equal(err.errorClass, 'no_address');
  });
});

describe('isSlackWebhookUrl', () => {
  test("accepts Slack's webhook URLs only, unless allowAnyHost", () => {
    assert.equal(isSlackWebhookUrl('https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX'), true);
    assert.equal(isSlackWebhookUrl('https://hooks.slack-gov.com/services/T0/B0/abc'), true);
    for (const bad of [
      'http://hooks.slack.com/services/T0/B0/abc',
      'https://hooks.slack.com.evil.example/services/T0/B0/abc',
      'https://evil.example/services/T0/B0/abc',
      'https://hooks.slack.com/workflows/T0/A0/1/abc',
      'https://hooks.slack.com/services/T0/B0',
      'https://user:pw@hooks.slack.com/services/T0/B0/abc',
      'https://hooks.slack.com:8443/services/T0/B0/abc',
      'not a url',
    ]) {
      assert.equal(isSlackWebhookUrl(bad), false, bad);
    }
    assert.equal(isSlackWebhookUrl('http://127.0.0.1:8065/hooks/abc', { allowAnyHost: true }), true);
    assert.equal(isSlackWebhookUrl('https://chat.example.org/hooks/abc', { allowAnyHost: true }), true);
    assert.equal(isSlackWebhookUrl('ftp://chat.example.org/hooks/abc', { allowAnyHost: true }), false);
  });
});

describe('SlackOptions', () => {
  const validate = addFormats.default(new Ajv({ strict: false })).compile(SlackOptions);
  test('accepts the documented options and refuses anything else', () => {
    assert.equal(validate({}), true);
    assert.equal(validate({ username: 'Herald', icon_emoji: ':rocket:', icon_url: 'https://x.example/i.png', link: 'https://x.example/', link_text: 'Open' }), true);
    assert.equal(validate({ colour: 1 }), false);
    assert.equal(validate({ link: 'javascript:alert(1)' }), false);
    assert.equal(validate({ icon_emoji: 'rocket' }), false);
    assert.equal(validate({ link_text: 'x'.repeat(76) }), false);
  });
});
