// What the accept path reads about a workspace's policy: its kinds, settings (default locale,
// channel blackouts) and templates, cached per workspace.
//
// Cache contract: an entry lives at most `ttlMs`. A change made through the API calls
// `invalidate(workspace)`, which drops the entry on this node at once and on every other node
// through the bus (POLICY_INVALIDATE, the message is the workspace id); a node that misses the
// message converges within ttlMs, and drops everything when its bus reconnects.
// A send naming a kind the workspace never defined gets the `transactional` kind's policy (and
// keeps its own name); the default kinds always exist (kinds/store.ts).

import type { Kysely } from 'kysely';
import type { Bus } from '../bus/bus.ts';
import type { Kind } from '../domain/kinds.ts';
import { getKind } from '../kinds/store.ts';
import type { Database } from '../store/schema.ts';
import { getSettings, type WorkspaceSettings } from '../settings/store.ts';
import { getTemplate, type Template } from '../templates/store.ts';

export const POLICY_INVALIDATE = 'policy.invalidate';

interface Entry {
  at: number;
  kinds: Map<string, Promise<Kind>>;
  settings?: Promise<WorkspaceSettings>;
  hasPreferences?: Promise<boolean>;
  templates: Map<string, Promise<Template | undefined>>;
}

export class PolicyCache {
  readonly #db: Kysely<Database>;
  readonly #bus: Bus | undefined;
  readonly #ttlMs: number;
  readonly #entries = new Map<string, Entry>();
  readonly #unsubscribe: (() => void) | undefined;

  constructor(db: Kysely<Database>, opts: { bus?: Bus; ttlMs?: number } = {}) {
    this.#db = db;
    this.#bus = opts.bus;
    this.#ttlMs = opts.ttlMs ?? 30_000;
    this.#unsubscribe = opts.bus?.subscribe(POLICY_INVALIDATE, {
      onMessage: (ws) => this.#entries.delete(ws),
      onGap: () => this.#entries.clear(),
    });
  }

  #entry(ws: string): Entry {
    let e = this.#entries.get(ws);
    if (!e || Date.now() - e.at >= this.#ttlMs) {
      e = { at: Date.now(), kinds: new Map(), templates: new Map() };
      this.#entries.set(ws, e);
    }
    return e;
  }

  /** A failed read is not cached. */
  #memo<T>(map: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
    let p = map.get(key);
    if (!p) {
      p = load();
      map.set(key, p);
      p.catch(() => map.delete(key));
    }
    return p;
  }

  kind(ws: string, name: string): Promise<Kind> {
    return this.#memo(this.#entry(ws).kinds, name, async () => {
      const own = await getKind(this.#db, ws, name);
      if (own) return own;
      const fallback = (await getKind(this.#db, ws, 'transactional'))!;
      return { ...fallback, kind: name };
    });
  }

  settings(ws: string): Promise<WorkspaceSettings> {
    const e = this.#entry(ws);
    if (!e.settings) {
      e.settings = getSettings(this.#db, ws);
      e.settings.catch(() => (e.settings = undefined));
    }
    return e.settings;
  }

  /**
   * Whether any recipient of the workspace has stored preferences: when none has, the send path
   * skips reading them. A PUT of preferences must `invalidate`.
   */
  hasPreferences(ws: string): Promise<boolean> {
    const e = this.#entry(ws);
    if (!e.hasPreferences) {
      e.hasPreferences = this.#db
        .selectFrom('preferences')
        .select('recipient_id')
        .where('workspace_id', '=', ws)
        .limit(1)
        .executeTakeFirst()
        .then((r) => r !== undefined);
      e.hasPreferences.catch(() => (e.hasPreferences = undefined));
    }
    return e.hasPreferences;
  }

  /** The latest version of a template. */
  template(ws: string, key: string): Promise<Template | undefined> {
    return this.#memo(this.#entry(ws).templates, key, () => getTemplate(this.#db, ws, key));
  }

  /** Drops the workspace's cached policy here and on every node. */
  invalidate(ws: string): void {
    this.#entries.delete(ws);
    void this.#bus?.publish(POLICY_INVALIDATE, ws);
  }

  close(): void {
    this.#unsubscribe?.();
  }
}
