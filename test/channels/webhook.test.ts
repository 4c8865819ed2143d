// Webhook delivery end to end, on each store: the real server (compressed retry schedule) posting to a
// local receiver that verifies every signature with the independent `standardwebhooks` package.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { lookup } from 'node:dns/promises';
import { describeOnStores, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Received, type Receiver } from '../helpers/receiver.ts';

const SCHEDULE = [100, 200, 300]; // HERALD_RETRY_SCHEDULE below
const TERMINAL = ['sent', 'exhausted', 'skipped', 'discarded'];

interface Attempt {
  attempt: number;
  started_at: string;
  outcome: string;
  error_class: string | null;
  error: string | null;
  http_status: number | null;
  response: string | null;
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function ctx(getH: () => TestHerald) {
  let n = 0;
  const secrets = new Map<string, string>();
  return {
    secrets,
    /** Creates a recipient whose webhook points at `url`; returns its id and secret. */
    async recipient(url: string): Promise<{ id: string; secret: string }> {
      const id = `r${++n}-${Date.now()}`;
      const put = await getH().api('PUT', `/v1/recipients/${id}`, { webhook: { url } });
      assert.equal(put.status, 201, put.text);
      secrets.set(id, put.body.webhook.secret);
      return { id, secret: put.body.webhook.secret };
    },
    async send(to: string, extra: Record<string, unknown> = {}): Promise<{ notificationId: string; deliveryId: string }> {
      const res = await getH().api('POST', '/v1/notifications', { to, title: 'Deploy finished', body: 'All green', data: { build: 42 }, ...extra });
      assert.equal(res.status, 202, res.text);
      assert.equal(res.body.deliveries.length, 1);
      return { notificationId: res.body.id, deliveryId: res.body.deliveries[0].id };
    },
    /** Waits until the notification's only delivery is terminal; returns the delivery with its attempt log. */
    async settled(notificationId: string, timeoutMs = 30_000): Promise<{ notification: any; delivery: any; attempts: Attempt[] }> {
      const r = await waitFor(async () => {
        const got = await getH().api('GET', `/v1/notifications/${notificationId}`);
        assert.equal(got.status, 200, got.text);
        // The notification's status too: GET reads it and the deliveries in separate queries, so
        // for a moment it can lag a delivery that is already final.
        return TERMINAL.includes(got.body.deliveries[0].status) && !['accepted', 'in_progress'].includes(got.body.status) ? got : undefined;
      }, timeoutMs, `delivery of ${notificationId} to finish`);
      return { notification: r.body, delivery: r.body.deliveries[0], attempts: r.body.deliveries[0].attempt_log };
    },
  };
}

/** Every request verifies with standardwebhooks, carries the delivery id, and has a current timestamp. */
function assertSignedAndCurrent(rx: Receiver, reqs: Received[], secret: string, deliveryId: string) {
  assert.ok(reqs.length > 0);
  for (const r of reqs) {
    const payload = rx.verify(r, secret); // throws unless the signature verifies
    assert.equal(r.headers['webhook-id'], deliveryId);
    assert.equal(payload.delivery_id, deliveryId);
    assert.equal(r.headers['content-type'], 'application/json');
    const ts = Number(r.headers['webhook-timestamp']);
    assert.ok(Number.isInteger(ts), 'timestamp is unix seconds');
    assert.ok(Math.abs(ts * 1000 - r.at) < 5_000, `timestamp ${ts} is current (received at ${r.at})`);
    assert.match(String(r.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]+={0,2}$/);
  }
}

const startedMs = (a: Attempt) => Date.parse(a.started_at);

describeOnStores('webhook channel', (store) => {
  let h: TestHerald;
  let rx: Receiver;
  const t = ctx(() => h);
  const byPath = (path: string) => rx.received.filter((r) => r.path === path);
  const responders = new Map<string, (count: number) => { status: number; headers?: Record<string, string>; body?: string; delayMs?: number }>();

  before(async () => {
    h = await startHeraldOn(store, { HERALD_RETRY_SCHEDULE: SCHEDULE.map((ms) => `${ms}ms`).join(','), HERALD_WEBHOOK_TIMEOUT: '5s' });
    rx = await startReceiver((req, count) => responders.get(req.path)?.(count) ?? { status: 200, body: 'ok' });
  });
  after(async () => {
    await h.stop();
    await rx.close();
  });

  it('delivers a signed payload with the notification and stable ids', async () => {
    const { id, secret } = await t.recipient(`${rx.url}/plain`);
    const { notificationId, deliveryId } = await t.send(id);
    const { delivery, attempts, notification } = await t.settled(notificationId);
    assert.equal(delivery.status, 'sent');
    assert.equal(notification.status, 'sent');
    assert.equal(attempts.length, 1, JSON.stringify(attempts));
    const [req] = byPath('/plain');
    const payload = rx.verify(req!, secret);
    assert.deepEqual(
      { ...payload, created_at: undefined },
      { type: 'notification', id: notificationId, delivery_id: deliveryId, recipient: id, kind: 'transactional', title: 'Deploy finished', body: 'All green', data: { build: 42 }, created_at: undefined },
    );
    assert.ok(Math.abs(Date.parse(payload.created_at) - Date.now()) < 60_000);
    assertSignedAndCurrent(rx, byPath('/plain'), secret, deliveryId);
  });

  it('5xx then 200: retried, then sent; the attempt log has both attempts with status and response excerpt', async () => {
    responders.set('/flaky', (n) => (n === 1 ? { status: 503, body: 'upstream down, try later' } : { status: 200, body: 'thanks!' }));
    const { id, secret } = await t.recipient(`${rx.url}/flaky`);
    const { notificationId, deliveryId } = await t.send(id);
    const { delivery, attempts, notification } = await t.settled(notificationId);
    assert.equal(delivery.status, 'sent');
    assert.equal(notification.status, 'sent');
    assert.equal(delivery.attempts, 2);
    assert.equal(attempts.length, 2);
    assert.deepEqual(
      attempts.map((a) => [a.attempt, a.outcome, a.error_class, a.http_status, a.response]),
      [
        [1, 'retryable', 'http_503', 503, 'upstream down, try later'],
        [2, 'success', null, 200, 'thanks!'],
      ],
    );
    // retried no sooner than the jittered first delay
    assert.ok(startedMs(attempts[1]!) - startedMs(attempts[0]!) >= SCHEDULE[0]! * 0.8);
    const reqs = byPath('/flaky');
    assert.equal(reqs.length, 2);
    // the same webhook-id (the delivery id) on every retry, so receivers can de-duplicate
    assert.deepEqual(reqs.map((r) => r.headers['webhook-id']), [deliveryId, deliveryId]);
    assert.equal(reqs[0]!.body, reqs[1]!.body, 'the same payload bytes on every retry');
    assertSignedAndCurrent(rx, reqs, secret, deliveryId);
  });

  it('408 and 500 are retryable too', async () => {
    responders.set('/408', (n) => (n === 1 ? { status: 408 } : { status: 204 }));
    responders.set('/500', (n) => (n < 3 ? { status: 500, body: 'boom' } : { status: 200 }));
    const a = await t.recipient(`${rx.url}/408`);
    const b = await t.recipient(`${rx.url}/500`);
    const sa = await t.send(a.id);
    const sb = await t.send(b.id);
    const da = await t.settled(sa.notificationId);
    const db = await t.settled(sb.notificationId);
    assert.equal(da.delivery.status, 'sent');
    assert.deepEqual(da.attempts.map((x) => [x.outcome, x.http_status]), [['retryable', 408], ['success', 204]]);
    assert.equal(db.delivery.status, 'sent');
    assert.deepEqual(db.attempts.map((x) => [x.outcome, x.error_class]), [['retryable', 'http_500'], ['retryable', 'http_500'], ['success', null]]);
    assertSignedAndCurrent(rx, byPath('/408'), a.secret, sa.deliveryId);
    assertSignedAndCurrent(rx, byPath('/500'), b.secret, sb.deliveryId);
  });

  it('429 with Retry-After: retried no sooner than the jittered schedule, and the receiver\'s wish is honoured up to 2× the scheduled delay', async () => {
    // Retry-After: 1 s asks for more than the 100 ms schedule: honoured, capped at 2 × 100 ms.
    // Without honouring it the retry would come within 120 ms (100 ms + 20% jitter).
    responders.set('/throttled', (n) => (n === 1 ? { status: 429, headers: { 'retry-after': '1' }, body: 'slow down' } : { status: 200 }));
    const { id, secret } = await t.recipient(`${rx.url}/throttled`);
    const { notificationId, deliveryId } = await t.send(id);
    const { delivery, attempts } = await t.settled(notificationId);
    assert.equal(delivery.status, 'sent');
    assert.deepEqual(attempts.map((a) => [a.outcome, a.error_class, a.http_status, a.response]), [
      ['rate_limited', 'rate_limited', 429, 'slow down'],
      ['success', null, 200, ''],
    ]);
    const reqs = byPath('/throttled');
    assert.equal(reqs.length, 2);
    const gap = reqs[1]!.at - reqs[0]!.at;
    assert.ok(gap >= 2 * SCHEDULE[0]!, `retried after ${gap}ms, expected at least ${2 * SCHEDULE[0]!}ms (Retry-After honoured)`);
    assertSignedAndCurrent(rx, reqs, secret, deliveryId);
  });

  it('429 with a Retry-After shorter than the schedule: the jittered schedule wins', async () => {
    responders.set('/throttled-short', (n) => (n === 1 ? { status: 429, headers: { 'retry-after': '0' } } : { status: 200 }));
    const { id, secret } = await t.recipient(`${rx.url}/throttled-short`);
    const { notificationId, deliveryId } = await t.send(id);
    const { delivery } = await t.settled(notificationId);
    assert.equal(delivery.status, 'sent');
    const reqs = byPath('/throttled-short');
    assert.equal(reqs.length, 2);
    const gap = reqs[1]!.at - reqs[0]!.at;
    assert.ok(gap >= SCHEDULE[0]! * 0.8, `retried after ${gap}ms, sooner than the jittered schedule`);
    assertSignedAndCurrent(rx, reqs, secret, deliveryId);
  });

  for (const status of [410, 400, 401, 404, 422]) {
    it(`${status} → exhausted immediately after one attempt (error_class http_${status})`, async () => {
      const path = `/gone-${status}`;
      responders.set(path, () => ({ status, body: `no (${status})` }));
      const { id, secret } = await t.recipient(`${rx.url}${path}`);
      const { notificationId, deliveryId } = await t.send(id);
      const { delivery, attempts, notification } = await t.settled(notificationId);
      assert.equal(delivery.status, 'exhausted');
      assert.equal(notification.status, 'failed');
      assert.equal(delivery.error_class, `http_${status}`);
      assert.equal(delivery.attempts, 1);
      assert.deepEqual(attempts.map((a) => [a.outcome, a.error_class, a.http_status, a.response]), [['permanent', `http_${status}`, status, `no (${status})`]]);
      assert.equal(byPath(path).length, 1);
      assertSignedAndCurrent(rx, byPath(path), secret, deliveryId);
    });
  }

  it('410 Gone also disables the webhook: later sends skip it until the webhook is PUT again', async () => {
    let gone = true;
    responders.set('/retired', () => (gone ? { status: 410 } : { status: 200 }));
    const { id } = await t.recipient(`${rx.url}/retired`);
    const { notificationId } = await t.send(id);
    const { delivery } = await t.settled(notificationId);
    assert.equal(delivery.status, 'exhausted');
    const rec = await waitFor(async () => {
      const r = await h.api('GET', `/v1/recipients/${id}`);
      return r.body.webhook.disabled_at ? r : undefined;
    }, 5000, 'webhook disabled');
    assert.match(rec.body.webhook.disabled_reason, /410/);
    const refused = await h.api('POST', '/v1/notifications', { to: id, title: 'again' });
    assert.equal(refused.status, 422);
    assert.equal(refused.body.code, 'no_channel');

    gone = false;
    const put = await h.api('PUT', `/v1/recipients/${id}`, { webhook: { url: `${rx.url}/retired` } });
    assert.equal(put.body.webhook.disabled_at, null, 'PUT re-enables the webhook');
    const again = await t.send(id);
    assert.equal((await t.settled(again.notificationId)).delivery.status, 'sent');
    assert.equal(byPath('/retired').length, 2, 'nothing was sent while the webhook was disabled');
  });

  it('302 → exhausted: the redirect is not followed', async () => {
    responders.set('/moved', () => ({ status: 302, headers: { location: '/moved-target' } }));
    responders.set('/moved-target', () => ({ status: 200 }));
    const { id, secret } = await t.recipient(`${rx.url}/moved`);
    const { notificationId, deliveryId } = await t.send(id);
    const { delivery, attempts } = await t.settled(notificationId);
    assert.equal(delivery.status, 'exhausted');
    assert.equal(attempts.length, 1);
    assert.equal(attempts[0]!.outcome, 'permanent');
    assert.equal(attempts[0]!.http_status, 302);
    assert.equal(byPath('/moved').length, 1);
    assert.equal(byPath('/moved-target').length, 0, 'the redirect target was never requested');
    assertSignedAndCurrent(rx, byPath('/moved'), secret, deliveryId);
  });

  it('connection refused (closed port) → retried on the schedule, then exhausted', async () => {
    const port = await closedPort();
    const { id } = await t.recipient(`http://127.0.0.1:${port}/nobody-home`);
    const { notificationId } = await t.send(id);
    const { delivery, attempts, notification } = await t.settled(notificationId);
    assert.equal(delivery.status, 'exhausted');
    assert.equal(notification.status, 'failed');
    assert.equal(attempts.length, 1 + SCHEDULE.length);
    assert.deepEqual(attempts.map((a) => a.attempt), [1, 2, 3, 4]);
    for (const a of attempts) {
      assert.equal(a.outcome, 'retryable');
      assert.equal(a.error_class, 'network');
      assert.match(a.error ?? '', /ECONNREFUSED/);
      assert.equal(a.http_status, null);
    }
    for (let i = 1; i < attempts.length; i++) {
      const gap = startedMs(attempts[i]!) - startedMs(attempts[i - 1]!);
      assert.ok(gap >= SCHEDULE[i - 1]! * 0.8, `attempt ${i + 1} came ${gap}ms after the previous one`);
    }
  });
});

describeOnStores('webhook channel timeouts (HERALD_WEBHOOK_TIMEOUT=1500ms)', (store) => {
  let h: TestHerald;
  let rx: Receiver;
  const t = ctx(() => h);
  const byPath = (path: string) => rx.received.filter((r) => r.path === path);
  const responders = new Map<string, (count: number) => { status: number; headers?: Record<string, string>; body?: string; delayMs?: number }>();

  before(async () => {
    h = await startHeraldOn(store, { HERALD_RETRY_SCHEDULE: SCHEDULE.map((ms) => `${ms}ms`).join(','), HERALD_WEBHOOK_TIMEOUT: '1500ms' });
    rx = await startReceiver((req, count) => responders.get(req.path)?.(count) ?? { status: 200, body: 'ok' });
    // Warm up: the first outgoing request of a process pays one-off start-up costs (the HTTP
    // parser is compiled on first use) that must not count against the short timeout below.
    const { id } = await t.recipient(`${rx.url}/warm-up`);
    const { notificationId } = await t.send(id);
    await t.settled(notificationId);
  });
  after(async () => {
    await h.stop();
    await rx.close();
  });

  it('a receiver that does not answer within HERALD_WEBHOOK_TIMEOUT → timeout, retried', async () => {
    // The first answer comes after twice the timeout (it times out however busy the machine is);
    // the second at once (1.5 s is room enough for a local answer on a busy machine).
    responders.set('/slow', (n) => (n === 1 ? { status: 200, delayMs: 3_000 } : { status: 200, body: 'fast now' }));
    const { id, secret } = await t.recipient(`${rx.url}/slow`);
    const { notificationId, deliveryId } = await t.send(id);
    const { delivery, attempts } = await t.settled(notificationId, 30_000);
    assert.equal(delivery.status, 'sent');
    assert.deepEqual(attempts.map((a) => [a.outcome, a.error_class, a.http_status]), [['retryable', 'timeout', null], ['success', null, 200]]);
    assert.ok(attempts[0]!.error && /time/i.test(attempts[0]!.error));
    const reqs = byPath('/slow');
    assert.equal(reqs.length, 2);
    assertSignedAndCurrent(rx, reqs, secret, deliveryId);
  });

  it('a receiver that never answers in time → timeout on every attempt, then exhausted', async () => {
    responders.set('/never', () => ({ status: 200, delayMs: 3_000 }));
    const { id, secret } = await t.recipient(`${rx.url}/never`);
    const { notificationId, deliveryId } = await t.send(id);
    const { delivery, attempts } = await t.settled(notificationId, 60_000);
    assert.equal(delivery.status, 'exhausted');
    assert.equal(delivery.error_class, 'timeout');
    assert.deepEqual(attempts.map((a) => [a.outcome, a.error_class]), Array(4).fill(['retryable', 'timeout']));
    assertSignedAndCurrent(rx, byPath('/never'), secret, deliveryId);
  });
});

describeOnStores('webhook channel without HERALD_ALLOW_NETWORKS', (store) => {
  let h: TestHerald;
  let rx: Receiver;
  const t = ctx(() => h);
  let localhostIsLoopback = false;
  before(async () => {
    h = await startHeraldOn(store, { HERALD_ALLOW_NETWORKS: '' });
    rx = await startReceiver();
    localhostIsLoopback = (await lookup('localhost', { all: true })).some((a) => a.address === '127.0.0.1' || a.address === '::1');
  });
  after(async () => {
    await h.stop();
    await rx.close();
  });

  it('a webhook to 127.0.0.1 → exhausted with destination_refused; the receiver saw nothing', async () => {
    const { id } = await t.recipient(`${rx.url}/private`);
    const { notificationId } = await t.send(id);
    const { delivery, attempts } = await t.settled(notificationId);
    assert.equal(delivery.status, 'exhausted');
    assert.equal(delivery.error_class, 'destination_refused');
    assert.deepEqual(attempts.map((a) => [a.outcome, a.error_class, a.http_status]), [['permanent', 'destination_refused', null]]);
    assert.match(attempts[0]!.error ?? '', /loopback/);
    assert.equal(rx.received.length, 0);
  });

  it('a host name that resolves to loopback is refused after DNS; the receiver saw nothing', async (c) => {
    if (!localhostIsLoopback) return c.skip('localhost does not resolve to loopback here');
    const port = new URL(rx.url).port;
    const { id } = await t.recipient(`http://localhost:${port}/by-name`);
    const { notificationId } = await t.send(id);
    const { delivery, attempts } = await t.settled(notificationId);
    assert.equal(delivery.status, 'exhausted');
    assert.deepEqual(attempts.map((a) => [a.outcome, a.error_class]), [['permanent', 'destination_refused']]);
    assert.equal(rx.received.length, 0);
  });

  it('metadata and private addresses are refused the same way', async () => {
    for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://10.0.0.1/hook', 'http://[::1]:9/hook', 'http://[::ffff:127.0.0.1]:9/hook']) {
      const { id } = await t.recipient(url);
      const { notificationId } = await t.send(id);
      const { delivery, attempts } = await t.settled(notificationId);
      assert.equal(delivery.status, 'exhausted', url);
      assert.deepEqual(attempts.map((a) => a.error_class), ['destination_refused'], url);
    }
  });
});
