// Scale-out proof on PostgreSQL: three real Herald processes share one database (a fresh schema):
// A and B run `--role api,worker`, C runs `--role worker`. 10,000 notifications are sent through
// A and B while all three deliver them to a webhook receiver in this process; C is SIGKILLed
// midway through delivery, with webhooks of its own in flight.
//
// Asserted: every delivery of every 202 reaches the receiver (signed, verifiable with the secret
// any node stored) and is recorded `sent`; the leases C held when it died are taken over by A and
// B, and only once they have expired (HERALD_LEASE_TIME 10s); duplicates at the receiver (a
// webhook-id seen more than once) are counted, printed and under 0.1% of the deliveries.
//
// Why C runs with HERALD_CONCURRENCY=webhook:4: a SIGKILL re-sends every webhook the dead worker
// had sent but not yet recorded (at-least-once; receivers de-duplicate by webhook-id), so a kill
// costs about that worker's concurrency in duplicates: up to 128 with the default, 1.3% of
// 10,000. With 4 the kill accounts for about 4, and the 0.1% bar (under 10) catches duplicates
// from anything else: two workers holding one row, a lease expiring under a running attempt, an
// attempt that timed out although the receiver answered, lost outcomes.
//
// Making the kill land mid-delivery: for a moment the receiver holds every response for
// STALL_MS, and C is killed as soon as the database shows it holding a lease. A lease taken in
// that moment cannot be released before its response comes back, so C dies with work in flight.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { tempDir, waitFor } from '../helpers/herald.ts';
import { freshSchema, withClient, type TestSchema } from '../helpers/postgres.ts';
import { spawnHerald, type HeraldProcess } from '../helpers/process.ts';
import { startReceiver, type Receiver, type Responder } from '../helpers/receiver.ts';

const NOTIFICATIONS = 10_000;
const RECIPIENTS = 40;
/** POSTs in flight from this test, spread over A and B. More mostly adds latency on 2 cores. */
const SEND_CONCURRENCY = 16;
/** C is killed once this many distinct deliveries have arrived. */
const KILL_AFTER = NOTIFICATIONS / 2;
const C_CONCURRENCY = 4;
const STALL_MS = 500;
const DUPLICATE_BAR = 0.001;
const LEASE_MS = 10_000;
/** Sent and delivered first, so that the rest meets warm processes and connections. */
const WARM_UP = 100;
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const KEY = 'hk_test_cluster_0123456789abcdef';

const ENV = {
  HERALD_ALLOW_NETWORKS: '127.0.0.0/8',
  HERALD_LOG_LEVEL: 'warn',
  // The lease: short, so that A and B take over C's deliveries while the sending still goes on
  // (it costs the test no time), and at least twice the attempt timeout (a config check). The
  // timeout: this process is both the load generator and the receiver, and on 2 busy cores it has
  // been seen to take a webhook's connection 1.5s (at start-up) and 3s (machine under other load)
  // late; a limit below that turns an answered webhook into a retry, i.e. a duplicate.
  HERALD_LEASE_TIME: `${LEASE_MS}ms`,
  HERALD_WEBHOOK_TIMEOUT: '5s',
  HERALD_SMTP_TIMEOUT: '5s', // counted by the lease check even with email off
  HERALD_POLL_INTERVAL: '200ms',
  // More patient than the harness default (3 retries within 600ms), so a slow moment on a busy
  // machine does not exhaust a delivery.
  HERALD_RETRY_SCHEDULE: '250ms,500ms,1s,2s,4s,8s',
};

