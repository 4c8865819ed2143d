// A webhook source's GitHub repository read grant (src/inbound): `github_repo` is the repository
// ("owner/repo", lower case) named by the source's path; when set, every user whose linked GitHub
// account can read that repository reads the source's events. Null: no grant.

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('inbound_sources').addColumn('github_repo', 'text').execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
