// Email delivery end to end: the real server with HERALD_SMTP_URL pointing at a real SMTP server
// (smtp-server) that keeps every message, checked down to the raw MIME. On each store.

import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describeOnStores, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { startSmtp, type SmtpSink } from '../helpers/smtp.ts';
import { decodeHeader, findPart, parseMime } from '../helpers/mime.ts';
import { SMTPServer } from 'smtp-server';
import { EmailChannel } from '../../src/channels/email.ts';
import type { DeliveryJob } from '../../src/channels/channel.ts';

const SCHEDULE = [100, 200, 300];
const FROM = 'Herald Alerts <alerts@herald.example>';
const TERMINAL = ['sent', 'exhausted', 'skipped', 'discarded'];
const UNSETTLED = ['accepted', 'in_progress'];

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function settled(h: TestHerald, notificationId: string, timeoutMs = 10_000): Promise<any> {
  const r = await waitFor(async () => {
    const got = await h.api('GET', `/v1/notifications/${notificationId}`);
    assert.equal(got.status, 200, got.text);
    // The notification's status too: GET reads it and the deliveries in separate queries, so for a
    // moment it can lag deliveries that are already final.
    return got.body.deliveries.every((d: any) => TERMINAL.includes(d.status)) && !UNSETTLED.includes(got.body.status) ? got : undefined;
  }, timeoutMs, `deliveries of ${notificationId} to finish`);
  return r.body;
}

let seq = 0;
async function putRecipient(h: TestHerald, body: Record<string, unknown>): Promise<string> {
  const id = `u${++seq}-${Date.now()}`;
  const put = await h.api('PUT', `/v1/recipients/${id}`, body);
  assert.equal(put.status, 201, put.text);
  return id;
}

async function send(h: TestHerald, body: Record<string, unknown>): Promise<any> {
  const res = await h.api('POST', '/v1/notifications', body);
  assert.equal(res.status, 202, res.text);
  return res.body;
}

