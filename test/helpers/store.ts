// A real, migrated StoreAdapter for unit tests of what sits on top of the store (the provider
// registry, the accept path, the workers): SQLite in a temporary directory (with or without its
// writer thread) or PostgreSQL in a fresh schema. `close` closes it and removes its data.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { StoreAdapter } from '../../src/store/adapter.ts';
import { PostgresAdapter } from '../../src/store/postgres.ts';
import { SqliteAdapter } from '../../src/store/sqlite.ts';
import { tempDir } from './herald.ts';
import { freshSchema } from './postgres.ts';

export type TestStoreKind = 'sqlite' | 'sqlite (no writer thread)' | 'postgres';

export interface TestStore {
  store: StoreAdapter;
  close(): Promise<void>;
}

export async function openTestStore(kind: TestStoreKind): Promise<TestStore> {
  if (kind === 'postgres') {
    const s = await freshSchema();
    const store = new PostgresAdapter(s.baseUrl, { schema: s.schema, poolSize: 8 });
    await store.migrate();
    return { store, close: async () => (await store.close(), await s.drop()) };
  }
  const dir = tempDir('herald-unit-');
  const store = new SqliteAdapter(join(dir, 'herald.db'), { writerThread: kind === 'sqlite' });
  await store.migrate();
  return { store, close: async () => (await store.close(), rmSync(dir, { recursive: true, force: true })) };
}
