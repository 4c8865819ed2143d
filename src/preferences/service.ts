// Recipients' preferences: read (the defaults when never set), replace, and change in one
// read-modify-write. A change drops the accept path's cached policy of the workspace on every node
// (queue/policy.ts).

import type { Kysely } from 'kysely';
import type { PolicyCache } from '../queue/policy.ts';
import type { StoreAdapter } from '../store/adapter.ts';
import type { Database } from '../store/schema.ts';
import { changePreferences, getPreferences, putPreferences, type KindPreference, type Preferences, type QuietHours } from './store.ts';

export type { KindPreference, Preferences, QuietHours } from './store.ts';

export class PreferenceService {
  readonly #store: StoreAdapter;
  readonly #db: Kysely<Database>;
  readonly #policy: PolicyCache;

  constructor(store: StoreAdapter, deps: { policy: PolicyCache }) {
    this.#store = store;
    this.#db = store.db;
    this.#policy = deps.policy;
  }

  get(workspaceId: string, recipientId: string): Promise<Preferences> {
    return getPreferences(this.#db, workspaceId, recipientId);
  }

  /** Replaces the preferences of an existing recipient with validated ones. */
  async put(p: { workspace_id: string; recipient_id: string; kinds: Record<string, KindPreference>; quiet_hours: QuietHours | null }): Promise<Preferences> {
    const saved = await putPreferences(this.#db, p);
    this.#policy.invalidate(p.workspace_id);
    return saved;
  }

  /**
   * Read-modify-write in one transaction (preferences/store.ts changePreferences): `change` gets the
   * current preferences and the recipient's time zone and returns the new ones, or throws and
   * nothing changes. Undefined when there is no such recipient.
   */
  async change(
    workspaceId: string,
    recipientId: string,
    change: (current: Preferences, timezone: string | null) => { kinds: Record<string, KindPreference>; quiet_hours: QuietHours | null },
  ): Promise<{ preferences: Preferences; timezone: string | null } | undefined> {
    const changed = await changePreferences(this.#store, workspaceId, recipientId, change);
    if (changed) this.#policy.invalidate(workspaceId);
    return changed;
  }
}
