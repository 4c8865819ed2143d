// Numbered migrations, applied in order by Kysely's Migrator (which takes a lock, so concurrent
// start-ups migrate once). Add a file NNNN_name.ts and list it here; never edit an applied one.
// Numbers are handed to work done in parallel, so a lower number may land after a higher one was
// applied somewhere: the Migrator runs with allowUnorderedMigrations (store/sqlite.ts, postgres.ts),
// and a migration must not depend on one with a higher number (each adds its own tables).

import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_initial.ts';
import * as m0002 from './0002_webhook_disabled.ts';
import * as m0003 from './0003_delivery_count.ts';
import * as m0004 from './0004_queue_tuning.ts';
import * as m0005 from './0005_channels.ts';
import * as m0006 from './0006_policy.ts';
import * as m0007 from './0007_send_rules.ts';
import * as m0008 from './0008_routing.ts';
import * as m0009 from './0009_content.ts';
import * as m0010 from './0010_fanout.ts';
import * as m0011 from './0011_digests.ts';
import * as m0012 from './0012_success_on_delivery.ts';
import * as m0013 from './0013_delivery_keys.ts';
import * as m0014 from './0014_accounts.ts';
import * as m0015 from './0015_lease_queue.ts';
import * as m0016 from './0016_identities.ts';
import * as m0017 from './0017_account_security.ts';
import * as m0018 from './0018_inbound.ts';
import * as m0019 from './0019_realtime.ts';
import * as m0020 from './0020_subscriptions.ts';
import * as m0025 from './0025_source_github_read.ts';

const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_webhook_disabled': m0002,
  '0003_delivery_count': m0003,
  '0004_queue_tuning': m0004,
  '0005_channels': m0005,
  '0006_policy': m0006,
  '0007_send_rules': m0007,
  '0008_routing': m0008,
  '0009_content': m0009,
  '0010_fanout': m0010,
  '0011_digests': m0011,
  '0012_success_on_delivery': m0012,
  '0013_delivery_keys': m0013,
  '0014_accounts': m0014,
  '0015_lease_queue': m0015,
  '0016_identities': m0016,
  '0017_account_security': m0017,
  '0018_inbound': m0018,
  '0019_realtime': m0019,
  '0020_subscriptions': m0020,
  '0025_source_github_read': m0025,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};

export const MIGRATION_NAMES: readonly string[] = Object.keys(migrations).sort();
export const LATEST_MIGRATION = MIGRATION_NAMES.at(-1)!;