describe('cluster: two api+worker nodes and a worker-only node on PostgreSQL', () => {
  let db: TestSchema | undefined;
  let rx: Receiver | undefined;
  const nodes: HeraldProcess[] = [];
  const dirs: string[] = [];
  let a: HeraldProcess, b: HeraldProcess, c: HeraldProcess;

  /** Runs SQL in the test schema. */
  const query = <R>(text: string, values: unknown[] = []): Promise<R[]> =>
    withClient(async (cl) => (await cl.query(text, values)).rows as R[], db!.url);

  before(async () => {
    db = await freshSchema();
    rx = await startReceiver();
    const start = (args: string[], env: Record<string, string> = {}) => {
      const dataDir = tempDir('herald-cluster-');
      dirs.push(dataDir);
      // Kept as soon as it is ready, so that `after` kills it whatever fails next.
      return spawnHerald({ dataDir, key: KEY, env: { ...ENV, DATABASE_URL: db!.url, ...env }, args, readyTimeoutMs: 60_000 }).then((p) => {
        nodes.push(p);
        return p;
      });
    };
    // Started together, as a deployment starts them: they migrate and bootstrap concurrently.
    // All settled before going on, so that `after` finds every process that started.
    const started = await Promise.allSettled([
      start(['--role', 'api,worker']),
      start(['--role', 'api,worker']),
      start(['--role', 'worker'], { HERALD_CONCURRENCY: `webhook:${C_CONCURRENCY}` }),
    ]);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    [a, b, c] = started.map((r) => (r as PromiseFulfilledResult<HeraldProcess>).value) as [HeraldProcess, HeraldProcess, HeraldProcess];
  });

  after(async () => {
    for (const n of nodes) n.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.exited(10_000).catch(() => undefined)));
    await rx?.close();
    await db?.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('each node reports its role, version and worker id in /healthz/ready and /metrics', async () => {
    const expected: [HeraldProcess, string][] = [[a, 'api,worker'], [b, 'api,worker'], [c, 'worker']];
    const ids = new Set<string>();
    for (const [node, role] of expected) {
      const ready = await fetch(`${node.url}/healthz/ready`);
      assert.equal(ready.status, 200);
      const h = (await ready.json()) as { status: string; role: string; version: string; worker_id: string; store: string };
      assert.equal(h.status, 'ok');
      assert.equal(h.role, role);
      assert.equal(h.version, VERSION);
      assert.equal(h.store, 'postgres');
      assert.match(h.worker_id, new RegExp(`^[^:]+:${node.child.pid}:[0-9a-f]{8}$`), 'worker id is host:pid:random');
      ids.add(h.worker_id);

      const metrics = await (await fetch(`${node.url}/metrics`)).text();
      const info = metrics.split('\n').find((l) => l.startsWith('herald_info{'));
      assert.ok(info, 'herald_info is exported');
      assert.match(info, new RegExp(`role="${role}"`));
      assert.match(info, new RegExp(`version="${VERSION.replace(/\./g, '\\.')}"`));
      assert.match(info, new RegExp(`worker_id="${h.worker_id}"`));
      assert.match(info, / 1$/);
    }
    assert.equal(ids.size, 3, 'every node has its own worker id');
    // The worker-only node serves no API.
    assert.equal((await c.api('GET', '/v1/recipients')).status, 404);
  });

  it('delivers every accepted notification after a worker is SIGKILLed mid-delivery, its leases taken over', async (t) => {
    const receiver = rx!;
    let ended = false;
    t.after(() => {
      ended = true;
    });
    const workerId = async (n: HeraldProcess) => ((await (await fetch(`${n.url}/healthz/ready`)).json()) as { worker_id: string }).worker_id;
    const killedId = await workerId(c);

    // Recipients, each with a webhook on the local receiver; their secrets were sealed by A or B.
    const recipients = Array.from({ length: RECIPIENTS }, (_, i) => `r${i}`);
    const secrets = new Map<string, string>();
    await Promise.all(
      recipients.map(async (id, i) => {
        const put = await (i % 2 ? a : b).api('PUT', `/v1/recipients/${id}`, { webhook: { url: `${receiver.url}/hook/${id}` } });
        assert.equal(put.status, 201, put.text);
        secrets.set(id, put.body.webhook.secret);
      }),
    );

    // Arrivals by webhook-id (= delivery id), in order.
    const arrivals = new Map<string, number[]>();
    let seen = 0;
    const record = () => {
      for (; seen < receiver.received.length; seen++) {
        const r = receiver.received[seen]!;
        const id = String(r.headers['webhook-id']);
        const list = arrivals.get(id);
        if (list) list.push(r.at);
        else arrivals.set(id, [r.at]);
      }
      return arrivals.size;
    };

    // The kill, concurrent with the sending below.
    const answer: Responder = () => ({ status: 200 });
    let killedAt = 0;
    let sentByC = 0;
    let stranded: { id: string; lease_until: number }[] = [];
    const killed = (async () => {
      await waitFor(() => {
        if (ended) throw new Error('the test ended before the kill');
        return record() >= KILL_AFTER;
      }, 120_000, `${KILL_AFTER} deliveries before the kill`);
      // C has been delivering (the receiver cannot tell the nodes apart; C's own metrics can).
      const m = /^herald_deliveries_finished_total\{[^}]*status="sent"[^}]*\} (\d+)/m.exec(await (await fetch(`${c.url}/metrics`)).text());
      sentByC = Number(m?.[1] ?? 0);
      receiver.respond = () => ({ status: 200, delayMs: STALL_MS });
      try {
        // Leases C took before the stall may still be settling; a later one is held by the stall.
        await new Promise((r) => setTimeout(r, 100));
        await waitFor(async () => {
          const [r] = await query<{ n: string }>(`SELECT count(*) AS n FROM deliveries WHERE status = 'sending' AND lease_owner = $1`, [killedId]);
          return r!.n !== '0';
        }, 10_000, 'the worker-only node holding a lease');
        c.kill('SIGKILL');
        killedAt = Date.now();
        // What C held when it died: nobody else can settle these until they expire.
        stranded = await query<{ id: string; lease_until: number }>(
          `SELECT id, run_at::float8 AS lease_until FROM deliveries WHERE status = 'sending' AND lease_owner = $1`,
          [killedId],
        );
      } finally {
        receiver.respond = answer;
      }
      const exit = await c.exited(10_000);
      assert.equal(exit.signal, 'SIGKILL');
    })();
    killed.catch(() => undefined); // awaited below; this only keeps an early failure from counting as unhandled

    // 10,000 single-recipient notifications, alternating between the API nodes: the first WARM_UP,
    // then (once those have arrived) the rest.
    const deliveryIds: string[] = [];
    const failures: string[] = [];
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const sendStarted = Date.now();
    let next = 0;
    const sendUpTo = (end: number) => Promise.all(
      Array.from({ length: SEND_CONCURRENCY }, async () => {
        while (next < end) {
          const i = next++;
          const r = await (i % 2 ? a : b).api('POST', '/v1/notifications', { to: recipients[i % RECIPIENTS], title: `n${i}`, body: 'cluster' });
          if (r.status !== 202) {
            failures.push(`${r.status} ${r.text.slice(0, 200)}`);
            continue;
          }
          for (const d of r.body.deliveries as { id: string; status: string }[]) {
            assert.equal(d.status, 'pending');
            deliveryIds.push(d.id);
          }
        }
      }),
    );
    await sendUpTo(WARM_UP);
    await waitFor(() => record() >= WARM_UP, 30_000, 'the warm-up deliveries');
    await sendUpTo(NOTIFICATIONS);
    const sendMs = Date.now() - sendStarted;
    assert.deepEqual(failures.slice(0, 5), [], `every send is accepted (${failures.length} were not)`);
    assert.equal(deliveryIds.length, NOTIFICATIONS);
    await killed;

    // Every delivery of every 202 arrives...
    const want = new Set(deliveryIds);
    try {
      await waitFor(() => {
        record();
        for (const id of want) if (arrivals.has(id)) want.delete(id);
        return want.size === 0;
      }, 90_000, 'every delivery at the receiver');
    } catch (err) {
      const rows = await query(`SELECT id, status, attempts, lease_owner, run_at, last_error FROM deliveries WHERE id = ANY($1) LIMIT 10`, [[...want]]);
      assert.fail(`${want.size} of ${NOTIFICATIONS} deliveries never arrived (${(err as Error).message}); e.g. ${JSON.stringify(rows)}`);
    }
    const deliveredMs = Date.now() - sendStarted;
    // ... and is recorded as sent (the last outcomes may still be committing).
    try {
      await waitFor(async () => {
        const [r] = await query<{ n: string }>(`SELECT count(*) AS n FROM deliveries WHERE status <> 'sent'`);
        return r!.n === '0';
      }, 30_000, 'every delivery recorded as sent');
    } catch (err) {
      const byStatus = await query(`SELECT status, lease_owner, count(*) AS n FROM deliveries WHERE status <> 'sent' GROUP BY 1, 2`);
      const rows = await query(`SELECT id, status, attempts, lease_owner, run_at, last_error FROM deliveries WHERE status <> 'sent' LIMIT 10`);
      assert.fail(`${(err as Error).message} (killed ${killedId} at ${killedAt}): ${JSON.stringify(byStatus)}; e.g. ${JSON.stringify(rows)}`);
    }
    record();

    // The duplicates, and where they came from.
    const duplicated = [...arrivals].filter(([, at]) => at.length > 1);
    const extra = duplicated.reduce((sum, [, at]) => sum + at.length - 1, 0);
    const strandedIds = new Set(stranded.map((s) => s.id));
    const fromKill = duplicated.filter(([id]) => strandedIds.has(id)).length;
    const unsuccessful = await query<{ error_class: string; n: string }>(
      `SELECT coalesce(error_class, outcome) AS error_class, count(*) AS n FROM attempt_log WHERE outcome <> 'success' GROUP BY 1 ORDER BY 2 DESC`,
    );
    console.log(
      `[cluster] ${NOTIFICATIONS} notifications accepted in ${(sendMs / 1000).toFixed(1)}s through 2 API nodes, all delivered by ` +
        `${(deliveredMs / 1000).toFixed(1)}s; C (webhook:${C_CONCURRENCY}) had sent ${sentByC} when SIGKILLed at ${KILL_AFTER} arrivals, ` +
        `holding ${stranded.length} leases; receiver: ${receiver.received.length} requests for ${arrivals.size} deliveries, ` +
        `${duplicated.length} duplicated (${((100 * duplicated.length) / NOTIFICATIONS).toFixed(2)}%, ${extra} extra requests, ` +
        `${fromKill} of them C's in-flight webhooks); unsuccessful attempts: ${JSON.stringify(unsuccessful)}; ` +
        `this process's event loop delay max ${(lag.max / 1e6).toFixed(0)}ms`,
    );
    lag.disable();
    // Any other duplicate, explained by its arrivals and attempt log (ms since the first send).
    const others = duplicated.filter(([id]) => !strandedIds.has(id)).slice(0, 10).map(([id]) => id);
    if (others.length > 0) {
      const log = await query<{ delivery_id: string; attempt: number; started_at: string; duration_ms: number; outcome: string; error: string | null }>(
        `SELECT delivery_id, attempt, started_at, duration_ms, outcome, error FROM attempt_log WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt`,
        [others],
      );
      console.log(`[cluster] C killed at ${killedAt - sendStarted}ms; other duplicates:`);
      for (const id of others) {
        const attempts = log.filter((x) => x.delivery_id === id).map((x) => `#${x.attempt} at ${Number(x.started_at) - sendStarted} took ${x.duration_ms}ms: ${x.outcome}${x.error ? ` (${x.error})` : ''}`);
        console.log(`[cluster]   ${id} arrived at ${arrivals.get(id)!.map((t) => t - sendStarted).join(', ')}; attempts ${attempts.join('; ')}`);
      }
    }

    assert.equal(arrivals.size, NOTIFICATIONS, 'nothing arrived that was not sent');
    assert.ok(duplicated.length < NOTIFICATIONS * DUPLICATE_BAR, `${duplicated.length} duplicates must be under ${DUPLICATE_BAR * 100}% of ${NOTIFICATIONS}`);

    // Every webhook is signed with its recipient's secret (sealed by A or B, opened by any node).
    for (const r of receiver.received) {
      const recipient = r.path.slice('/hook/'.length);
      const payload = receiver.verify(r, secrets.get(recipient)!);
      assert.equal(payload.delivery_id, r.headers['webhook-id']);
      assert.equal(payload.recipient, recipient);
    }

    // C was delivering when it died, and A and B took over what it held, after its leases expired.
    assert.ok(sentByC > 0, 'the worker-only node delivered before it was killed');
    assert.ok(stranded.length > 0, 'the killed worker held leases when it died');
    const taken = await query<{ id: string; status: string; attempts: number; final_started: number; logged: string }>(
      `SELECT d.id, d.status, d.attempts,
              (SELECT a.started_at::float8 FROM attempt_log a WHERE a.delivery_id = d.id AND a.attempt = d.attempts) AS final_started,
              (SELECT count(*) FROM attempt_log a WHERE a.delivery_id = d.id) AS logged
         FROM deliveries d WHERE d.id = ANY($1)`,
      [[...strandedIds]],
    );
    assert.equal(taken.length, stranded.length);
    for (const d of taken) {
      const lease = stranded.find((s) => s.id === d.id)!;
      // `sent` can only have been recorded by the owner of the lease of the time (settle checks
      // it), and C was dead: A or B claimed it again (attempts + 1) and delivered it, and not
      // before C's lease ran out.
      assert.equal(d.status, 'sent', `stranded ${d.id}`);
      assert.ok(d.attempts >= 2, `stranded ${d.id} was claimed again (attempts ${d.attempts})`);
      assert.ok(d.final_started >= lease.lease_until, `stranded ${d.id}: taken over at ${d.final_started}, before C's lease expired at ${lease.lease_until}`);
      assert.ok(d.final_started > killedAt);
      // C's own attempt was never recorded (it died before its outcome was written).
      assert.equal(Number(d.logged), d.attempts - 1, `stranded ${d.id}: attempts logged`);
      assert.ok(arrivals.get(d.id)!.some((at) => at >= lease.lease_until), `stranded ${d.id} arrived after C's lease expired`);
    }
    // Nothing is left leased to the dead worker, and A and B are healthy.
    const [left] = await query<{ n: string }>(`SELECT count(*) AS n FROM deliveries WHERE lease_owner = $1`, [killedId]);
    assert.equal(left!.n, '0');
    for (const n of [a, b]) assert.equal((await fetch(`${n.url}/healthz/ready`)).status, 200);
  });
});
