// The SQLite hot path (accept, claim, settle, lease release) runs on the writer thread
// (src/store/sqlite-writer.ts): while another connection holds the write lock, the thread waits in
// SQLite's busy handler and the event loop keeps running. On the main connection the same wait
// would block the event loop, so the lock holder here (a connection on this very thread) could not
// even release it until busy_timeout ran out.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { SqliteAdapter } from '../../src/store/sqlite.ts';
import { deliveryId, newId } from '../../src/domain/ids.ts';
import { tempDir, waitFor } from '../helpers/herald.ts';

/** Inserts a notification with one delivery due now on `channel`; returns the delivery's id. */
async function insertDue(store: SqliteAdapter, channel: string): Promise<string> {
  const now = Date.now();
  const nid = newId('ntf');
  await store.db.insertInto('notifications').values({
    id: nid, workspace_id: 'ws_writer', kind: 'alert', title: 'T', body: 'B', data: null, metadata: null, status: 'accepted', idempotency_key: null,
    delivery_count: 1, channel_options: null, fallback: 0, routing: 'all', template: null, created_at: now,
  }).execute();
  await store.db.insertInto('deliveries').values({
    id: deliveryId(nid, 0), workspace_id: 'ws_writer', notification_id: nid, recipient_id: 'r1', channel, device_id: null, after_id: null, content: null,
    status: 'pending', reason: null, attempts: 0, run_at: now - 1000, lease_owner: null, error_class: null, last_error: null, provider_message_id: null,
    created_at: now, updated_at: now, completed_at: null,
  }).execute();
  return deliveryId(nid, 0);
}

describe('SQLite writer thread', () => {
  let dir: string;
  before(() => {
    dir = tempDir('herald-writer-');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const HOLD_MS = 300;

  /** Holds the database's write lock from this thread for HOLD_MS, counting event-loop ticks meanwhile. */
  const whileLocked = async (path: string, work: () => Promise<unknown>) => {
    const other = new BetterSqlite3(path);
    other.exec('BEGIN IMMEDIATE');
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const released = new Promise<number>((resolve) =>
      setTimeout(() => {
        other.exec('COMMIT');
        other.close();
        resolve(Date.now());
      }, HOLD_MS),
    );
    const started = Date.now();
    try {
      const result = await work();
      const done = Date.now();
      const releasedAt = await released;
      return { result, waitedMs: done - started, finishedAfterRelease: done >= releasedAt, ticks };
    } finally {
      clearInterval(ticker);
    }
  };

  for (const op of ['claim', 'settle', 'releaseLeases'] as const) {
    it(`${op} waits for the lock off the event loop`, async () => {
      const path = join(dir, `${op}.db`);
      const store = new SqliteAdapter(path);
      await store.migrate();
      try {
        // Something due, or the claim answers from its read on the main connection without the thread.
        if (op === 'claim') await insertDue(store, 'webhook');
        const work = {
          claim: () => store.claim('webhook', 'w-1', 8, Date.now(), 30_000),
          settle: () =>
            store.settle([
              {
                id: 'dlv_missing',
                owner: 'w-1',
                status: 'sent',
                deliveryCount: 1,
                attempt: {
                  delivery_id: 'dlv_missing', workspace_id: 'ws_default', attempt: 1, started_at: Date.now(), duration_ms: 1,
                  outcome: 'success', error_class: null, error: null, http_status: 200, smtp_reply: null, response: null,
                },
              },
            ]),
          releaseLeases: () => store.releaseLeases(['w-1'], Date.now()),
        }[op];
        const r = await whileLocked(path, work);
        assert.ok(r.finishedAfterRelease, `${op} committed only once the other connection let go`);
        assert.ok(r.waitedMs >= HOLD_MS - 20, `${op} waited for the lock (${r.waitedMs} ms)`);
        // A blocked event loop would tick zero times; a free one ~HOLD_MS / 10.
        assert.ok(r.ticks >= 5, `the event loop ran while ${op} waited (${r.ticks} ticks)`);
      } finally {
        await store.close();
      }
    });
  }
});

// The writer thread stops after IDLE_STOP_MS without a call (about 13 MB of an idle process's
// RSS) and starts again for the next call; idle polls of the queue do not start it.
describe('SQLite writer thread: stopped while idle', () => {
  let dir: string;
  let store: SqliteAdapter;
  before(async () => {
    dir = tempDir('herald-writer-idle-');
    store = new SqliteAdapter(join(dir, 'herald.db'), { writerIdleStopMs: 100 });
    await store.migrate();
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const stopped = () => waitFor(() => !store.writerRunning, 10_000, 'the writer thread stopped');

  const threads = () => Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);

  it('stops after start-up when nothing calls it, and the thread ends', async () => {
    assert.ok(store.writerRunning, 'running after migrate');
    const before = threads();
    await stopped();
    await waitFor(() => threads() < before, 10_000, `the thread ended (${before} threads while it ran)`);
  });

  it('an idle claim (nothing due) leaves it stopped', async () => {
    await stopped();
    assert.deepEqual(await store.claim('webhook', 'w-1', 8, Date.now(), 30_000), []);
    assert.equal(store.writerRunning, false);
  });

  it('a claim of due work starts it again, claims on it and lets it stop again', async () => {
    await stopped();
    const now = Date.now();
    const id = await insertDue(store, 'webhook');
    const claimed = await store.claim('webhook', 'w-1', 8, now, 30_000);
    assert.deepEqual(claimed.map((c) => c.id), [id]);
    // The claim ran on the thread (it is running now), and the row is leased: a second claim finds nothing.
    assert.ok(store.writerRunning, 'started by the claim');
    assert.deepEqual(await store.claim('webhook', 'w-2', 8, now, 30_000), []);
    await stopped();
    // Its last checkpoint ran and the connection closed: the lease is there for the main connection to see.
    const row = await store.db.selectFrom('deliveries').select(['status', 'lease_owner']).where('id', '=', id).executeTakeFirstOrThrow();
    assert.deepEqual(row, { status: 'sending', lease_owner: 'w-1' });
  });
});
