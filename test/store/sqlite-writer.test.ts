// The SQLite hot path (accept, claim, settle, lease release) runs on the writer thread
// (src/store/sqlite-writer.ts): while another connection holds the write lock, the thread waits in
// SQLite's busy handler and the event loop keeps running. On the main connection the same wait
// would block the event loop, so the lock holder here (a connection on this very thread) could not
// even release it until busy_timeout ran out.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { SqliteAdapter } from '../../src/store/sqlite.ts';
import { tempDir } from '../helpers/herald.ts';

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