describeOnStores('email channel', (store) => {
  let h: TestHerald;
  let smtp: SmtpSink;
  let rx: Receiver;

  before(async () => {
    smtp = await startSmtp();
    rx = await startReceiver();
    h = await startHeraldOn(store, { HERALD_SMTP_URL: smtp.url, HERALD_EMAIL_FROM: FROM, HERALD_RETRY_SCHEDULE: SCHEDULE.map((ms) => `${ms}ms`).join(',') });
  });
  beforeEach(() => {
    smtp.reject = () => undefined;
  });
  after(async () => {
    await h.stop();
    await smtp.close();
    await rx.close();
  });

  it('a recipient with only an email gets a multipart/alternative message: text intact, HTML escaped, subject = title', async () => {
    const to = await putRecipient(h, { name: 'Ada Lovelace', email: 'ada@example.org' });
    const body = 'Build <script>alert("x")</script> & co.\nSecond line\n\nNew paragraph';
    const sent = await send(h, { to, title: 'Your build', body });
    assert.deepEqual(sent.deliveries.map((d: any) => d.channel), ['email']);
    const n = await settled(h, sent.id);
    const d = n.deliveries[0];
    assert.equal(d.status, 'sent');
    assert.equal(n.status, 'sent');
    assert.equal(d.attempt_log.length, 1);
    assert.equal(d.attempt_log[0].outcome, 'success');
    assert.match(d.attempt_log[0].smtp_reply, /^250/);

    const mails = smtp.messages.filter((m) => m.to.includes('ada@example.org'));
    assert.equal(mails.length, 1);
    const mail = mails[0]!;
    assert.equal(mail.from, 'alerts@herald.example');
    const mime = parseMime(mail.raw);
    assert.equal(mime.headers.get('subject'), 'Your build');
    assert.equal(mime.headers.get('from'), FROM);
    assert.equal(mime.headers.get('to'), 'Ada Lovelace <ada@example.org>');
    assert.equal(mime.headers.get('x-herald-notification'), sent.id);
    assert.match(mime.headers.get('content-type')!, /^multipart\/alternative;/i);
    assert.equal(mime.parts.length, 2);

    const text = findPart(mime, 'text/plain');
    const html = findPart(mime, 'text/html');
    assert.ok(text && html, 'both a text and an HTML part');
    assert.match(text.headers.get('content-type')!, /charset=utf-8/i);
    assert.equal(text.body.replace(/\r\n/g, '\n').trimEnd(), body, 'the text part is the body, unescaped');
    const h2 = html.body.replace(/\r\n/g, '\n');
    assert.ok(!h2.includes('<script>'), 'no live <script> in the HTML part');
    assert.ok(h2.includes('Build &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co.<br>Second line'), h2);
    assert.ok(h2.includes('<p>New paragraph</p>'), h2);
    assert.ok(h2.includes('<h2>Your build</h2>'), h2);

    // The Message-ID is recorded as the provider message id and is the one in the message.
    assert.match(d.provider_message_id, /^<.+@herald\.example>$/);
    assert.equal(mime.headers.get('message-id'), d.provider_message_id);
    assert.ok(d.provider_message_id.includes(d.id), 'the Message-ID is derived from the delivery id');
  });

  it('the title and name are escaped in the HTML part too', async () => {
    const to = await putRecipient(h, { email: 'grace@example.org' });
    const sent = await send(h, { to, title: 'A & B <b>', body: 'x' });
    const n = await settled(h, sent.id);
    assert.equal(n.deliveries[0].status, 'sent');
    const mail = smtp.messages.find((m) => m.to.includes('grace@example.org'))!;
    const html = findPart(parseMime(mail.raw), 'text/html')!.body;
    assert.ok(html.includes('<h2>A &amp; B &lt;b&gt;</h2>'), html);
    assert.ok(html.includes('<title>A &amp; B &lt;b&gt;</title>'), html);
    assert.equal(parseMime(mail.raw).headers.get('subject'), 'A & B <b>');
  });

  it('non-ASCII text survives in both parts and in the subject', async () => {
    const to = await putRecipient(h, { email: 'intl@example.org' });
    const body = 'Déploiement terminé ✅ — 배포 완료 😀\n' + 'long line '.repeat(20);
    const sent = await send(h, { to, title: 'Grüße 👋 배포', body });
    assert.equal((await settled(h, sent.id)).deliveries[0].status, 'sent');
    const mime = parseMime(smtp.messages.find((m) => m.to.includes('intl@example.org'))!.raw);
    assert.equal(decodeHeader(mime.headers.get('subject')!), 'Grüße 👋 배포');
    assert.equal(findPart(mime, 'text/plain')!.body.replace(/\r\n/g, '\n').trimEnd(), body.trimEnd());
    assert.ok(findPart(mime, 'text/html')!.body.includes('Déploiement terminé ✅ — 배포 완료 😀<br>'));
  });

  it('without a title the subject is the start of the body, never cutting a character in half', async () => {
    const to = await putRecipient(h, { email: 'notitle@example.org' });
    const body = 'a' + '😀'.repeat(60); // 78 UTF-16 code units end inside a surrogate pair
    const sent = await send(h, { to, body });
    assert.equal((await settled(h, sent.id)).deliveries[0].status, 'sent');
    const mime = parseMime(smtp.messages.find((m) => m.to.includes('notitle@example.org'))!.raw);
    const subject = decodeHeader(mime.headers.get('subject')!);
    assert.ok(!subject.includes('\uFFFD'), `no replacement character in ${JSON.stringify(subject)}`);
    assert.ok(subject.length > 0 && body.startsWith(subject), `subject ${JSON.stringify(subject)} is a prefix of the body`);
    assert.ok(Array.from(subject).length <= 78);
  });

  it('a recipient with both a webhook and an email gets two deliveries', async () => {
    const to = await putRecipient(h, { email: 'both@example.org', webhook: { url: `${rx.url}/both` } });
    const sent = await send(h, { to, title: 'Twice', body: 'hello' });
    assert.deepEqual(sent.deliveries.map((d: any) => d.channel).sort(), ['email', 'webhook']);
    const n = await settled(h, sent.id);
    assert.equal(n.status, 'sent');
    assert.deepEqual(n.deliveries.map((d: any) => [d.channel, d.status]).sort(), [['email', 'sent'], ['webhook', 'sent']]);
    assert.equal(smtp.messages.filter((m) => m.to.includes('both@example.org')).length, 1);
    const hooks = rx.received.filter((r) => r.path === '/both');
    assert.equal(hooks.length, 1);
    assert.equal(hooks[0]!.headers['webhook-id'], n.deliveries.find((d: any) => d.channel === 'webhook').id);
  });

  it('channels: ["email"] sends only the email', async () => {
    const to = await putRecipient(h, { email: 'only@example.org', webhook: { url: `${rx.url}/only` } });
    const sent = await send(h, { to, title: 'Just mail', body: 'hi', channels: ['email'] });
    assert.deepEqual(sent.deliveries.map((d: any) => d.channel), ['email']);
    const n = await settled(h, sent.id);
    assert.equal(n.deliveries.length, 1);
    assert.equal(n.deliveries[0].status, 'sent');
    assert.equal(smtp.messages.filter((m) => m.to.includes('only@example.org')).length, 1);
    // give a wrongly-created webhook delivery time to show up before concluding there is none
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(rx.received.filter((r) => r.path === '/only').length, 0);
  });

  it('channels: ["email"] for a recipient without an email is refused as unreachable', async () => {
    const to = await putRecipient(h, { webhook: { url: `${rx.url}/nomail` } });
    const res = await h.api('POST', '/v1/notifications', { to, title: 't', channels: ['email'] });
    assert.equal(res.status, 422, res.text);
    assert.equal(rx.received.filter((r) => r.path === '/nomail').length, 0);
  });

  it('an SMTP 550 on RCPT → exhausted (permanent) after one attempt, with the SMTP reply recorded', async () => {
    smtp.reject = (rcpt) => (rcpt === 'nobody@example.org' ? { code: 550, message: 'No such user here' } : undefined);
    const to = await putRecipient(h, { email: 'nobody@example.org' });
    const sent = await send(h, { to, title: 'Bounce', body: 'x' });
    const n = await settled(h, sent.id);
    const d = n.deliveries[0];
    assert.equal(d.status, 'exhausted');
    assert.equal(n.status, 'failed');
    assert.equal(d.error_class, 'smtp_550');
    assert.equal(d.attempt_log.length, 1);
    const a = d.attempt_log[0];
    assert.equal(a.outcome, 'permanent');
    assert.equal(a.error_class, 'smtp_550');
    assert.match(a.smtp_reply, /^550\b.*No such user here/);
    assert.equal(smtp.messages.filter((m) => m.to.includes('nobody@example.org')).length, 0);
  });

  it('an SMTP 451 (try again later) → retried, then sent', async () => {
    let rejections = 0;
    smtp.reject = (rcpt) => (rcpt === 'grey@example.org' && rejections++ === 0 ? { code: 451, message: 'Greylisted, try again later' } : undefined);
    const to = await putRecipient(h, { email: 'grey@example.org' });
    const sent = await send(h, { to, title: 'Greylist', body: 'x' });
    const n = await settled(h, sent.id);
    const d = n.deliveries[0];
    assert.equal(d.status, 'sent');
    assert.deepEqual(d.attempt_log.map((a: any) => [a.outcome, a.error_class]), [['retryable', 'smtp_451'], ['success', null]]);
    assert.match(d.attempt_log[0].smtp_reply, /^451\b.*Greylisted/);
    assert.ok(Date.parse(d.attempt_log[1].started_at) - Date.parse(d.attempt_log[0].started_at) >= SCHEDULE[0]! * 0.8);
    assert.equal(smtp.messages.filter((m) => m.to.includes('grey@example.org')).length, 1);
  });

  it('an SMTP 4xx every time → retried on the schedule, then exhausted', async () => {
    smtp.reject = (rcpt) => (rcpt === 'full@example.org' ? { code: 452, message: 'Mailbox full' } : undefined);
    const to = await putRecipient(h, { email: 'full@example.org' });
    const sent = await send(h, { to, title: 'Full', body: 'x' });
    const n = await settled(h, sent.id);
    const d = n.deliveries[0];
    assert.equal(d.status, 'exhausted');
    assert.deepEqual(d.attempt_log.map((a: any) => [a.outcome, a.error_class]), Array(1 + SCHEDULE.length).fill(['retryable', 'smtp_452']));
  });
});

