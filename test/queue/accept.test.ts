// The accept path's batching (src/queue/accept.ts over src/queue/group-commit.ts) against real
// store adapters: SQLite with its writer thread, SQLite without one, and PostgreSQL. The store is
// real; the test only records the acceptBatch calls the Accepter makes (each call is one store
// batch) and, to make a batch fail, installs a database trigger that refuses one notification.
//
// What must hold:
//   - accepts that reach the store in one turn of the event loop share store batches, each at
//     most the adapter's acceptBatching.maxBatch items;
//   - a batch that fails rejects its own callers (and writes none of them); accepts in other
//     batches commit. (With the SQLite writer thread the unit that fails is the thread's merged
//     transaction, which may hold several batches: sqlite-writer.ts. There this test checks that
//     the refused batch writes nothing and that later accepts commit.)
//   - an Idempotency-Key: a duplicate while the first is in flight is idempotency_in_flight, a
//     retry after the commit replays, another body is idempotency_key_reused; two nodes racing
//     with one key make one notification and the loser replays the winner's response.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import type { ChannelName } from '../../src/channels/channel.ts';
import { createMetrics } from '../../src/metrics.ts';
import { Accepter, type AcceptResult, type SendRequest } from '../../src/queue/accept.ts';
import { PolicyCache } from '../../src/queue/policy.ts';
import { RecipientCache } from '../../src/queue/recipient-cache.ts';
import { MemoryRateLimiter } from '../../src/ratelimit/memory.ts';
import type { StoreAdapter } from '../../src/store/adapter.ts';
import { DEFAULT_WORKSPACE_ID, ensureDefaultWorkspace } from '../../src/store/workspaces.ts';
import { Problem } from '../../src/errors.ts';
import { openTestStore, type TestStore, type TestStoreKind } from '../helpers/store.ts';

const WS = DEFAULT_WORKSPACE_ID;
const RECIPIENTS = ['r1', 'r2', 'r3'];
const POISON = 'poison: refused by the test trigger';

