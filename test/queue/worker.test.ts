// The workers' claim/settle loop (src/queue/pool.ts, src/queue/worker.ts) against a real SQLite
// store (with its writer thread, as Herald runs). The channel is a test object at the Channel
// boundary: it records the jobs it is given and answers success, retryable or permanent as the
// test tells it, or holds a job until the test releases it. Store, queue, retry schedule, leases
// and circuit breaker are the real ones.
//
// What must hold: a worker has at most `concurrency` attempts running and claims no more than its
// free slots; outcomes are recorded in group commits (one settle for several outcomes); a retryable
// failure is retried after the schedule's delay and exhausted after 1 + schedule.length attempts,
// a permanent one at once; stop() releases the leases of attempts that did not finish in the grace
// (not counting them); `threshold` retryable failures open a vendor lane's circuit, which then
// claims nothing until its cooldown has passed, and a successful probe closes it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { SecretBox } from '../../src/auth/secret-box.ts';
import { PermanentError, RetryableError, type Channel, type ChannelName, type DeliveryJob, type DeliveryResult } from '../../src/channels/channel.ts';
import { deliveryId, newId } from '../../src/domain/ids.ts';
import { createMetrics } from '../../src/metrics.ts';
import { ProviderRegistry } from '../../src/providers/service.ts';
import { WorkerPool, type PoolOptions } from '../../src/queue/pool.ts';
import type { SettleItem, StoreAdapter } from '../../src/store/adapter.ts';
import { DEFAULT_WORKSPACE_ID, ensureDefaultWorkspace } from '../../src/store/workspaces.ts';
import { waitFor } from '../helpers/herald.ts';
import { openTestStore, type TestStore } from '../helpers/store.ts';

const WS = DEFAULT_WORKSPACE_ID;
const secrets = new SecretBox('worker-unit-test-key-worker-unit-test-key');

type Answer = 'success' | 'retryable' | 'permanent' | 'hold';

/** A Channel that records its jobs and answers as told; held jobs wait for release() or an abort. */
class TestChannel implements Channel {
  readonly name: ChannelName;
  readonly calls: { job: DeliveryJob; at: number }[] = [];
  answer: (job: DeliveryJob) => Answer = () => 'success';
  active = 0;
  maxActive = 0;
  readonly #held: { resolve: (a: Exclude<Answer, 'hold'>) => void }[] = [];

  constructor(name: ChannelName) {
    this.name = name;
  }

  get held(): number {
    return this.#held.length;
  }

  /** Answers every held job with `a`, all in this turn. */
  release(a: Exclude<Answer, 'hold'>): void {
    for (const h of this.#held.splice(0)) h.resolve(a);
  }

  async deliver(job: DeliveryJob, signal: AbortSignal): Promise<DeliveryResult> {
    this.calls.push({ job, at: Date.now() });
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      let a = this.answer(job);
      if (a === 'hold') {
        a = await new Promise<Exclude<Answer, 'hold'>>((resolve, reject) => {
          this.#held.push({ resolve });
          signal.addEventListener('abort', () => reject(new Error('aborted by stop')), { once: true });
        });
      }
      if (a === 'retryable') throw new RetryableError('http_5xx', 'the test channel failed', { httpStatus: 503 });
      if (a === 'permanent') throw new PermanentError('http_4xx', 'the test channel refused', { httpStatus: 400 });
      return { providerMessageId: `msg-${job.deliveryId}`, httpStatus: 200 };
    } finally {
      this.active--;
    }
  }

  async close(): Promise<void> {}
}

