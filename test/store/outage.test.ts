// PostgreSQL outages, end to end: an in-process Herald reaches PostgreSQL only through a TCP proxy
// (test/helpers/tcp-proxy.ts) that the test cuts and restores; a local receiver takes the webhooks.
//
//   cut:       20 concurrent senders for the whole run, the proxy cut for 3s in the middle. Every
//              answer is a 202 or a 503 `unavailable` problem with Retry-After (no other status,
//              no failed connection); every request made entirely within the cut is a 503;
//              /healthz/ready is 503 store_unavailable during the cut and 200 after; sends
//              succeed again within 10s of the restore, without restarting anything; every 202
//              is stored and its delivery reaches the receiver.
//   blackhole: PostgreSQL stops answering without closing anything. A send answers 503 within
//              the hot-path timeout, /healthz/ready within the ping timeout, and both recover.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, request, waitFor, type ApiResponse, type TestHerald } from '../helpers/herald.ts';
import { freshSchema, TEST_DATABASE_URL, withClient, type TestSchema } from '../helpers/postgres.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

const SENDERS = 20;
const BEFORE_CUT_MS = 1_500;
const CUT_MS = 3_000;
const AFTER_RESTORE_MS = 1_500;
const RECOVERY_BOUND_MS = 10_000;

interface Outcome {
  start: number;
  end: number;
  status: number;
  code?: string;
  retryAfter: string | null;
  contentType: string | null;
  deliveryId?: string;
  notificationId?: string;
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PostgreSQL outage', () => {
  let db: TestSchema;
  let proxy: TcpProxy;
  let h: TestHerald;
  let rx: Receiver;

  before(async () => {
    db = await freshSchema();
    const target = new URL(TEST_DATABASE_URL);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const url = new URL(db.url);
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    h = await startHerald({
      DATABASE_URL: url.href,
      // Short leases, so that a claim whose answer the cut swallowed is taken again soon.
      HERALD_LEASE_TIME: '4s',
      HERALD_WEBHOOK_TIMEOUT: '1s',
      HERALD_SMTP_TIMEOUT: '1s',
      HERALD_POLL_INTERVAL: '100ms',
    });
    rx = await startReceiver();
    const put = await h.api('PUT', '/v1/recipients/ops', { name: 'Ops', webhook: { url: `${rx.url}/ops` } });
    assert.equal(put.status, 201);
  });

  after(async () => {
    await proxy?.restore();
    await h?.stop();
    await rx?.close();
    await proxy?.close();
    await db?.drop();
  });

  const send = async (title: string): Promise<Outcome> => {
    const start = Date.now();
    let r: ApiResponse;
    try {
      r = await h.api('POST', '/v1/notifications', { to: 'ops', title });
    } catch (err) {
      return { start, end: Date.now(), status: 0, retryAfter: null, contentType: null, error: String((err as Error).cause ?? err) };
    }
    return {
      start,
      end: Date.now(),
      status: r.status,
      code: r.body?.code,
      retryAfter: r.headers.get('retry-after'),
      contentType: r.headers.get('content-type'),
      deliveryId: r.status === 202 ? r.body.deliveries[0].id : undefined,
      notificationId: r.status === 202 ? r.body.id : undefined,
    };
  };

