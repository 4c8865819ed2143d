// The Discord channel against the fake Discord Execute Webhook server (test/fakes/chat.ts): what is
// sent, how each of Discord's answers is classified, embed limits, and the URL helpers.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { SafeHttp } from '../../src/net/safe-http.ts';
import { parseCidrList } from '../../src/net/address-policy.ts';
import { DeliveryError, PermanentError, RateLimitedError, RetryableError, type DeliveryJob, type RecipientAddress } from '../../src/channels/channel.ts';
import { DiscordChannel, DiscordOptions, discordExecuteUrl, isDiscordWebhookUrl } from '../../src/channels/discord.ts';
import { startFakeDiscord, type FakeDiscord } from '../fakes/chat.ts';

const CREATED_AT = Date.parse('2025-03-01T12:00:00.000Z');

function recipient(discordWebhookUrl: string | null): RecipientAddress {
  return {
    id: 'r1', name: null, email: null, phone: null, locale: null, timezone: null, webhookUrl: null, webhookSecret: null,
    pushover: null, slackWebhookUrl: null, discordWebhookUrl, kakaoPhone: null,
  };
}

function job(url: string | null, n: Partial<DeliveryJob['notification']> = {}): DeliveryJob {
  return {
    deliveryId: 'dlv_1', notificationId: 'ntf_1', workspaceId: 'ws_1', channel: 'discord', attempt: 1,
    notification: { kind: 'deploy', title: 'Deploy finished', body: 'All **green**', data: null, createdAt: CREATED_AT, options: {}, fallback: false, ...n },
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

const signal = () => new AbortController().signal;
const allowLoopback = parseCidrList('127.0.0.0/8,::1/128');

let fake: FakeDiscord;
let http: SafeHttp;
let discord: DiscordChannel;

before(async () => {
  fake = await startFakeDiscord();
  http = new SafeHttp({ allow: allowLoopback, timeoutMs: 5000 });
  discord = new DiscordChannel({ http });
});
after(async () => {
  await discord.close();
  await http.close();
  await fake.close();
});

describe('a correct request', () => {
  test('is accepted with ?wait=true: 200 and the message id as the provider message id', async () => {
    const hook = fake.createWebhook();
    const res = await discord.deliver(job(hook.url), signal());
    assert.equal(res.httpStatus, 200);
    assert.match(res.providerMessageId ?? '', /^\d{17,20}$/);
    const message = JSON.parse(res.response!);
    assert.equal(message.id, res.providerMessageId);
    assert.equal(message.webhook_id, hook.id);
    const reqs = fake.requestsTo(hook.url);
    assert.equal(reqs.length, 1);
    const r = reqs[0]!;
    assert.equal(r.method, 'POST');
    assert.equal(r.query.wait, 'true');
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, {
      embeds: [{ title: 'Deploy finished', description: 'All **green**', timestamp: '2025-03-01T12:00:00.000Z' }],
      allowed_mentions: { parse: [] },
    });
  });

  test('options: username, avatar, colour and link', async () => {
    const hook = fake.createWebhook();
    const options = { username: 'Herald', avatar_url: 'https://cdn.example.com/a.png', color: 0x58b9ff, link: 'https://ci.example.com/builds/42' };
    const res = await discord.deliver(job(hook.url, { options }), signal());
    const r = fake.requestsTo(hook.url)[0]!;
    assert.equal(r.status, 200);
    assert.equal(r.json.username, 'Herald');
    assert.equal(r.json.avatar_url, 'https://cdn.example.com/a.png');
    assert.equal(r.json.embeds[0].color, 0x58b9ff);
    assert.equal(r.json.embeds[0].url, 'https://ci.example.com/builds/42');
    assert.equal(JSON.parse(res.response!).author.username, 'Herald');
  });

  test('the link defaults to data.url when it is an http(s) URL', async () => {
    const hook = fake.createWebhook();
    await discord.deliver(job(hook.url, { data: { url: 'https://status.example.com/i/7' } }), signal());
    await discord.deliver(job(hook.url, { data: { url: 'javascript:alert(1)' } }), signal());
    const [a, b] = fake.requestsTo(hook.url);
    assert.equal(a!.json.embeds[0].url, 'https://status.example.com/i/7');
    assert.equal('url' in b!.json.embeds[0], false);
  });

  test('@everyone in a notification cannot ping: allowed_mentions parses nothing', async () => {
    const hook = fake.createWebhook();
    await discord.deliver(job(hook.url, { body: '@everyone <@&123> <@456> look' }), signal());
    const r = fake.requestsTo(hook.url)[0]!;
    assert.deepEqual(r.json.allowed_mentions, { parse: [] });
    assert.equal(r.json.content, undefined, 'mentions only ping from content; nothing is sent there');
  });

  test('a thread_id in the webhook URL is kept next to wait=true', async () => {
    const hook = fake.createWebhook();
    const res = await discord.deliver(job(`${hook.url}?thread_id=1234567890123456789`), signal());
    const r = fake.requestsTo(hook.url)[0]!;
    assert.deepEqual(r.query, { thread_id: '1234567890123456789', wait: 'true' });
    assert.equal(JSON.parse(res.response!).channel_id, '1234567890123456789');
  });

  test('a 204 (a compatible receiver ignoring wait) is success without a message id', async () => {
    const hook = fake.createWebhook();
    fake.script(hook.url, { status: 204 });
    const res = await discord.deliver(job(hook.url), signal());
    assert.deepEqual(res, { httpStatus: 204, response: '' });
  });
});

describe('limits', () => {
  test('title over 256 and description over 4096 characters are truncated with an ellipsis and accepted', async () => {
    const hook = fake.createWebhook();
    await discord.deliver(job(hook.url, { title: 'T'.repeat(300), body: 'b'.repeat(5000) }), signal());
    const r = fake.requestsTo(hook.url)[0]!;
    assert.equal(r.status, 200);
    const e = r.json.embeds[0];
    assert.equal(e.title, 'T'.repeat(255) + '…');
    assert.equal(e.description.length, 4096);
    assert.ok(e.description.endsWith('b…'));
    assert.ok(e.title.length + e.description.length <= 6000);
  });

  test('the fake enforces the same limits (Invalid Form Body with the field path)', async () => {
    const hook = fake.createWebhook();
    const post = (payload: unknown) => http.post(`${hook.url}?wait=true`, { 'content-type': 'application/json' }, JSON.stringify(payload));
    const long = await post({ embeds: [{ description: 'b'.repeat(4097) }] });
    assert.equal(long.status, 400);
    const body = JSON.parse(long.excerpt);
    assert.equal(body.code, 50035);
    assert.equal(body.errors.embeds['0'].description._errors[0].code, 'BASE_TYPE_MAX_LENGTH');
    const total = await post({ embeds: [{ title: 't', description: 'd'.repeat(4000) }, { description: 'd'.repeat(2000) }] });
    assert.equal(JSON.parse(total.excerpt).errors.embeds._errors[0].code, 'MAX_EMBED_SIZE_EXCEEDED');
    const empty = await post({ embeds: [] });
    assert.deepEqual([empty.status, JSON.parse(empty.excerpt).code], [400, 50006]);
  });

  test('an empty notification is refused before sending', async () => {
    const hook = fake.createWebhook();
    const err = await rejection(discord.deliver(job(hook.url, { title: '', body: '  ' }), signal()));
    assert.equal(err.errorClass, 'empty_message');
    assert.equal(fake.requestsTo(hook.url).length, 0);
  });
});

describe("Discord's answers", () => {
  test('429 {retry_after: 1.5}: rate limited for 1500 ms', async () => {
    const hook = fake.createWebhook();
    fake.rateLimit(hook.url, 1.5);
    const err = await rejection(discord.deliver(job(hook.url), signal()));
    assert.ok(err instanceof RateLimitedError);
    assert.equal(err.retryAfterMs, 1500);
    assert.equal(err.detail.httpStatus, 429);
    assert.match(err.message, /You are being rate limited/);
    await discord.deliver(job(hook.url), signal());
    assert.deepEqual(fake.requestsTo(hook.url).map((r) => r.status), [429, 200]);
  });

  test('429 without a JSON body: X-RateLimit-Reset-After, else Retry-After', async () => {
    const hook = fake.createWebhook();
    fake.script(
      hook.url,
      { status: 429, headers: { 'x-ratelimit-reset-after': '2.25', 'retry-after': '3', 'content-type': 'text/html' }, body: '<html>error 1015</html>' },
      { status: 429, headers: { 'retry-after': '3', 'content-type': 'text/html' }, body: '<html>error 1015</html>' },
    );
    const first = await rejection(discord.deliver(job(hook.url), signal()));
    assert.ok(first instanceof RateLimitedError);
    assert.equal(first.retryAfterMs, 2250);
    const second = await rejection(discord.deliver(job(hook.url), signal()));
    assert.equal(second.retryAfterMs, 3000);
  });

  test('404 Unknown Webhook (deleted): permanent, addressGone', async () => {
    const hook = fake.createWebhook();
    fake.deleteWebhook(hook.id);
    const err = await rejection(discord.deliver(job(hook.url), signal()));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'unknown_webhook');
    assert.equal(err.addressGone, true);
    assert.equal(err.detail.httpStatus, 404);
    assert.match(err.message, /Unknown Webhook \(code 10015\)/);
  });

  test('401 Invalid Webhook Token (token reset): permanent, addressGone', async () => {
    const hook = fake.createWebhook();
    const err = await rejection(discord.deliver(job(hook.url.replace(/\/[^/]+$/, '/not-the-token')), signal()));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'invalid_webhook_token');
    assert.equal(err.addressGone, true);
    assert.equal(err.detail.httpStatus, 401);
  });

  test('400 Invalid Form Body: permanent with the field Discord named; the address stays', async () => {
    const hook = fake.createWebhook();
    const err = await rejection(discord.deliver(job(hook.url, { options: { username: 'Discord Alerts' } }), signal()));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'invalid_form_body');
    assert.equal(err.addressGone, false);
    assert.match(err.message, /Invalid Form Body \(code 50035\); username: Username cannot contain/);
  });

  test('400 Cannot send an empty message: permanent empty_message', async () => {
    const hook = fake.createWebhook();
    fake.script(hook.url, { status: 400, body: { message: 'Cannot send an empty message', code: 50006 } });
    const err = await rejection(discord.deliver(job(hook.url), signal()));
    assert.ok(err instanceof PermanentError);
    assert.equal(err.errorClass, 'empty_message');
    assert.equal(err.addressGone, false);
    assert.match(err.message, /Cannot send an empty message/);
  });

  test('other 4xx: permanent, classed by Discord code or status', async () => {
    const hook = fake.createWebhook();
    fake.script(
      hook.url,
      { status: 403, body: { message: 'Missing Permissions', code: 50013 } },
      { status: 400, body: { message: 'Webhooks posted to forum channels must have a thread_name or thread_id', code: 220001 } },
      { status: 413, body: 'too large' },
      { status: 400, body: { message: 'Something new', code: 99999 } },
    );
    const classes = [];
    for (let i = 0; i < 4; i++) {
      const err = await rejection(discord.deliver(job(hook.url), signal()));
      assert.ok(err instanceof PermanentError);
      assert.equal(err.addressGone, false);
      classes.push(err.errorClass);
    }
    assert.deepEqual(classes, ['missing_permissions', 'thread_required', 'http_413', 'discord_99999']);
  });

  test('5xx is retryable', async () => {
    const hook = fake.createWebhook();
    fake.script(hook.url, { status: 500, body: { message: '500: Internal Server Error', code: 0 } }, { status: 502, body: '<html>Bad Gateway</html>', headers: { 'content-type': 'text/html' } });
    for (const status of [500, 502]) {
      const err = await rejection(discord.deliver(job(hook.url), signal()));
      assert.ok(err instanceof RetryableError);
      assert.equal(err.errorClass, `http_${status}`);
      assert.equal(err.addressGone, false);
    }
  });

  test('no answer within the timeout: retryable timeout', async () => {
    const quick = new SafeHttp({ allow: allowLoopback, timeoutMs: 200 });
    try {
      const hook = fake.createWebhook();
      fake.script(hook.url, { status: 0, hang: true });
      const err = await rejection(new DiscordChannel({ http: quick }).deliver(job(hook.url), signal()));
      assert.ok(err instanceof RetryableError);
      assert.equal(err.errorClass, 'timeout');
    } finally {
      await quick.close();
    }
  });

  test('a destination the SSRF policy refuses: permanent destination_refused, nothing sent', async () => {
    const strict = new SafeHttp({ allow: [], timeoutMs: 5000 });
    try {
      const hook = fake.createWebhook();
      const err = await rejection(new DiscordChannel({ http: strict }).deliver(job(hook.url), signal()));
      assert.ok(err instanceof PermanentError);
      assert.equal(err.errorClass, 'destination_refused');
      assert.equal(fake.requestsTo(hook.url).length, 0);
    } finally {
      await strict.close();
    }
  });

  test('a recipient without a Discord webhook: permanent no_address', async () => {
    const err = await rejection(discord.deliver(job(null), signal()));
    assert.equal(err.errorClass, 'no_address');
  });
});

