// API key management: create (the key is shown once), list, revoke. Resolving a presented key to a
// principal is authentication's (auth/api-keys.ts KeyResolver); a revocation drops every node's
// cache of resolved keys at once.

import type { Kysely } from 'kysely';
import { createApiKey, type KeyResolver } from '../auth/api-keys.ts';
import type { Scope } from '../auth/scopes.ts';
import type { AuditService } from '../audit/service.ts';
import type { ApiKeysTable, Database } from '../store/schema.ts';
import { listApiKeys, revokeApiKey } from './store.ts';

export class KeyService {
  readonly #db: Kysely<Database>;
  readonly #resolver: KeyResolver;
  readonly #audit: AuditService;

  constructor(db: Kysely<Database>, deps: { resolver: KeyResolver; audit: AuditService }) {
    this.#db = db;
    this.#resolver = deps.resolver;
    this.#audit = deps.audit;
  }

  /** A new key recording `actor` as its creator; `expiresAt` (ms) null: never expires. */
  async create(workspaceId: string, actor: string, input: { name: string; scopes: Scope[]; expiresAt?: number | null }): Promise<{ id: string; key: string; prefix: string }> {
    const created = await createApiKey(this.#db, { name: input.name, scopes: input.scopes, workspaceId, createdBy: actor, expiresAt: input.expiresAt ?? null });
    await this.#audit.record({ workspaceId, actor, action: 'key.create', target: created.id, details: { name: input.name, scopes: input.scopes, expires_at: input.expiresAt ?? null } });
    return created;
  }

  list(workspaceId: string): Promise<ApiKeysTable[]> {
    return listApiKeys(this.#db, workspaceId);
  }

  /** False when there is no active key `id` in the workspace. */
  async revoke(workspaceId: string, actor: string, id: string): Promise<boolean> {
    if (!(await revokeApiKey(this.#db, workspaceId, id, Date.now()))) return false;
    this.#resolver.invalidate();
    await this.#audit.record({ workspaceId, actor, action: 'key.revoke', target: id });
    return true;
  }
}
