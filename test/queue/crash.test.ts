// Crash safety, on each store: SIGKILL the real server in the middle of a send load, start it again
// on the same data (data dir or PostgreSQL schema), and every delivery of every 202 arrives;
// duplicates (at-least-once) are rare. One delivery is held by a receiver that does not answer, so
// a lease is provably held at the kill and the restart must release it.

import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describeOnStores, postgresRedisEnv, tempDir, waitFor } from '../helpers/herald.ts';
import { withClient } from '../helpers/postgres.ts';
import { spawnHerald, type HeraldProcess } from '../helpers/process.ts';
import { startGate, startReceiver, type Receiver } from '../helpers/receiver.ts';

const RECIPIENTS = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5'];
const IN_FLIGHT = 16;

describeOnStores('crash: SIGKILL under load', (store) => {
  const cleanup: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('delivers every accepted delivery after a restart, with rare duplicates', async (t) => {
    const rx: Receiver = await startReceiver();
    cleanup.push(() => rx.close());
    const dataDir = tempDir('herald-crash-');
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));

    const pg = store === 'postgres' ? await postgresRedisEnv() : undefined;
    if (pg) cleanup.push(() => pg.db.drop());
    const gate = await startGate();
    cleanup.push(() => gate.close());

    // A long lease: after the restart, only releasing the dead process's leases lets its
    // in-flight deliveries resume within this test's time.
    const env = { HERALD_LEASE_TIME: '10m', ...pg?.env };
    const first: HeraldProcess = await spawnHerald({ dataDir, env });
    cleanup.push(() => first.kill('SIGKILL'));
    for (const id of RECIPIENTS) assert.equal((await first.api('PUT', `/v1/recipients/${id}`, { webhook: { url: `${rx.url}/${id}` } })).status, 201);
    // The gate holds this attempt until released: its lease is held at the kill, whatever the timing.
    assert.equal((await first.api('PUT', '/v1/recipients/held', { webhook: { url: `${gate.url}/held` } })).status, 201);
    const held = await first.api('POST', '/v1/notifications', { to: 'held', title: 'held at the kill' });
    assert.equal(held.status, 202, held.text);
    const heldDelivery: string = held.body.deliveries[0].id;
    await waitFor(() => gate.arrived.includes(heldDelivery), 20_000, 'the held attempt to start');

    // Load: IN_FLIGHT senders in a loop, each send to 1–3 recipients.
    const acceptedDeliveries = new Set<string>();
    const acceptedNotifications = new Set<string>();
    const outcomes = { accepted: 0, otherStatus: 0, networkError: 0 };
    let running = true;
    let seq = 0;
    const failures: unknown[] = [];
    const senderLoop = async () => {
      while (running) {
        const i = seq++;
        const to = RECIPIENTS.filter((_, k) => (i + k) % 3 === 0 || k === i % RECIPIENTS.length).slice(0, 3);
        try {
          const r = await first.api('POST', '/v1/notifications', { to, title: `load ${i}`, data: { i } });
          if (r.status === 202) {
            outcomes.accepted++;
            acceptedNotifications.add(r.body.id);
            for (const d of r.body.deliveries) acceptedDeliveries.add(d.id);
          } else {
            outcomes.otherStatus++;
            assert.fail(`unexpected ${r.status} before the kill: ${r.text}`);
          }
        } catch (err) {
          if ((err as Error).name === 'AssertionError') throw err;
          // The connection died with the server: this request is not required to exist.
          outcomes.networkError++;
        }
      }
    };
    // A failed check stops the load; it is reported once every sender has stopped.
    const sender = () =>
      senderLoop().catch((err: unknown) => {
        failures.push(err);
        running = false;
      });
    const senders = Array.from({ length: IN_FLIGHT }, sender);

    // Kill after ~2.5 s of load, once deliveries are arriving (so some are in flight).
    await new Promise((r) => setTimeout(r, 2500));
    await waitFor(() => rx.received.length > 0, 10_000, 'deliveries to start');
    first.kill('SIGKILL');
    const exit = await first.exited(10_000);
    assert.equal(exit.signal, 'SIGKILL');
    const receivedBeforeKill = new Set(rx.received.map((r) => String(r.headers['webhook-id']))).size;
    running = false;
    await Promise.all(senders);
    if (failures.length) throw failures[0];
    assert.ok(outcomes.accepted > 0);

    // What the dead process left behind, read straight from its database.
    type Row = { id: string; status: string; lease_owner: string | null };
    let rows: Row[];
    if (pg) {
      rows = await withClient(async (c) => (await c.query<Row>(`SELECT id, status, lease_owner FROM ${pg.db.schema}.deliveries`)).rows);
    } else {
      const db = new BetterSqlite3(join(dataDir, 'herald.db'));
      rows = db.prepare('SELECT id, status, lease_owner FROM deliveries').all() as Row[];
      db.close();
    }
    const left: Record<string, number> = {};
    for (const r of rows) left[r.status] = (left[r.status] ?? 0) + 1;
    const storedIds = new Set(rows.map((r) => r.id));
    const leasedAtCrash = new Set(rows.filter((r) => r.status === 'sending').map((r) => r.id));
    for (const r of rows.filter((x) => x.status === 'sending')) assert.match(r.lease_owner ?? '', new RegExp(`:${first.child.pid}:`), 'leases belong to the dead process');
    for (const id of acceptedDeliveries) assert.ok(storedIds.has(id), `delivery ${id} of a 202 was durably stored`);
    assert.ok(leasedAtCrash.has(heldDelivery), `the held delivery was leased (sending) at the kill; left: ${JSON.stringify(left)}`);
    acceptedDeliveries.add(heldDelivery);
    acceptedNotifications.add(held.body.id);
    gate.release(); // the attempt after the restart is answered at once

    const second = await spawnHerald({ dataDir, key: first.key, env });
    cleanup.push(() => second.kill('SIGKILL'));

    // Every delivery of every 202 arrives.
    const arrivedIds = () => [...rx.received.map((r) => String(r.headers['webhook-id'])), ...gate.arrived];
    await waitFor(() => {
      const got = new Set(arrivedIds());
      for (const id of acceptedDeliveries) if (!got.has(id)) return false;
      return true;
    }, 60_000, 'every accepted delivery to arrive after the restart');

    // And they settle as sent.
    await waitFor(async () => {
      for (const id of acceptedNotifications) {
        const n = await second.api('GET', `/v1/notifications/${id}`);
        if (n.body.status !== 'sent') return false;
      }
      return true;
    }, 60_000, 'every accepted notification to be sent');

    // Deliveries that arrived without their 202 (the response was lost in the crash) exist in the
    // store: nothing arrives that was not stored.
    const perId = new Map<string, number>();
    for (const id of arrivedIds()) perId.set(id, (perId.get(id) ?? 0) + 1);
    for (const id of perId.keys()) assert.ok(storedIds.has(id) || acceptedDeliveries.has(id), `received ${id} was stored`);

    // At-least-once: a duplicate can only be a delivery whose lease the dead process held (sent,
    // but its outcome not yet recorded). So duplicates are bounded by the leases a worker holds (at
    // most twice the channel's concurrency), not by the load.
    const duplicated = [...perId].filter(([, n]) => n > 1);
    const duplicates = duplicated.reduce((s, [, n]) => s + (n - 1), 0);
    const released = second.logs().find((l) => l.msg === 'released leases of dead workers');
    const rate = duplicates / acceptedDeliveries.size;
    t.diagnostic(
      `requests: ${outcomes.accepted} accepted (202), ${outcomes.networkError} lost with the connection; ` +
        `deliveries: ${acceptedDeliveries.size} accepted, ${receivedBeforeKill} received before the kill; ` +
        `left in the store: ${JSON.stringify(left)}; leases released at restart: ${released?.released ?? 0}; ` +
        `duplicates: ${duplicates} (${(rate * 100).toFixed(2)}% of accepted deliveries)`,
    );
    for (const [id, n] of duplicated) {
      assert.equal(n, 2, `${id} arrived at most twice`);
      assert.ok(leasedAtCrash.has(id), `duplicate ${id} was in flight (leased) at the crash`);
    }
    assert.equal(perId.get(heldDelivery), 2, 'the held delivery: the attempt cut by the kill, then the one after the restart');
    assert.ok(leasedAtCrash.size >= 1);
    assert.equal(released?.released ?? 0, leasedAtCrash.size, 'the restart released every lease of the dead process');
    // The worker's contract (queue/worker.ts): at most `concurrency` attempts in flight plus at most
    // `concurrency` outcomes awaiting their commit, each holding its lease: 2 x 128 for webhooks.
    assert.ok(leasedAtCrash.size <= 2 * 128, `leased at the crash: at most twice the webhook concurrency (${leasedAtCrash.size})`);

    second.kill('SIGTERM');
    assert.equal((await second.exited(20_000)).code, 0);
  });
});
