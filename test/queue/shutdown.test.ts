// Graceful shutdown: SIGTERM under load exits 0 within the grace period; an attempt in flight is
// either finished and recorded or its lease released without counting it; requests arriving
// meanwhile are refused (503 problem or connection refused), never accepted and lost; after a
// restart everything accepted is delivered. On each store. The grace period is checked from both
// sides: an attempt that outlasts it holds the exit back for the grace and no longer; one that
// finishes within it lets the process exit when it is done, not when the grace ends.

import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describeOnStores, postgresRedisEnv, tempDir, waitFor } from '../helpers/herald.ts';
import { spawnHerald, type HeraldProcess } from '../helpers/process.ts';
import { startGate, startReceiver, type Receiver } from '../helpers/receiver.ts';

const SEND = '/v1/notifications';

describeOnStores('shutdown: SIGTERM', (store) => {
  const cleanup: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  const setup = async (slowMs: number) => {
    // /slow answers after slowMs; everything else at once.
    const rx: Receiver = await startReceiver((req) => (req.path === '/slow' && slowMs > 0 ? { status: 200, delayMs: slowMs } : { status: 200 }));
    cleanup.push(() => rx.close());
    const dataDir = tempDir('herald-shutdown-');
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const pg = store === 'postgres' ? await postgresRedisEnv() : undefined;
    if (pg) cleanup.push(() => pg.db.drop());
    return { rx, dataDir, storeEnv: pg?.env ?? {} };
  };

  const spawn = async (dataDir: string, env: Record<string, string>, key?: string, args?: string[]) => {
    const p = await spawnHerald({ dataDir, env, ...(key && { key }), ...(args && { args }) });
    cleanup.push(() => p.kill('SIGKILL'));
    return p;
  };

  const deliveryOf = async (p: HeraldProcess, notificationId: string) => {
    const n = await p.api('GET', `${SEND}/${notificationId}`);
    assert.equal(n.status, 200, n.text);
    return n.body.deliveries[0];
  };

  it('under load, with an attempt that outlasts the grace: exit 0, lease released, nothing accepted is lost', async (t) => {
    const GRACE_MS = 5000;
    const { rx, dataDir, storeEnv } = await setup(0);
    // The slow receiver holds its request until released: it cannot finish within the grace.
    const gate = await startGate();
    cleanup.push(() => gate.close());
    const env = { HERALD_SHUTDOWN_GRACE: `${GRACE_MS}ms`, HERALD_WEBHOOK_TIMEOUT: '90s', HERALD_LEASE_TIME: '10m', ...storeEnv };
    const first = await spawn(dataDir, env);
    for (const id of ['r0', 'r1', 'r2']) assert.equal((await first.api('PUT', `/v1/recipients/${id}`, { webhook: { url: `${rx.url}/${id}` } })).status, 201);
    assert.equal((await first.api('PUT', '/v1/recipients/slow', { webhook: { url: `${gate.url}/slow` } })).status, 201);

    const slow = await first.api('POST', SEND, { to: 'slow', title: 'slow receiver' });
    assert.equal(slow.status, 202);
    const slowDelivery: string = slow.body.deliveries[0].id;
    await waitFor(() => gate.arrived.includes(slowDelivery), 10_000, 'the slow attempt to start');

    // Load from 8 senders, through SIGTERM, until the server is gone.
    const accepted = new Set<string>();
    const acceptedNotifications = new Set<string>();
    const tally = { accepted: 0, unavailable: 0, refused: 0 };
    let running = true;
    let seq = 0;
    const failures: unknown[] = [];
    const senderLoop = async () => {
      while (running) {
        const i = seq++;
        let r;
        try {
          r = await first.api('POST', SEND, { to: [`r${i % 3}`, `r${(i + 1) % 3}`], title: `load ${i}` });
        } catch {
          tally.refused++; // connection refused or closed: the request is not required to exist
          await new Promise((res) => setTimeout(res, 5));
          continue;
        }
        if (r.status === 202) {
          tally.accepted++;
          acceptedNotifications.add(r.body.id);
          for (const d of r.body.deliveries) accepted.add(d.id);
        } else {
          assert.equal(r.status, 503, `only 202 or 503 while shutting down: ${r.status} ${r.text}`);
          assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
          assert.equal(r.body.code, 'unavailable');
          tally.unavailable++;
        }
      }
    };
    // A failed check stops the load; it is reported once every sender has stopped.
    const sender = () =>
      senderLoop().catch((err: unknown) => {
        failures.push(err);
        running = false;
      });
    const senders = Array.from({ length: 8 }, sender);
    await waitFor(() => tally.accepted >= 50 || !running, 20_000, 'load');
    if (failures.length) throw failures[0];

    const termAt = Date.now();
    first.kill('SIGTERM');
    const exit = await first.exited(60_000);
    const took = Date.now() - termAt;
    // The held attempt cannot finish: the process waits the whole grace for it, then aborts it
    // (well before its 90 s webhook timeout). Only the lower bound is tight; the upper one allows
    // for a busy machine.
    assert.ok(took >= GRACE_MS - 50, `exited ${took} ms after SIGTERM, before the ${GRACE_MS} ms grace was over`);
    assert.ok(took < 45_000, `exited ${took} ms after SIGTERM: the grace (${GRACE_MS} ms), not the webhook timeout, must end the wait`);
    running = false;
    await Promise.all(senders);
    if (failures.length) throw failures[0];
    assert.deepEqual(exit, { code: 0, signal: null }, first.output().slice(-3000));
    assert.ok(first.logs().some((l) => l.msg === 'herald stopped'));

    // Read the state as the process left it, with an API-only process (no workers to change it).
    const inspect = await spawn(dataDir, env, first.key, ['--role', 'api']);
    const d = await deliveryOf(inspect, slow.body.id);
    assert.equal(d.status, 'pending', 'the unfinished attempt was released');
    assert.equal(d.attempts, 0, 'the released attempt is not counted');
    assert.equal(d.attempt_log.length, 0);
    for (const id of acceptedNotifications) assert.equal((await inspect.api('GET', `${SEND}/${id}`)).status, 200, 'every 202 was stored');
    inspect.kill('SIGTERM');
    assert.equal((await inspect.exited(15_000)).code, 0);

    // Restart: everything accepted is delivered, the slow one included (it answers at once now).
    gate.release();
    const second = await spawn(dataDir, env, first.key);
    await waitFor(() => {
      const got = new Set(rx.received.map((r) => String(r.headers['webhook-id'])));
      return [...accepted].every((id) => got.has(id));
    }, 30_000, 'every accepted delivery to arrive');
    const done = await waitFor(async () => {
      const x = await deliveryOf(second, slow.body.id);
      return x.status === 'sent' ? x : undefined;
    }, 10_000, 'the slow delivery to be sent');
    assert.equal(done.attempts, 1);
    assert.equal(done.attempt_log.length, 1);
    assert.equal(gate.arrived.filter((id) => id === slowDelivery).length, 2, 'the aborted attempt, then the real one');
    t.diagnostic(`exit after SIGTERM in ${took} ms (grace ${GRACE_MS} ms); during the load: ${tally.accepted} accepted, ${tally.unavailable} answered 503, ${tally.refused} refused`);

    second.kill('SIGTERM');
    assert.equal((await second.exited(15_000)).code, 0);
  });

  it('an attempt that finishes within the grace is completed and recorded', async () => {
    const SLOW_MS = 1500;
    const GRACE_MS = 60_000;
    const { rx, dataDir, storeEnv } = await setup(SLOW_MS);
    const env = { HERALD_SHUTDOWN_GRACE: `${GRACE_MS}ms`, HERALD_LEASE_TIME: '10m', ...storeEnv };
    const first = await spawn(dataDir, env);
    assert.equal((await first.api('PUT', '/v1/recipients/slow', { webhook: { url: `${rx.url}/slow` } })).status, 201);
    const slow = await first.api('POST', SEND, { to: 'slow', title: 'finishes in time' });
    assert.equal(slow.status, 202);
    await waitFor(() => rx.received.length === 1, 10_000, 'the slow attempt to start');

    const termAt = Date.now();
    first.kill('SIGTERM');
    const exit = await first.exited(GRACE_MS + 30_000);
    const took = Date.now() - termAt;
    assert.deepEqual(exit, { code: 0, signal: null }, first.output().slice(-3000));
    // Done when the attempt is done: far from the 60 s grace even on a busy machine.
    assert.ok(took < GRACE_MS / 2, `exited ${took} ms after SIGTERM: it waited for the grace, not for the attempt`);

    const inspect = await spawn(dataDir, env, first.key, ['--role', 'api']);
    const d = await deliveryOf(inspect, slow.body.id);
    assert.equal(d.status, 'sent');
    assert.equal(d.attempts, 1);
    assert.equal(d.attempt_log.length, 1);
    assert.equal(d.attempt_log[0].outcome, 'success');
    assert.ok(d.attempt_log[0].duration_ms >= 1000, 'the attempt ran to the end');
    inspect.kill('SIGTERM');
    assert.equal((await inspect.exited(15_000)).code, 0);
    assert.equal(rx.received.length, 1, 'delivered once');
  });
});