/** The store with its acceptBatch calls recorded (item counts, in call order). */
function recording(store: StoreAdapter): { store: StoreAdapter; batches: number[] } {
  const batches: number[] = [];
  const wrapped = new Proxy(store, {
    get(target, prop) {
      if (prop === 'acceptBatch') {
        return (items: Parameters<StoreAdapter['acceptBatch']>[0]) => {
          batches.push(items.length);
          return target.acceptBatch(items);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store: wrapped, batches };
}

function accepter(store: StoreAdapter, rateLimiter: MemoryRateLimiter): Accepter {
  return new Accepter({
    store,
    reachable: () => new Set<ChannelName>(['webhook']),
    configured: async () => ['webhook'],
    metrics: createMetrics({ version: 'test', role: 'api', workerId: 'test' }),
    idempotencyTtlMs: 86_400_000,
    onCommitted: () => undefined,
    // Entries that outlive the test: after the warm-up, accepts reach the store with no I/O on the way.
    policy: new PolicyCache(store.db, { ttlMs: 3_600_000 }),
    recipients: new RecipientCache(store, { ttlMs: 3_600_000 }),
    rateLimiter,
  });
}

const send = (n: number | string, over: Partial<SendRequest> = {}): SendRequest => ({ to: RECIPIENTS[Number(String(n).length) % 3]!, title: `t${n}`, body: 'b', ...over });
const turn = () => new Promise((r) => setImmediate(r));

async function installPoisonTrigger(store: StoreAdapter): Promise<void> {
  if (store.dialect === 'sqlite') {
    await sql.raw(`CREATE TRIGGER test_poison BEFORE INSERT ON notifications WHEN NEW.title = 'poison' BEGIN SELECT RAISE(ABORT, '${POISON}'); END`).execute(store.db);
  } else {
    await sql.raw(`CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.title = 'poison' THEN RAISE EXCEPTION '${POISON}'; END IF; RETURN NEW; END $$`).execute(store.db);
    await sql.raw(`CREATE TRIGGER test_poison BEFORE INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION test_poison()`).execute(store.db);
  }
}

for (const kind of ['sqlite', 'sqlite (no writer thread)', 'postgres'] as TestStoreKind[]) {
  describe(`Accepter batching (${kind})`, () => {
    let t: TestStore;
    let rec: ReturnType<typeof recording>;
    let acc: Accepter;
    const limiter = new MemoryRateLimiter();
    const stored = async (ids: string[]) =>
      ids.length === 0 ? [] : (await t.store.db.selectFrom('notifications').select('id').where('id', 'in', ids).execute()).map((r) => r.id).sort();

    before(async () => {
      t = await openTestStore(kind);
      await ensureDefaultWorkspace(t.store.db);
      const now = Date.now();
      await t.store.db
        .insertInto('recipients')
        .values(RECIPIENTS.map((id) => ({
          workspace_id: WS, id, name: id, email: null, phone: null, locale: null, timezone: null, webhook_url: `https://example.test/${id}`, webhook_secret: null,
          webhook_disabled_at: null, webhook_disabled_reason: null, pushover_user_key: null, pushover_device: null, slack_webhook_url: null, discord_webhook_url: null,
          kakao_phone: null, address_disabled: null, metadata: null, created_at: now, updated_at: now,
        })))
        .execute();
      await installPoisonTrigger(t.store);
      rec = recording(t.store);
      acc = accepter(rec.store, limiter);
      // Warm the policy and recipient caches: afterwards an accept reaches the store with no I/O on the way.
      await Promise.all(RECIPIENTS.map((r) => acc.accept(WS, { to: r, title: 'warm' })));
    });
    after(async () => {
      await acc?.drain();
      await t?.close();
    });

    it('accepts made in one turn share store batches of at most acceptBatching.maxBatch', async () => {
      const { maxBatch } = t.store.acceptBatching;
      const n = maxBatch === 16 ? 40 : 60;
      rec.batches.length = 0;
      const results = await Promise.all(Array.from({ length: n }, (_, i) => acc.accept(WS, send(i))));
      const ids = results.map((r) => r.response.id);
      assert.equal(new Set(ids).size, n);
      assert.deepEqual(await stored(ids), [...ids].sort(), 'every accepted notification is in the store');
      assert.equal(rec.batches.reduce((a, b) => a + b, 0), n);
      assert.ok(rec.batches.every((b) => b <= maxBatch), `batches ${rec.batches} within maxBatch ${maxBatch}`);
      // All n reached the committer in one turn: it flushes full batches at once and the rest at the turn's end.
      const full = Math.floor(n / maxBatch);
      assert.deepEqual(rec.batches, [...Array<number>(full).fill(maxBatch), ...(n % maxBatch ? [n % maxBatch] : [])]);
    });

    it('a batch the store refuses rejects its callers and writes none of them; accepts in a later batch commit', async () => {
      rec.batches.length = 0;
      const first = [acc.accept(WS, send('p', { title: 'poison' })), acc.accept(WS, send('a')), acc.accept(WS, send('b'))];
      const settledFirst = Promise.allSettled(first);
      while (rec.batches.length === 0) await turn();
      // The refused batch is in flight or done; these form another batch.
      const later = [acc.accept(WS, send('c')), acc.accept(WS, send('d'))];
      const [outFirst, outLater] = await Promise.all([settledFirst, Promise.allSettled(later)]);
      assert.deepEqual(rec.batches.slice(0, 1), [3], 'the three made one batch');
      for (const o of outFirst) {
        assert.equal(o.status, 'rejected');
        assert.match(String((o as PromiseRejectedResult).reason?.message), /poison: refused/);
      }
      const titles = await t.store.db.selectFrom('notifications').select('title').where('title', 'in', ['poison', 'ta', 'tb']).execute();
      assert.deepEqual(titles, [], 'nothing of the refused batch was written');
      if (kind === 'sqlite') {
        // The writer thread may have merged the later batch into the refused transaction.
        const again = await Promise.all([acc.accept(WS, send('e')), acc.accept(WS, send('f'))]);
        assert.equal((await stored(again.map((r) => r.response.id))).length, 2);
      } else {
        assert.ok(outLater.every((o) => o.status === 'fulfilled'), 'the later batch is not affected');
        const ids = outLater.map((o) => (o as PromiseFulfilledResult<AcceptResult>).value.response.id);
        assert.deepEqual(await stored(ids), ids.sort());
      }
    });

    it('an Idempotency-Key in a batch: in flight is refused, a retry replays, another body is refused', async () => {
      const key = `key-${kind}`;
      const req = send('idem', { title: 'idem' });
      const [a, b, others] = await Promise.allSettled([acc.accept(WS, req, key), acc.accept(WS, req, key), Promise.all([acc.accept(WS, send('x')), acc.accept(WS, send('y'))])]);
      // Whichever of the two reads the store's answer first goes on; the other is refused.
      const won = [a, b].filter((o) => o.status === 'fulfilled') as PromiseFulfilledResult<AcceptResult>[];
      const lost = [a, b].filter((o) => o.status === 'rejected') as PromiseRejectedResult[];
      assert.equal(won.length, 1, 'one of the two duplicates is accepted');
      assert.equal(lost.length, 1);
      const first = won[0]!.value;
      assert.equal(first.replayed, false);
      assert.ok(lost[0]!.reason instanceof Problem, String(lost[0]!.reason));
      assert.equal((lost[0]!.reason as Problem).code, 'idempotency_in_flight');
      assert.equal(others.status, 'fulfilled', 'the other accepts of the turn commit');

      const retry = await acc.accept(WS, req, key);
      assert.deepEqual(retry, { response: first.response, replayed: true });
      await assert.rejects(acc.accept(WS, { ...req, body: 'other' }, key), (e: unknown) => e instanceof Problem && e.code === 'idempotency_key_reused');
      const rows = await t.store.db.selectFrom('notifications').select('id').where('idempotency_key', '=', key).execute();
      assert.deepEqual(rows, [{ id: first.response.id }]);
    });

    it('two nodes racing with one key make one notification; the loser replays the winner\'s response', async () => {
      // A second Accepter on the same database: another node as far as the accept path can tell.
      const other = accepter(t.store, limiter);
      await other.accept(WS, { to: 'r1', title: 'warm' });
      for (let round = 0; round < 5; round++) {
        const key = `race-${kind}-${round}`;
        const req = send('race', { title: `race ${round}` });
        const [x, y] = await Promise.all([acc.accept(WS, req, key), other.accept(WS, req, key)]);
        assert.equal(x.response.id, y.response.id, 'both answer with one notification');
        assert.deepEqual([x.replayed, y.replayed].sort(), [false, true]);
        const rows = await t.store.db.selectFrom('notifications').select('id').where('idempotency_key', '=', key).execute();
        assert.deepEqual(rows, [{ id: x.response.id }]);
      }
      await other.drain();
    });
  });
}
