// Workspace provider credentials: sealed at rest, opened and cached per workspace for the accept
// path (which channels a workspace can use) and the workers (the credentials of a delivery).
//
// Cache contract: an entry lives at most `ttlMs`. A change made through `put`/`delete` drops the
// entry on this node at once and on every other node through the bus (PROVIDERS_INVALIDATE, the
// message is the workspace id); a node that misses the message converges within ttlMs, and drops
// everything when its bus reconnects. A load that started before an invalidation does not cache
// what it read, and a read after the invalidation does not wait for that load but reads again.

import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { SecretBox } from '../auth/secret-box.ts';
import type { Bus } from '../bus/bus.ts';
import { deleteProvider, listProviders, putProvider } from './store.ts';
import type { Database, ProvidersTable } from '../store/schema.ts';
import { CHANNEL_NAMES, CHANNEL_PROVIDER, PROVIDER_NAMES, type ChannelName, type ProviderCredentials, type ProviderName } from '../channels/channel.ts';

export const PROVIDERS_INVALIDATE = 'providers.invalidate';

interface Entry {
  at: number;
  byProvider: Map<ProviderName, ProviderCredentials & { updatedAt: number; createdAt: number }>;
}

export type StoredProvider = ProviderCredentials & { updatedAt: number; createdAt: number };

export class ProviderRegistry {
  readonly #db: Kysely<Database>;
  readonly #secrets: SecretBox;
  readonly #bus: Bus | undefined;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, Entry>();
  readonly #loading = new Map<string, Promise<Entry>>();
  readonly #unsubscribe: (() => void) | undefined;
  /** Bumped by every invalidation: a load caches its result only if none happened meanwhile. */
  #generation = 0;
  /** Channels usable without workspace credentials on this deployment (email with HERALD_SMTP_URL). */
  readonly #global: ReadonlySet<ChannelName>;

  /** `now`: the clock of the cache's lifetime and of the rows' times (tests inject one). */
  constructor(db: Kysely<Database>, secrets: SecretBox, opts: { bus?: Bus; ttlMs?: number; globalChannels?: Iterable<ChannelName>; now?: () => number } = {}) {
    this.#db = db;
    this.#now = opts.now ?? Date.now;
    this.#secrets = secrets;
    this.#bus = opts.bus;
    this.#ttlMs = opts.ttlMs ?? 30_000;
    this.#global = new Set(opts.globalChannels ?? []);
    this.#unsubscribe = opts.bus?.subscribe(PROVIDERS_INVALIDATE, {
      onMessage: (ws) => this.#drop(ws),
      onGap: () => this.#drop(),
    });
  }

  async #entry(workspaceId: string): Promise<Entry> {
    const hit = this.#cache.get(workspaceId);
    if (hit && this.#now() - hit.at < this.#ttlMs) return hit;
    let loading = this.#loading.get(workspaceId);
    if (!loading) {
      const started = this.#load(workspaceId).finally(() => {
        if (this.#loading.get(workspaceId) === started) this.#loading.delete(workspaceId);
      });
      this.#loading.set(workspaceId, started);
      loading = started;
    }
    return loading;
  }

  async #load(workspaceId: string): Promise<Entry> {
    const generation = this.#generation;
    const rows = await listProviders(this.#db, workspaceId);
    const byProvider = new Map<ProviderName, StoredProvider>();
    for (const row of rows) {
      if (!(PROVIDER_NAMES as readonly string[]).includes(row.provider)) continue;
      byProvider.set(row.provider as ProviderName, this.#open(row));
    }
    const entry = { at: this.#now(), byProvider };
    if (generation === this.#generation) this.#cache.set(workspaceId, entry);
    return entry;
  }

  #open(row: ProvidersTable): StoredProvider {
    return {
      provider: row.provider as ProviderName,
      config: JSON.parse(this.#secrets.open(row.config)) as Record<string, unknown>,
      baseUrl: row.base_url,
      version: createHash('sha256').update(`${row.workspace_id}\u0000${row.config}\u0000${row.base_url ?? ''}`).digest('base64url').slice(0, 16),
      updatedAt: row.updated_at,
      createdAt: row.created_at,
    };
  }

  /** The workspace's credentials for `provider`, or undefined. */
  async get(workspaceId: string, provider: ProviderName): Promise<StoredProvider | undefined> {
    return (await this.#entry(workspaceId)).byProvider.get(provider);
  }

  async list(workspaceId: string): Promise<StoredProvider[]> {
    return [...(await this.#entry(workspaceId)).byProvider.values()];
  }

  /**
   * The channels the workspace can deliver on, in default priority order (CHANNEL_NAMES): those
   * that need no credentials, those configured globally, and those whose provider it configured.
   */
  async channels(workspaceId: string): Promise<ChannelName[]> {
    const { byProvider } = await this.#entry(workspaceId);
    return CHANNEL_NAMES.filter((c) => {
      const p = CHANNEL_PROVIDER[c];
      return p === null || this.#global.has(c) || byProvider.has(p);
    });
  }

  async put(workspaceId: string, provider: ProviderName, config: Record<string, unknown>, baseUrl: string | null): Promise<{ created: boolean; stored: StoredProvider }> {
    const now = this.#now();
    const row: ProvidersTable = { workspace_id: workspaceId, provider, config: this.#secrets.seal(JSON.stringify(config)), base_url: baseUrl, created_at: now, updated_at: now };
    const created = await putProvider(this.#db, row);
    this.invalidate(workspaceId);
    const stored = await this.get(workspaceId, provider);
    return { created, stored: stored! };
  }

  async delete(workspaceId: string, provider: ProviderName): Promise<boolean> {
    const deleted = await deleteProvider(this.#db, workspaceId, provider);
    this.invalidate(workspaceId);
    return deleted;
  }

  /** Drops the workspace's cached credentials here and on every node. */
  invalidate(workspaceId: string): void {
    this.#drop(workspaceId);
    void this.#bus?.publish(PROVIDERS_INVALIDATE, workspaceId);
  }

  close(): void {
    this.#unsubscribe?.();
  }

  /** Forgets the workspace's entry (every entry without one) and any load under way for it. */
  #drop(workspaceId?: string): void {
    this.#generation++;
    if (workspaceId === undefined) {
      this.#cache.clear();
      this.#loading.clear();
    } else {
      this.#cache.delete(workspaceId);
      this.#loading.delete(workspaceId);
    }
  }
}