  it('answers 503 with Retry-After while PostgreSQL is cut, stores every 202, delivers it, and recovers by itself', async () => {
    const outcomes: Outcome[] = [];
    const health: { start: number; end: number; status: number; state: string }[] = [];
    let cutAt = Infinity; // the cut is complete: no connection to PostgreSQL is left
    let restoreAt = Infinity; // the restore begins
    let stop = false;
    let n = 0;

    const sender = async () => {
      while (!stop) {
        const o = await send(`load ${n++}`);
        outcomes.push(o);
        if (o.status !== 202) await sleep(50); // a client backing off (shorter than Retry-After)
      }
    };
    const prober = async () => {
      while (!stop) {
        const start = Date.now();
        const r = await request(h.url, undefined, 'GET', '/healthz/ready');
        health.push({ start, end: Date.now(), status: r.status, state: r.body.status });
        await sleep(100);
      }
    };
    const recoveredAt = () => outcomes.find((o) => o.status === 202 && o.start >= restoreAt)?.end;

    const load = Promise.all([...Array.from({ length: SENDERS }, sender), prober()]);
    try {
      await sleep(BEFORE_CUT_MS);
      await proxy.cut();
      cutAt = Date.now();
      await sleep(CUT_MS / 2);
      // Metrics stay scrapeable during the outage; the queue depth is left out and says so.
      const metrics = await request(h.url, undefined, 'GET', '/metrics');
      assert.equal(metrics.status, 200);
      assert.match(metrics.text, /^herald_store_up 0$/m);
      assert.match(metrics.text, /^herald_process_cpu_user_seconds_total /m);
      await sleep(CUT_MS / 2);
      restoreAt = Date.now();
      await proxy.restore();
      // Load goes on until sends have succeeded for a while after the restore (bounded).
      await waitFor(() => {
        const at = recoveredAt();
        return (at !== undefined && Date.now() > Math.max(at, restoreAt + AFTER_RESTORE_MS)) || Date.now() > restoreAt + RECOVERY_BOUND_MS;
      }, RECOVERY_BOUND_MS + 2_000, 'the load to finish');
    } finally {
      stop = true;
      await load;
    }

    const accepted = outcomes.filter((o) => o.status === 202);
    const refused = outcomes.filter((o) => o.status === 503);
    const counts = Object.entries(Object.groupBy(outcomes, (o) => String(o.status))).map(([s, l]) => `${s}: ${l!.length}`).join(', ');
    console.log(`outage: ${outcomes.length} sends (${counts}); cut ${CUT_MS}ms; recovered ${recoveredAt()! - restoreAt}ms after the restore`);

    const failed = outcomes.filter((o) => o.status !== 202 && o.status !== 503);
    assert.deepEqual(failed.slice(0, 5), [], `${failed.length} answers were neither 202 nor 503`);
    for (const o of refused) {
      assert.equal(o.code, 'unavailable');
      assert.match(o.contentType ?? '', /^application\/problem\+json/);
      assert.match(o.retryAfter ?? '', /^[1-9]\d*$/, 'a 503 carries Retry-After in seconds');
    }
    const duringCut = outcomes.filter((o) => o.start >= cutAt && o.end <= restoreAt);
    assert.ok(duringCut.length >= SENDERS, `only ${duringCut.length} sends ran entirely during the cut`);
    assert.deepEqual(duringCut.filter((o) => o.status !== 503), [], 'every send made during the cut is refused');
    assert.ok(accepted.some((o) => o.end < cutAt), 'sends succeeded before the cut');
    const recovered = recoveredAt();
    assert.ok(recovered !== undefined && recovered - restoreAt <= RECOVERY_BOUND_MS, `sends succeed again within ${RECOVERY_BOUND_MS}ms of the restore`);

    const probedDuringCut = health.filter((p) => p.start >= cutAt && p.end <= restoreAt);
    assert.ok(probedDuringCut.length > 0, 'readiness was probed during the cut');
    for (const p of probedDuringCut) assert.deepEqual([p.status, p.state], [503, 'store_unavailable']);
    assert.ok(health.some((p) => p.start > restoreAt && p.status === 200), 'ready again after the restore');

    // Every 202 is stored: checked directly, not through the proxy.
    const ids = accepted.map((o) => o.notificationId!);
    const stored = await withClient(async (c) => (await c.query<{ n: string }>('SELECT count(*) AS n FROM notifications WHERE id = ANY($1)', [ids])).rows[0]!.n, db.url);
    assert.equal(Number(stored), ids.length, 'every 202 is in the database');

    // …and delivered: each delivery id reaches the receiver (at least once).
    const seen = () => new Set(rx.received.map((r) => String(r.headers['webhook-id'])));
    await waitFor(() => accepted.every((o) => seen().has(o.deliveryId!)), 30_000, 'every accepted delivery at the receiver').catch((err: Error) => {
      const missing = accepted.filter((o) => !seen().has(o.deliveryId!)).map((o) => o.deliveryId);
      throw new Error(`${err.message}: ${missing.length} of ${accepted.length} missing, e.g. ${missing.slice(0, 5).join(', ')}`);
    });
    const duplicates = rx.received.length - seen().size;
    console.log(`outage: ${accepted.length} deliveries received, ${duplicates} duplicate webhook-ids (at-least-once)`);

    // The outcomes recorded once the database was back: nothing stays in flight.
    await waitFor(async () => {
      const rows = await withClient(async (c) => (await c.query<{ n: string }>(`SELECT count(*) AS n FROM deliveries WHERE status <> 'sent'`)).rows, db.url);
      return Number(rows[0]!.n) === 0;
    }, 30_000, 'every delivery recorded as sent');
  });

  it('fails fast when PostgreSQL stops answering, and recovers when it answers again', async () => {
    // The key is cached by this send, so what follows measures the store's own timeouts.
    const warm = await send('before the blackhole');
    assert.equal(warm.status, 202);

    proxy.blackhole();
    try {
      const [sent, ready] = await Promise.all([
        send('into the blackhole'),
        (async () => {
          const start = Date.now();
          const r = await request(h.url, undefined, 'GET', '/healthz/ready');
          return { ms: Date.now() - start, status: r.status, state: r.body.status as string };
        })(),
      ]);
      console.log(`blackhole: send answered ${sent.status} after ${sent.end - sent.start}ms, ready ${ready.status} after ${ready.ms}ms`);
      assert.equal(sent.status, 503);
      assert.equal(sent.code, 'unavailable');
      assert.ok(sent.retryAfter);
      assert.ok(sent.end - sent.start < 8_000, `a send answered within 8s, not ${sent.end - sent.start}ms`); // hot-path timeout 5s
      assert.deepEqual([ready.status, ready.state], [503, 'store_unavailable']);
      assert.ok(ready.ms < 4_500, `readiness answered within 4.5s, not ${ready.ms}ms`); // ping timeout 3s
    } finally {
      await proxy.restore();
    }

    const restoredAt = Date.now();
    const ok = await waitFor(async () => {
      const o = await send('after the blackhole');
      return o.status === 202 ? o : (await sleep(100), undefined);
    }, RECOVERY_BOUND_MS, 'a send to succeed after the blackhole');
    assert.ok(ok.end - restoredAt <= RECOVERY_BOUND_MS);
    await waitFor(async () => (await request(h.url, undefined, 'GET', '/healthz/ready')).status === 200, RECOVERY_BOUND_MS, 'ready after the blackhole');
    await waitFor(() => rx.received.some((r) => r.headers['webhook-id'] === ok.deliveryId), 15_000, 'the send after the blackhole delivered');
  });
});
