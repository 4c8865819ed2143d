// API keys: random, shown once, stored as a sha256 hash. A key belongs to one workspace and has
// scopes; `admin` implies every scope.
//
//   send   create notifications, manage recipients
//   read   read notifications, recipients and history
//   admin  everything, including the dead-letter queue and keys

import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { newId } from '../domain/ids.ts';
import { findApiKeyByHash, insertApiKey, touchApiKey } from '../store/api-keys.ts';
import type { Database } from '../store/schema.ts';
import { DEFAULT_WORKSPACE_ID } from '../store/workspaces.ts';

export const SCOPES = ['send', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface Principal {
  keyId: string;
  workspaceId: string;
  scopes: readonly Scope[];
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function hasScope(p: Principal, needed: Scope): boolean {
  return p.scopes.includes('admin') || p.scopes.includes(needed);
}

export function generateKey(): string {
  return 'hk_' + randomBytes(24).toString('base64url');
}

export async function createApiKey(
  db: Kysely<Database>,
  opts: { name: string; scopes: Scope[]; workspaceId?: string; key?: string },
): Promise<{ id: string; key: string; prefix: string }> {
  const key = opts.key ?? generateKey();
  const id = newId('key');
  const prefix = key.slice(0, 10);
  await insertApiKey(db, {
    id,
    workspace_id: opts.workspaceId ?? DEFAULT_WORKSPACE_ID,
    name: opts.name,
    scopes: [...new Set(opts.scopes)].join(' '),
    prefix,
    hash: hashKey(key),
    created_at: Date.now(),
    last_used_at: null,
    revoked_at: null,
  });
  return { id, key, prefix };
}

/** Makes sure the key configured as HERALD_ADMIN_KEY exists with admin scope. */
export async function ensureAdminKey(db: Kysely<Database>, key: string): Promise<void> {
  if (await findApiKeyByHash(db, hashKey(key))) return;
  await createApiKey(db, { name: 'HERALD_ADMIN_KEY', scopes: ['admin'], key });
}

/**
 * Resolves bearer keys to principals, caching hits for `ttlMs` so the hot path does not query the
 * store per request. A revoked key stops working within `ttlMs` (or at once via `invalidate`).
 */
export class KeyResolver {
  readonly #db: Kysely<Database>;
  readonly #ttlMs: number;
  readonly #cache = new Map<string, { principal: Principal; until: number }>();
  readonly #touched = new Map<string, number>();

  constructor(db: Kysely<Database>, ttlMs = 30_000) {
    this.#db = db;
    this.#ttlMs = ttlMs;
  }

  async resolve(key: string): Promise<Principal | undefined> {
    const hash = hashKey(key);
    const now = Date.now();
    const hit = this.#cache.get(hash);
    if (hit && hit.until > now) return hit.principal;
    const row = await findApiKeyByHash(this.#db, hash);
    if (!row) {
      this.#cache.delete(hash);
      return undefined;
    }
    const principal: Principal = { keyId: row.id, workspaceId: row.workspace_id, scopes: row.scopes.split(' ') as Scope[] };
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(hash, { principal, until: now + this.#ttlMs });
    if ((this.#touched.get(row.id) ?? 0) < now - 60_000) {
      this.#touched.set(row.id, now);
      void touchApiKey(this.#db, row.id, now).catch(() => undefined);
    }
    return principal;
  }

  invalidate(): void {
    this.#cache.clear();
  }
}
