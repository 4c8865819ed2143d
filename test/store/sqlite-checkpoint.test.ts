// SQLite WAL checkpoints run on the writer thread (src/store/sqlite-writer.ts), never on the event
// loop: the main connection does not checkpoint on commit, and what it commits still reaches the
// database file within about CHECKPOINT_INTERVAL_MS.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { CHECKPOINT_INTERVAL_MS } from '../../src/store/sqlite-writer.ts';
import { SqliteAdapter } from '../../src/store/sqlite.ts';
import { tempDir } from '../helpers/herald.ts';

describe('SQLite checkpoints', () => {
  let dir: string;
  before(() => {
    dir = tempDir('herald-ckpt-');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const write = async (store: SqliteAdapter, n: number, tag: string) => {
    const rows = Array.from({ length: n }, (_, i) => ({ id: `${tag}-${i}`, name: 'x'.repeat(500), created_at: i }));
    for (let i = 0; i < rows.length; i += 500) await store.db.insertInto('workspaces').values(rows.slice(i, i + 500)).execute();
  };

  it('with a writer thread: commits on the main connection leave the WAL alone; the thread copies it back', async () => {
    const path = join(dir, 'threaded.db');
    const store = new SqliteAdapter(path);
    await store.migrate();
    try {
      const before = statSync(path).size;
      // ~10 MB of rows: SQLite's default would have checkpointed (every 1000 pages) during these commits.
      await write(store, 20_000, 'a');
      const walPages = statSync(`${path}-wal`).size / 4096;
      assert.ok(walPages > 2000, `the WAL holds the commits (${walPages} pages)`);
      const deadline = Date.now() + CHECKPOINT_INTERVAL_MS * 5;
      while (statSync(path).size <= before + 5_000_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(statSync(path).size > before + 5_000_000, 'the writer thread checkpointed the rows into the database file');
      const other = new BetterSqlite3(path, { readonly: true });
      assert.equal((other.prepare("SELECT count(*) AS n FROM workspaces WHERE id LIKE 'a-%'").get() as { n: number }).n, 20_000);
      other.close();
    } finally {
      await store.close();
    }
  });

  it('without a writer thread the connection checkpoints on commit as SQLite does by default', async () => {
    const path = join(dir, 'inline.db');
    const store = new SqliteAdapter(path, { writerThread: false });
    await store.migrate();
    try {
      const before = statSync(path).size;
      await write(store, 20_000, 'b');
      assert.ok(statSync(path).size > before + 5_000_000, 'checkpointed during the commits');
    } finally {
      await store.close();
    }
  });
});