describeOnStores('email channel with the SMTP server down', (store) => {
  let h: TestHerald;
  before(async () => {
    const port = await closedPort();
    h = await startHeraldOn(store, { HERALD_SMTP_URL: `smtp://127.0.0.1:${port}`, HERALD_EMAIL_FROM: FROM, HERALD_RETRY_SCHEDULE: SCHEDULE.map((ms) => `${ms}ms`).join(',') });
  });
  after(() => h.stop());

  it('a closed SMTP port → retried (network error), then exhausted after the schedule', async () => {
    const to = await putRecipient(h, { email: 'down@example.org' });
    const sent = await send(h, { to, title: 'Down', body: 'x' });
    const n = await settled(h, sent.id);
    const d = n.deliveries[0];
    assert.equal(d.status, 'exhausted');
    assert.equal(d.attempt_log.length, 1 + SCHEDULE.length);
    for (const a of d.attempt_log) {
      assert.equal(a.outcome, 'retryable');
      assert.equal(a.error_class, 'network');
      assert.match(a.error, /ECONNREFUSED/);
    }
  });
});

describeOnStores('email channel with wrong SMTP credentials', (store) => {
  let h: TestHerald;
  let server: SMTPServer;
  const received: string[] = [];
  before(async () => {
    server = new SMTPServer({
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onAuth(auth, _session, cb) {
        if (auth.username === 'herald' && auth.password === 'right') return cb(null, { user: auth.username });
        cb(new Error('Invalid username or password'));
      },
      onData(stream, _session, cb) {
        stream.on('data', () => undefined);
        stream.on('end', () => {
          received.push('mail');
          cb();
        });
      },
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.server.address() as AddressInfo).port;
    h = await startHeraldOn(store, { HERALD_SMTP_URL: `smtp://herald:wrong@127.0.0.1:${port}`, HERALD_EMAIL_FROM: FROM, HERALD_RETRY_SCHEDULE: '5s' });
  });
  after(async () => {
    await h.stop();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('an authentication failure (535) is retryable, not a permanent failure of the message', async () => {
    const to = await putRecipient(h, { email: 'auth@example.org' });
    const sent = await send(h, { to, title: 'Auth', body: 'x' });
    const d = await waitFor(async () => {
      const r = await h.api('GET', `/v1/notifications/${sent.id}`);
      const dv = r.body.deliveries[0];
      return dv.attempt_log.length >= 1 && dv.status !== 'sending' ? dv : undefined;
    }, 10_000, 'first attempt settled');
    assert.equal(d.status, 'failed', 'a retry is scheduled');
    assert.equal(d.attempt_log[0].outcome, 'retryable');
    assert.equal(d.attempt_log[0].error_class, 'smtp_535');
    assert.equal(received.length, 0);
  });
});

describe('EmailChannel abort', () => {
  it('an aborted attempt ends at once, not at the SMTP timeout (shutdown must not wait for a stuck server)', async () => {
    let gotData = false;
    const stuck = new SMTPServer({
      closeTimeout: 100, // do not wait for the stuck client connection when closing
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData(stream, _session, _cb) {
        stream.resume();
        stream.on('end', () => (gotData = true)); // ...and never answers
      },
    });
    await new Promise<void>((r) => stuck.listen(0, '127.0.0.1', r));
    const port = (stuck.server.address() as AddressInfo).port;
    const channel = new EmailChannel({ smtpUrl: new URL(`smtp://127.0.0.1:${port}`), from: FROM, timeoutMs: 60_000, maxConnections: 1 });
    const job: DeliveryJob = {
      deliveryId: 'dlv_01ARYZ6S41TSV4RRFFQ69G5FAV',
      notificationId: 'ntf_01ARYZ6S41TSV4RRFFQ69G5FAV',
      workspaceId: 'ws_default',
      channel: 'email',
      attempt: 1,
      notification: { kind: 'transactional', title: 'Stuck', body: 'x', data: null, createdAt: Date.now(), options: {}, fallback: false },
      recipient: {
        id: 'r', name: null, email: 'stuck@example.org', phone: null, locale: null, timezone: null, webhookUrl: null, webhookSecret: null,
        pushover: null, slackWebhookUrl: null, discordWebhookUrl: null, kakaoPhone: null,
      },
    };
    const ac = new AbortController();
    try {
      const attempt = channel.deliver(job, ac.signal);
      attempt.catch(() => undefined);
      await waitFor(() => gotData, 10_000, 'the message to reach the stuck server');
      ac.abort();
      // The SMTP timeout is 60 s; 10 s is only a bound on "did the abort end it at all".
      const outcome = await Promise.race([
        attempt.then(() => 'resolved', (e: Error) => e),
        new Promise((r) => setTimeout(() => r('still running'), 10_000).unref()),
      ]);
      assert.ok(outcome instanceof Error, `the attempt should reject after abort, got ${String(outcome)}`);
      assert.equal(outcome.name, 'AbortError');
      // and an already-aborted signal never starts an attempt
      await assert.rejects(channel.deliver(job, ac.signal), (e: Error) => e.name === 'AbortError');
    } finally {
      await channel.close();
      await new Promise<void>((r) => stuck.close(() => r()));
    }
  });
});
