// The lease queue's contract (queue/lease-queue.ts) on both stores, with two store instances on one
// database standing for two processes: claims are exclusive, an expired lease makes its row
// claimable again, and extend / complete / fail / release act only for the holder.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Migrator, type Kysely } from 'kysely';
import { enqueueLeases, LeaseQueue, leaseRow } from '../../src/queue/lease-queue.ts';
import type { StoreAdapter } from '../../src/store/adapter.ts';
import { migrationProvider } from '../../src/store/migrations/index.ts';
import { PostgresAdapter } from '../../src/store/postgres.ts';
import { SqliteAdapter } from '../../src/store/sqlite.ts';
import { tempDir } from '../helpers/herald.ts';
import { freshSchema } from '../helpers/postgres.ts';

const LEASE = 30_000;
const uniq = (p: string) => `${p}_${randomBytes(5).toString('hex')}`;

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`lease queue: ${dialect}`, () => {
    let one: StoreAdapter;
    let two: StoreAdapter;
    let cleanup: () => Promise<void>;

    before(async () => {
      if (dialect === 'sqlite') {
        const dir = tempDir('herald-leases-');
        one = new SqliteAdapter(join(dir, 'herald.db'));
        two = new SqliteAdapter(join(dir, 'herald.db'));
        cleanup = async () => rmSync(dir, { recursive: true, force: true });
      } else {
        const s = await freshSchema();
        one = new PostgresAdapter(s.baseUrl, { schema: s.schema });
        two = new PostgresAdapter(s.baseUrl, { schema: s.schema });
        cleanup = () => s.drop();
      }
      await one.migrate();
      await two.migrate();
    });
    after(async () => {
      await one?.close();
      await two?.close();
      await cleanup?.();
    });

    const row = (kind: string, key: string) => one.db.selectFrom('lease_queue').selectAll().where('kind', '=', kind).where('key', '=', key).executeTakeFirst();

    it('claim returns due rows of its kind oldest first, leased to the claimer; rows not due and of other kinds stay', async () => {
      const kind = uniq('k');
      const now = Date.now();
      await enqueueLeases(one.db, [
        leaseRow(kind, 'late', now - 10, now, { payload: '{"x":1}' }),
        leaseRow(kind, 'early', now - 20, now),
        leaseRow(kind, 'future', now + 60_000, now),
        leaseRow(uniq('other'), 'early', now - 30, now),
      ]);
      const a = new LeaseQueue(one, 'a');
      const claimed = await a.claim(kind, 10, LEASE, now);
      assert.deepEqual(claimed, [
        { kind, key: 'early', payload: null, attempts: 1, lease_until: now + LEASE },
        { kind, key: 'late', payload: '{"x":1}', attempts: 1, lease_until: now + LEASE },
      ]);
      assert.deepEqual(await a.claim(kind, 10, LEASE, now), [], 'held rows are not due');
      const stored = await row(kind, 'early');
      assert.equal(stored?.owner, 'a');
      assert.equal(Number(stored?.due_at), now + LEASE);
      assert.equal((await row(kind, 'future'))?.owner, null);
      // limit
      await enqueueLeases(one.db, [leaseRow(kind, 'x1', now - 5, now), leaseRow(kind, 'x2', now - 4, now)]);
      assert.deepEqual((await a.claim(kind, 1, LEASE, now)).map((l) => l.key), ['x1']);
    });

    it('two workers claiming at once never get the same row, and together get all of them', async () => {
      const kind = uniq('k');
      const now = Date.now();
      const keys = Array.from({ length: 60 }, (_, i) => `r${String(i).padStart(3, '0')}`);
      await enqueueLeases(one.db, keys.map((k, i) => leaseRow(kind, k, now - 1000 + i, now)));
      const a = new LeaseQueue(one, 'a');
      const b = new LeaseQueue(two, 'b');
      const got: { owner: string; key: string }[] = [];
      await Promise.all(
        [a, b].map(async (q) => {
          for (;;) {
            const ls = await q.claim(kind, 4, LEASE, now);
            if (ls.length === 0) return;
            for (const l of ls) got.push({ owner: q.owner, key: l.key });
          }
        }),
      );
      assert.deepEqual(got.map((g) => g.key).sort(), keys);
      const rows = await one.db.selectFrom('lease_queue').select(['key', 'owner']).where('kind', '=', kind).execute();
      const owners = new Map(rows.map((r) => [r.key, r.owner]));
      for (const g of got) assert.equal(owners.get(g.key), g.owner, `${g.key} is held by the worker that claimed it`);
    });

    it('an expired lease makes the row claimable again; the old holder can then neither extend, complete, fail nor release it', async () => {
      const kind = uniq('k');
      const now = Date.now();
      await enqueueLeases(one.db, [leaseRow(kind, 'job', now - 1, now)]);
      const a = new LeaseQueue(one, 'a');
      const b = new LeaseQueue(two, 'b');
      assert.equal((await a.claim(kind, 1, 1000, now)).length, 1);
      assert.deepEqual(await b.claim(kind, 1, LEASE, now + 999), [], 'not before the lease expires');
      const taken = await b.claim(kind, 1, LEASE, now + 1000);
      assert.deepEqual(taken.map((l) => [l.key, l.attempts]), [['job', 2]]);
      assert.equal(await a.extend(kind, 'job', LEASE, one.db, now + 1001), false);
      assert.equal(await a.complete(kind, 'job'), false);
      assert.equal(await a.fail(kind, 'job', now, one.db, now + 1001), false);
      assert.equal(await a.release(kind, ['job']), 0);
      const r = await row(kind, 'job');
      assert.equal(r?.owner, 'b');
      assert.equal(Number(r?.due_at), now + 1000 + LEASE);
    });

    it('extend, complete, fail and release act for the holder, and only on its own rows', async () => {
      const kind = uniq('k');
      const now = Date.now();
      await enqueueLeases(one.db, ['e', 'c', 'f', 'r1', 'r2'].map((k) => leaseRow(kind, k, now - 1, now)));
      const a = new LeaseQueue(one, 'a');
      const b = new LeaseQueue(two, 'b');
      assert.equal((await a.claim(kind, 10, LEASE, now)).length, 5);
      assert.equal(await b.extend(kind, 'e', LEASE), false, 'not the holder');
      assert.equal(await b.complete(kind, 'c'), false);
      assert.equal(await b.fail(kind, 'f', now), false);
      assert.equal(await b.release(kind), 0);

      assert.equal(await a.extend(kind, 'e', 5 * LEASE, one.db, now), true);
      assert.equal(Number((await row(kind, 'e'))?.due_at), now + 5 * LEASE);
      assert.equal(await a.complete(kind, 'c'), true);
      assert.equal(await row(kind, 'c'), undefined);
      assert.equal(await a.fail(kind, 'f', now + 7000, one.db, now), true);
      const failed = await row(kind, 'f');
      assert.deepEqual([failed?.owner, Number(failed?.due_at), failed?.attempts], [null, now + 7000, 1]);
      assert.deepEqual(await b.claim(kind, 10, LEASE, now + 6999), [], 'a failed row is due at its next time');
      assert.deepEqual((await b.claim(kind, 10, LEASE, now + 7000)).map((l) => l.key), ['f']);

      assert.equal(await a.release(kind, ['r1'], one.db, now + 10), 1);
      const released = await row(kind, 'r1');
      assert.deepEqual([released?.owner, Number(released?.due_at), released?.attempts], [null, now + 10, 0], 'due at once, the claim not counted');
      assert.equal(await a.release(kind), 2, 'all of its rows of the kind: e and r2');
      assert.deepEqual((await b.claim(kind, 10, LEASE)).map((l) => l.key).sort(), ['e', 'r1', 'r2']);
    });

    it('enqueue: a free row takes the new due time, a held one stays with its holder, ifAbsent leaves either', async () => {
      const kind = uniq('k');
      const now = Date.now();
      await enqueueLeases(one.db, [leaseRow(kind, 'free', now + 1000, now), leaseRow(kind, 'held', now - 1, now)]);
      const a = new LeaseQueue(one, 'a');
      assert.deepEqual((await a.claim(kind, 10, LEASE, now)).map((l) => l.key), ['held']);
      await enqueueLeases(one.db, [leaseRow(kind, 'free', now + 5000, now, { payload: 'p' }), leaseRow(kind, 'held', now + 5000, now)]);
      assert.deepEqual([Number((await row(kind, 'free'))?.due_at), (await row(kind, 'free'))?.payload], [now + 5000, 'p']);
      assert.deepEqual([(await row(kind, 'held'))?.owner, Number((await row(kind, 'held'))?.due_at)], ['a', now + LEASE]);
      await enqueueLeases(one.db, [leaseRow(kind, 'free', now + 9000, now)], { ifAbsent: true });
      assert.equal(Number((await row(kind, 'free'))?.due_at), now + 5000);
      // Enqueued leased to its creator: held, not claimable by others until it expires.
      await enqueueLeases(one.db, [leaseRow(kind, 'mine', now + LEASE, now, { owner: 'a' })]);
      assert.deepEqual((await new LeaseQueue(two, 'b').claim(kind, 10, LEASE, now + 4000)).map((l) => l.key), []);
      assert.equal(await a.complete(kind, 'mine'), true);
    });
  });
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`migration 0015 (lease queue): ${dialect}`, () => {
    it('moves pending fan-outs, receipts and running DLQ jobs onto the lease queue, and drops the old lease columns', async () => {
      let store: StoreAdapter;
      let cleanup: () => Promise<void>;
      if (dialect === 'sqlite') {
        const dir = tempDir('herald-leases-mig-');
        store = new SqliteAdapter(join(dir, 'herald.db'));
        cleanup = async () => rmSync(dir, { recursive: true, force: true });
      } else {
        const s = await freshSchema();
        store = new PostgresAdapter(s.baseUrl, { schema: s.schema });
        cleanup = () => s.drop();
      }
      try {
        const { error } = await new Migrator({ db: store.db, provider: migrationProvider }).migrateTo('0014_accounts');
        if (error) throw error;
        const db = store.db as unknown as Kysely<Record<string, Record<string, unknown>>>;
        const fanout = (id: string, state: string) => ({
          notification_id: id, workspace_id: 'ws', topic: 't', request: '{}', template_version: null, after: null, state, owner: 'gone', lease_until: 5, recipients: 0, created_at: 100, updated_at: 101,
        });
        await db.insertInto('fanouts').values([fanout('ntf_pending', 'pending'), fanout('ntf_done', 'done')]).execute();
        await db.insertInto('receipts').values({ delivery_id: 'dlv_r', workspace_id: 'ws', channel: 'pushover', receipt: 'rcpt', next_check_at: 777, expires_at: 999, created_at: 50 }).execute();
        const job = (id: string, status: string) => ({
          id, workspace_id: 'ws', action: 'discard', filters: '{"max_id":null}', reason: null, status, total: 0, processed: 0, actor: 'a', created_at: 200, updated_at: 201, finished_at: null,
        });
        await db.insertInto('dlq_jobs').values([job('job_running', 'running'), job('job_done', 'completed')]).execute();
        await store.migrate();
        const rows = await store.db.selectFrom('lease_queue').select(['kind', 'key', 'due_at', 'owner', 'attempts']).orderBy('kind').orderBy('key').execute();
        assert.deepEqual(rows.map((r) => ({ ...r, due_at: Number(r.due_at) })), [
          { kind: 'dlq_job', key: 'job_running', due_at: 200, owner: null, attempts: 0 },
          { kind: 'fanout', key: 'ntf_pending', due_at: 100, owner: null, attempts: 0 },
          { kind: 'receipt', key: 'dlv_r', due_at: 777, owner: null, attempts: 0 },
        ]);
        assert.deepEqual(Object.keys(await store.db.selectFrom('fanouts').selectAll().where('notification_id', '=', 'ntf_pending').executeTakeFirstOrThrow()).sort(),
          ['after', 'created_at', 'notification_id', 'recipients', 'request', 'state', 'template_version', 'topic', 'updated_at', 'workspace_id']);
        assert.deepEqual(Object.keys(await store.db.selectFrom('receipts').selectAll().executeTakeFirstOrThrow()).sort(),
          ['channel', 'created_at', 'delivery_id', 'expires_at', 'receipt', 'workspace_id']);
      } finally {
        await store.close();
        await cleanup();
      }
    });
  });
}
