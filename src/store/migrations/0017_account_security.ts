// Account security (the rest of issue 15):
// - api_keys.created_by: who created the key ("user:<id>", "key:<id>"; null for keys made by
//   configuration or the CLI); api_keys.expires_at: after it the key is refused (401); null never.
// - users.email_verified_at: when the user proved the address (a verification link), null not yet.
//   users.totp_secret: the TOTP secret sealed with the secret key (auth/secret-box.ts), set at
//   enrolment; users.totp_enabled_at: when a code confirmed it (null: enrolment pending, TOTP not
//   required); users.totp_last_step: the RFC 6238 time step of the last accepted code, so a code is
//   accepted once.
// - workspaces.require_totp: 1 when the organization requires TOTP of its members.
// - invitations: a single-use invitation of an email address to an organization with a role; the
//   token is stored only as its sha256 (`hash`); accepted_at / revoked_at end it, as expires_at does.
// - user_tokens: single-use emailed links of a user (kind verify_email | reset_password), stored as
//   sha256, used_at set when used.
// - recovery_codes: a user's single-use TOTP recovery codes, as sha256; used_at when used.
// - audit_log: indexes for the filters by actor and target and the retention purge by time.

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('api_keys').addColumn('created_by', 'text').execute();
  await db.schema.alterTable('api_keys').addColumn('expires_at', 'bigint').execute();
  await db.schema.alterTable('users').addColumn('email_verified_at', 'bigint').execute();
  await db.schema.alterTable('users').addColumn('totp_secret', 'text').execute();
  await db.schema.alterTable('users').addColumn('totp_enabled_at', 'bigint').execute();
  await db.schema.alterTable('users').addColumn('totp_last_step', 'bigint').execute();
  await db.schema.alterTable('workspaces').addColumn('require_totp', 'integer', (c) => c.notNull().defaultTo(0)).execute();

  await db.schema
    .createTable('invitations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('email_key', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull().unique())
    .addColumn('invited_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('accepted_at', 'bigint')
    .addColumn('accepted_by', 'text')
    .addColumn('revoked_at', 'bigint')
    .execute();
  await db.schema.createIndex('invitations_workspace').on('invitations').columns(['workspace_id', 'created_at']).execute();

  await db.schema
    .createTable('user_tokens')
    .addColumn('hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .execute();
  await db.schema.createIndex('user_tokens_user').on('user_tokens').columns(['user_id']).execute();

  await db.schema
    .createTable('recovery_codes')
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .addPrimaryKeyConstraint('recovery_codes_pk', ['user_id', 'hash'])
    .execute();

  await db.schema.createIndex('audit_log_actor').on('audit_log').columns(['workspace_id', 'actor', 'id']).execute();
  await db.schema.createIndex('audit_log_target').on('audit_log').columns(['workspace_id', 'target', 'id']).execute();
  await db.schema.createIndex('audit_log_created').on('audit_log').columns(['created_at']).execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
