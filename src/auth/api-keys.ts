// API keys: random, shown once, stored as a sha256 hash. A key belongs to one workspace and has
// scopes (auth/scopes.ts); a valid key is a `key` principal (auth/principal.ts). A key may carry an
// expiry: from then on it is refused like an unknown key (401), on every node at once (a cached
// key is cached no longer than its life).

import { hash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { KEYS_INVALIDATE, type Bus } from '../bus/bus.ts';
import { newId } from '../domain/ids.ts';
import { findApiKeyByHash, insertApiKey, touchApiKey } from '../keys/store.ts';
import type { Database } from '../store/schema.ts';
import { DEFAULT_WORKSPACE_ID } from '../store/workspaces.ts';
import type { KeyLookup, KeyPrincipal } from './principal.ts';
import type { Scope } from './scopes.ts';

export { SCOPES, type Scope } from './scopes.ts';

export function hashKey(key: string): string {
  return hash('sha256', key, 'hex');
}

export function generateKey(): string {
  return 'hk_' + randomBytes(24).toString('base64url');
}

export async function createApiKey(
  db: Kysely<Database>,
  opts: { name: string; scopes: Scope[]; workspaceId?: string; key?: string; createdBy?: string | null; expiresAt?: number | null },
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
    created_by: opts.createdBy ?? null,
    expires_at: opts.expiresAt ?? null,
  });
  return { id, key, prefix };
}

/** Makes sure the key configured as HERALD_ADMIN_KEY exists with admin scope. */
export async function ensureAdminKey(db: Kysely<Database>, key: string): Promise<void> {
  if (await findApiKeyByHash(db, hashKey(key))) return;
  await createApiKey(db, { name: 'HERALD_ADMIN_KEY', scopes: ['admin'], key });
}

/**
 * Resolves bearer keys to principals, caching hits for `ttlMs` (default 30s) so the hot path does
 * not query the store per request. A revoked key stops working on every node within `ttlMs`:
 * `invalidate()` drops this node's cache at once and, through the bus, every other node's; a node
 * that misses that message (bus down) still expires the entry within `ttlMs`, and drops its whole
 * cache when its bus reconnects.
 */
export class KeyResolver implements KeyLookup {
  readonly #db: Kysely<Database>;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #bus: Bus | undefined;
  readonly #cache = new Map<string, { principal: KeyPrincipal; until: number }>();
  readonly #touched = new Map<string, number>();
  /** Bumped by every clear, so a lookup that started before a clear does not cache its result. */
  #generation = 0;
  readonly #unsubscribe: (() => void) | undefined;

  /** `now`: the clock of the cache's lifetime and of key expiry (tests inject one). */
  constructor(db: Kysely<Database>, opts: { ttlMs?: number; bus?: Bus; now?: () => number } = {}) {
    this.#db = db;
    this.#ttlMs = opts.ttlMs ?? 30_000;
    this.#now = opts.now ?? Date.now;
    this.#bus = opts.bus;
    this.#unsubscribe = opts.bus?.subscribe(KEYS_INVALIDATE, { onMessage: () => this.#clear(), onGap: () => this.#clear() });
  }

  /**
   * The principal of `key` if it is cached and fresh, without a lookup (the hot path's synchronous
   * check); undefined means "ask resolve()", not "invalid".
   */
  cached(key: string): KeyPrincipal | undefined {
    // Keyed by the key as presented (exact match; no hash per request). The cache holds keys
    // that were used in the last ttlMs, as the requests carrying them did.
    const hit = this.#cache.get(key);
    return hit && hit.until > this.#now() ? hit.principal : undefined;
  }

  async resolve(key: string): Promise<KeyPrincipal | undefined> {
    const hit = this.cached(key);
    if (hit) return hit;
    const now = this.#now();
    const hash = hashKey(key);
    const generation = this.#generation;
    const row = await findApiKeyByHash(this.#db, hash);
    // An expired key is refused like an unknown one (401).
    if (!row || (row.expires_at !== null && row.expires_at <= now)) {
      this.#cache.delete(key);
      return undefined;
    }
    const principal: KeyPrincipal = { kind: 'key', keyId: row.id, workspaceId: row.workspace_id, scopes: row.scopes.split(' ') as Scope[] };
    if (generation === this.#generation) {
      if (this.#cache.size > 10_000) this.#cache.clear();
      // A key that expires is cached no longer than its life.
      this.#cache.set(key, { principal, until: Math.min(now + this.#ttlMs, row.expires_at ?? Infinity) });
    }
    if ((this.#touched.get(row.id) ?? 0) < now - 60_000) {
      this.#touched.set(row.id, now);
      void touchApiKey(this.#db, row.id, now).catch(() => undefined);
    }
    return principal;
  }

  /** After a key changed (revoked): drops this node's cache now and asks every node to drop theirs. */
  invalidate(): void {
    this.#clear();
    void this.#bus?.publish(KEYS_INVALIDATE, '');
  }

  /** Stops listening to the bus. */
  close(): void {
    this.#unsubscribe?.();
  }

  #clear(): void {
    this.#generation++;
    this.#cache.clear();
  }
}
