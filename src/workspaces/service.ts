// Workspaces at start-up: the default workspace (with its default kinds) exists from the first
// start; HERALD_ADMIN_KEY, when set, is an admin key of it; HERALD_ADMIN_EMAIL with
// HERALD_ADMIN_PASSWORD, when set, is a user who owns it. Idempotent: every start runs them.

import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { AccountService } from '../auth/accounts.ts';
import { ensureAdminKey } from '../auth/api-keys.ts';
import type { Database } from '../store/schema.ts';
import { ensureDefaultWorkspace } from '../store/workspaces.ts';

export async function bootstrapWorkspaces(db: Kysely<Database>, opts: { adminKey?: string | undefined }): Promise<void> {
  await ensureDefaultWorkspace(db);
  if (opts.adminKey) await ensureAdminKey(db, opts.adminKey);
}

/** The HERALD_ADMIN_EMAIL user, created once (with HERALD_ADMIN_PASSWORD) as owner of the default organization. */
export async function bootstrapOwner(accounts: Pick<AccountService, 'ensureOwner'>, opts: { email: string | undefined; password: string | undefined }, log: Logger): Promise<void> {
  if (!opts.email || !opts.password) return;
  const { created } = await accounts.ensureOwner({ email: opts.email, password: opts.password }, 'system');
  if (created) log.info({ email: opts.email }, 'created the HERALD_ADMIN_EMAIL user, owner of the default organization');
}
