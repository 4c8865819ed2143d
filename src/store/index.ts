import { join } from 'node:path';
import type { Config } from '../config.ts';
import type { StoreAdapter } from './adapter.ts';
import { SqliteAdapter } from './sqlite.ts';

/**
 * Opens the configured store: PostgreSQL when DATABASE_URL is set (its schema is the connection's
 * search_path, which the URL can set: `?options=-c%20search_path%3D<schema>`), else SQLite in the
 * data dir.
 */
export async function openStore(config: Config): Promise<StoreAdapter> {
  if (config.databaseUrl) {
    const { PostgresAdapter } = await import('./postgres.ts');
    return new PostgresAdapter(config.databaseUrl.href, { poolSize: config.dbPoolSize });
  }
  return new SqliteAdapter(join(config.dataPath, 'herald.db'), { writerIdleStopMs: config.sqliteWriterIdle });
}