/** The store with its settle calls recorded (item counts, in call order). */
function recording(store: StoreAdapter): { store: StoreAdapter; settles: number[] } {
  const settles: number[] = [];
  const wrapped = new Proxy(store, {
    get(target, prop) {
      if (prop === 'settle') {
        return (items: SettleItem[]) => {
          settles.push(items.length);
          return target.settle(items);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store: wrapped, settles };
}

describe('WorkerPool claim/settle loop (sqlite)', () => {
  let t: TestStore;
  let rec: ReturnType<typeof recording>;
  let providers: ProviderRegistry;
  const pools: WorkerPool[] = [];

  before(async () => {
    t = await openTestStore('sqlite');
    await ensureDefaultWorkspace(t.store.db);
    const now = Date.now();
    await t.store.db
      .insertInto('recipients')
      .values({
        workspace_id: WS, id: 'r1', name: 'r1', email: null, phone: null, locale: null, timezone: null, webhook_url: 'https://example.test/r1', webhook_secret: null,
        webhook_disabled_at: null, webhook_disabled_reason: null, pushover_user_key: 'u'.repeat(30), pushover_device: null, slack_webhook_url: null, discord_webhook_url: null,
        kakao_phone: null, address_disabled: null, metadata: null, created_at: now, updated_at: now,
      })
      .execute();
    rec = recording(t.store);
    providers = new ProviderRegistry(t.store.db, secrets);
    await providers.put(WS, 'pushover', { token: 'a'.repeat(30) }, null);
  });
  after(async () => {
    await Promise.all(pools.map((p) => p.stop(0)));
    providers?.close();
    await t?.close();
  });

  function pool(channel: TestChannel, over: Partial<PoolOptions> = {}): WorkerPool {
    const p = new WorkerPool({
      store: rec.store,
      channels: [channel],
      owner: `test:${process.pid}:${randomBytes(4).toString('hex')}`,
      concurrency: { [channel.name]: 3 },
      leaseMs: 60_000,
      pollMs: 20,
      retrySchedule: [60_000],
      secrets,
      metrics: createMetrics({ version: 'test', role: 'worker', workerId: 'test' }),
      log: pino({ level: 'silent' }),
      providers,
      callbackUrl: () => undefined,
      throughput: {},
      circuit: { threshold: 1000, cooldownMs: 60_000 },
      onAddressGone: async () => undefined,
      onFallback: async () => false,
      onReceipt: async () => undefined,
      onChainStep: async () => undefined,
      renderDigest: async () => ({ title: '', body: '' }),
      ...over,
    });
    pools.push(p);
    return p;
  }

  /** Queues `n` due deliveries on `channel` (one notification each) and returns their ids. */
  async function enqueue(channel: ChannelName, n: number): Promise<string[]> {
    const now = Date.now();
    const items = Array.from({ length: n }, () => {
      const id = newId('ntf');
      return {
        notification: {
          id, workspace_id: WS, kind: 'transactional', title: 'T', body: 'B', data: null, metadata: null, status: 'accepted' as const, idempotency_key: null,
          delivery_count: 1, channel_options: null, fallback: 0, routing: 'all', template: null, created_at: now,
        },
        deliveries: [{
          id: deliveryId(id, 0), workspace_id: WS, notification_id: id, recipient_id: 'r1', channel, device_id: null, after_id: null, content: null,
          status: 'pending' as const, reason: null, attempts: 0, run_at: now, lease_owner: null, error_class: null, last_error: null, provider_message_id: null,
          created_at: now, updated_at: now, completed_at: null,
        }],
      };
    });
    assert.deepEqual(await t.store.acceptBatch(items), items.map(() => 'ok'));
    return items.map((i) => i.deliveries[0]!.id);
  }

  const rows = (ids: string[]) =>
    t.store.db.selectFrom('deliveries').select(['id', 'status', 'attempts', 'lease_owner', 'run_at', 'error_class', 'provider_message_id']).where('id', 'in', ids).orderBy('id').execute();
  const attemptsOf = (id: string) =>
    t.store.db.selectFrom('attempt_log').select(['attempt', 'outcome', 'started_at']).where('delivery_id', '=', id).orderBy('attempt').execute();
  const allIn = (ids: string[], status: string) => async () => ((await rows(ids)).every((r) => r.status === status) ? true : undefined);

  it('runs at most `concurrency` attempts, leasing only what it runs, and sends every delivery', async () => {
    const ch = new TestChannel('webhook');
    ch.answer = () => 'hold';
    const ids = await enqueue('webhook', 10);
    const p = pool(ch);
    p.start();
    await waitFor(() => ch.held === 3, 10_000, 'three attempts held');
    // Give the loop time to claim more if it wrongly would (it polls every 20 ms).
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(ch.calls.length, 3, 'no fourth attempt while three run');
    const leased = (await rows(ids)).filter((r) => r.status === 'sending');
    assert.equal(leased.length, 3, 'only the running attempts are leased');
    ch.answer = () => 'success';
    ch.release('success');
    await waitFor(allIn(ids, 'sent'), 15_000, 'all ten sent');
    assert.equal(ch.maxActive, 3);
    assert.deepEqual(new Set(ch.calls.map((c) => c.job.deliveryId)), new Set(ids), 'each delivery attempted');
    assert.equal(ch.calls.length, 10, 'and once only');
    for (const r of await rows(ids)) assert.deepEqual([r.attempts, r.lease_owner, r.provider_message_id], [1, null, `msg-${r.id}`]);
    await p.stop(1000);
  });

  it('records outcomes that finish together in one settle (group commit)', async () => {
    const ch = new TestChannel('webhook');
    ch.answer = () => 'hold';
    const ids = await enqueue('webhook', 6);
    const p = pool(ch, { concurrency: { webhook: 6 } });
    p.start();
    await waitFor(() => ch.held === 6, 10_000, 'six attempts held');
    rec.settles.length = 0;
    ch.release('success');
    await waitFor(allIn(ids, 'sent'), 15_000, 'all six sent');
    assert.equal(rec.settles.reduce((a, b) => a + b, 0), 6, `settles ${rec.settles}`);
    assert.ok(rec.settles.length < 6 && rec.settles.some((n) => n > 1), `six outcomes share settles: ${rec.settles}`);
    await p.stop(1000);
  });

  it('retries a retryable failure after the schedule\'s delay and exhausts it after 1 + schedule.length attempts; a permanent one at once', async () => {
    const ch = new TestChannel('webhook');
    const [retried, permanent] = await enqueue('webhook', 2);
    ch.answer = (job) => (job.deliveryId === permanent ? 'permanent' : 'retryable');
    const schedule = [300, 300];
    const p = pool(ch, { retrySchedule: schedule });
    p.start();
    await waitFor(allIn([retried!, permanent!], 'exhausted'), 20_000, 'both exhausted');
    const calls = ch.calls.filter((c) => c.job.deliveryId === retried).map((c) => c.at);
    assert.equal(calls.length, 3, '1 + schedule.length attempts');
    for (let i = 1; i < calls.length; i++) {
      // Jitter is ±20%: no attempt comes sooner than 80% of its delay.
      assert.ok(calls[i]! - calls[i - 1]! >= schedule[i - 1]! * 0.8, `attempt ${i + 1} came ${calls[i]! - calls[i - 1]!} ms after the previous one`);
    }
    assert.equal(ch.calls.filter((c) => c.job.deliveryId === permanent).length, 1, 'a permanent failure is not retried');
    assert.deepEqual((await attemptsOf(retried!)).map((a) => [a.attempt, a.outcome]), [[1, 'retryable'], [2, 'retryable'], [3, 'retryable']]);
    assert.deepEqual((await attemptsOf(permanent!)).map((a) => [a.attempt, a.outcome]), [[1, 'permanent']]);
    await p.stop(1000);
  });

  it('a failed delivery waits for its retry time in the store', async () => {
    const ch = new TestChannel('webhook');
    ch.answer = () => 'retryable';
    const [id] = await enqueue('webhook', 1);
    const p = pool(ch, { retrySchedule: [60_000] });
    const before = Date.now();
    p.start();
    const [row] = await waitFor(async () => ((await rows([id!]))[0]?.status === 'failed' ? rows([id!]) : undefined), 10_000, 'the delivery failed');
    assert.equal(row!.attempts, 1);
    assert.equal(row!.lease_owner, null);
    assert.ok(row!.run_at >= before + 60_000 * 0.8 && row!.run_at <= Date.now() + 60_000 * 1.2, `run_at ${row!.run_at - before} ms ahead`);
    await p.stop(1000);
    assert.equal(ch.calls.length, 1, 'not attempted again before it is due');
  });

  it('stop() waits for running attempts within the grace and records their outcomes', async () => {
    const ch = new TestChannel('webhook');
    ch.answer = () => 'hold';
    const ids = await enqueue('webhook', 2);
    const p = pool(ch);
    p.start();
    await waitFor(() => ch.held === 2, 10_000, 'two attempts held');
    const stopped = p.stop(60_000);
    setTimeout(() => ch.release('success'), 100);
    await stopped;
    for (const r of await rows(ids)) assert.deepEqual([r.status, r.lease_owner, r.attempts], ['sent', null, 1]);
  });

  it('stop() lets attempts finish within the grace, then aborts the rest and releases their leases uncounted', async () => {
    const ch = new TestChannel('webhook');
    ch.answer = () => 'hold';
    const ids = await enqueue('webhook', 3);
    const p = pool(ch);
    p.start();
    await waitFor(() => ch.held === 3, 10_000, 'three attempts held');
    assert.equal((await rows(ids)).filter((r) => r.status === 'sending').length, 3);
    await p.stop(50);
    for (const r of await rows(ids)) assert.deepEqual([r.status, r.lease_owner, r.attempts], ['pending', null, 0], `${r.id} given back`);
    assert.deepEqual(await attemptsOf(ids[0]!), [], 'an aborted attempt is not recorded');

    // Another worker picks them up.
    const next = new TestChannel('webhook');
    const p2 = pool(next);
    p2.start();
    await waitFor(allIn(ids, 'sent'), 15_000, 'sent by the next worker');
    await p2.stop(1000);
  });

  it('opens a vendor lane\'s circuit after `threshold` retryable failures, claims nothing while open, and closes on a successful probe after the cooldown', async () => {
    const ch = new TestChannel('pushover');
    ch.answer = () => 'retryable';
    const ids = await enqueue('pushover', 8);
    // Long enough that the checks below run before a probe is due, even on a busy machine.
    const cooldownMs = 2_000;
    const p = pool(ch, { concurrency: { pushover: 1 }, circuit: { threshold: 3, cooldownMs }, retrySchedule: [60_000] });
    p.start();
    await waitFor(() => p.circuits().pushover === 'open', 10_000, 'the circuit opens');
    assert.equal(ch.calls.length, 3, 'three failures opened it');
    const waiting = (await rows(ids)).filter((r) => !ch.calls.some((c) => c.job.deliveryId === r.id));
    assert.deepEqual(new Set(waiting.map((r) => [r.status, r.attempts].join())), new Set(['pending,0']), 'nothing else was claimed');
    ch.answer = () => 'success';
    await waitFor(() => p.circuits().pushover === 'closed', 15_000, 'the probe closes it');
    const probe = ch.calls[3]!;
    // The cooldown runs from the third failure, which ended after its call began.
    const third = ch.calls[2]!.at;
    assert.ok(probe.at >= third + cooldownMs, `the probe came ${probe.at - third} ms after the third failure began`);
    const fresh = ids.filter((id) => !ch.calls.slice(0, 3).some((c) => c.job.deliveryId === id));
    await waitFor(allIn(fresh, 'sent'), 15_000, 'the rest sent once closed');
    await p.stop(1000);
  });
});
