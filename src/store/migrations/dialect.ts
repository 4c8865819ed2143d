// Which database a migration runs on, for the few statements only one dialect has (storage
// parameters, say). Everything else in a migration stays portable: Kysely's schema builder or SQL
// both dialects accept.

import { PostgresAdapter, type Kysely } from 'kysely';

/** Whether `db` (a migration's connection) is PostgreSQL. */
export function isPostgres(db: Kysely<unknown>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}
