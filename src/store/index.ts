import { join } from 'node:path';
import { ConfigError, type Config } from '../config.ts';
import type { StoreAdapter } from './adapter.ts';
import { SqliteAdapter } from './sqlite.ts';

/** Opens the configured store: PostgreSQL when DATABASE_URL is set, else SQLite in the data dir. */
export async function openStore(config: Config): Promise<StoreAdapter> {
  if (config.databaseUrl) {
    throw new ConfigError('DATABASE_URL', 'PostgreSQL is not supported by this build yet; unset it to use SQLite');
  }
  return new SqliteAdapter(join(config.dataPath, 'herald.db'));
}
