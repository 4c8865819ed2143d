// Broker subscriptions (src/subscriptions): what to do with inbound events whose source path
// matches `path_pattern` and whose document passes `filter` (domain/filter.ts). `action` is the
// action's JSON without secrets; a forward's signing secret is sealed on its reserved webhook
// recipient (`_fwd_` + the subscription id), so forwards are ordinary webhook deliveries.
// `subscription_runs` records which (event, subscription) pairs have run and what they made,
// one row per run: the per-event job (lease kind subscription_event) skips pairs already run,
// so a job retried after a crash does not act twice; a replay adds rows with a new run id.

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('subscriptions')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('path_pattern', 'text', (c) => c.notNull())
    .addColumn('filter', 'text')
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('subscriptions_pk', ['workspace_id', 'id'])
    .execute();
  await db.schema
    .createTable('subscription_runs')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('subscription_id', 'text', (c) => c.notNull())
    .addColumn('run', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('detail', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('subscription_runs_pk', ['event_id', 'subscription_id', 'run'])
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
