// Sign-in with external identity providers (GitHub, Google, generic OpenID Connect).
// - oauth_states: a sign-in in progress, from GET /v1/auth/oauth/{provider} to its callback. Keyed
//   by the sha256 of the `state` sent to the provider; `binding_hash` is the sha256 of the value of
//   the browser's `herald_oauth` cookie, so a callback completes only in the browser that started
//   it. `code_verifier` (PKCE) is sealed with the secret key. Single use: the callback deletes the
//   row before anything else; rows past expires_at are purged.
// - identities: an external account (provider, subject) linked to a user. `token` is the
//   provider's access token sealed with the secret key (GitHub only: used for organization
//   membership and repository checks), null otherwise.
// - github_org_links: an organization (a `workspaces` row) linked to a GitHub organization; users
//   signing in with GitHub who are members of it join with `default_role`.

import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('oauth_states')
    .addColumn('state_hash', 'text', (c) => c.primaryKey())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('binding_hash', 'text', (c) => c.notNull())
    .addColumn('code_verifier', 'text', (c) => c.notNull())
    .addColumn('nonce', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('oauth_states_expiry').on('oauth_states').columns(['expires_at']).execute();
  await db.schema
    .createTable('identities')
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
    .addColumn('email', 'text')
    .addColumn('login', 'text')
    .addColumn('token', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('identities_pk', ['provider', 'subject'])
    .execute();
  await db.schema.createIndex('identities_user').on('identities').columns(['user_id', 'provider']).execute();
  await db.schema
    .createTable('github_org_links')
    .addColumn('workspace_id', 'text', (c) => c.primaryKey().references('workspaces.id'))
    .addColumn('github_org', 'text', (c) => c.notNull())
    .addColumn('default_role', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('Herald migrations are forward-only; restore a backup to go back.');
}