describe('webhook URLs', () => {
  test("isDiscordWebhookUrl accepts Discord's webhook URLs only, unless allowAnyHost", () => {
    const tok = 'aBc-12_xyz';
    for (const ok of [
      `https://discord.com/api/webhooks/123456789012345678/${tok}`,
      `https://discordapp.com/api/webhooks/123456789012345678/${tok}`,
      `https://ptb.discord.com/api/webhooks/123456789012345678/${tok}`,
      `https://canary.discord.com/api/v10/webhooks/123456789012345678/${tok}`,
      `https://discord.com/api/webhooks/123456789012345678/${tok}?thread_id=987654321098765432`,
    ]) {
      assert.equal(isDiscordWebhookUrl(ok), true, ok);
    }
    for (const bad of [
      `http://discord.com/api/webhooks/123/${tok}`,
      `https://discord.com.evil.example/api/webhooks/123/${tok}`,
      `https://evil.example/api/webhooks/123/${tok}`,
      `https://discord.com/api/webhooks/abc/${tok}`,
      `https://discord.com/api/webhooks/123`,
      `https://discord.com/api/webhooks/123/${tok}/slack`,
      `https://discord.com/api/webhooks/123/${tok}?wait=false`,
      `https://x:y@discord.com/api/webhooks/123/${tok}`,
      'not a url',
    ]) {
      assert.equal(isDiscordWebhookUrl(bad), false, bad);
    }
    assert.equal(isDiscordWebhookUrl('http://127.0.0.1:9000/hooks/abc', { allowAnyHost: true }), true);
    assert.equal(isDiscordWebhookUrl('file:///etc/passwd', { allowAnyHost: true }), false);
  });

  test('discordExecuteUrl pins Discord hosts to API v10 and adds wait=true', () => {
    assert.equal(discordExecuteUrl('https://discord.com/api/webhooks/1/tok'), 'https://discord.com/api/v10/webhooks/1/tok?wait=true');
    assert.equal(discordExecuteUrl('https://discord.com/api/v9/webhooks/1/tok'), 'https://discord.com/api/v9/webhooks/1/tok?wait=true');
    assert.equal(discordExecuteUrl('https://discord.com/api/webhooks/1/tok?thread_id=5'), 'https://discord.com/api/v10/webhooks/1/tok?thread_id=5&wait=true');
    assert.equal(discordExecuteUrl('http://127.0.0.1:9000/api/webhooks/1/tok'), 'http://127.0.0.1:9000/api/webhooks/1/tok?wait=true');
  });
});

describe('DiscordOptions', () => {
  const validate = addFormats.default(new Ajv({ strict: false })).compile(DiscordOptions);
  test('accepts the documented options and refuses anything else', () => {
    assert.equal(validate({}), true);
    assert.equal(validate({ username: 'Herald', avatar_url: 'https://x.example/a.png', link: 'https://x.example/', color: 0xffffff }), true);
    assert.equal(validate({ color: 0x1000000 }), false);
    assert.equal(validate({ color: 1.5 }), false);
    assert.equal(validate({ username: 'x'.repeat(81) }), false);
    assert.equal(validate({ link: 'ftp://x.example/' }), false);
    assert.equal(validate({ content: 'hi' }), false);
  });
});
