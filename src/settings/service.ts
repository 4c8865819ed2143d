// Workspace settings: read (the defaults when never set) and replace. A change drops the accept
// path's cached policy of the workspace on every node (queue/policy.ts) and is audited.

import type { Kysely } from 'kysely';
import type { AuditService } from '../audit/service.ts';
import type { PolicyCache } from '../queue/policy.ts';
import type { Database } from '../store/schema.ts';
import { getSettings, putSettings, type BlackoutWindow, type WorkspaceSettings } from './store.ts';

export { DEFAULT_LOCALE, type BlackoutWindow, type WorkspaceSettings } from './store.ts';

export class SettingsService {
  readonly #db: Kysely<Database>;
  readonly #policy: PolicyCache;
  readonly #audit: AuditService;

  constructor(db: Kysely<Database>, deps: { policy: PolicyCache; audit: AuditService }) {
    this.#db = db;
    this.#policy = deps.policy;
    this.#audit = deps.audit;
  }

  get(workspaceId: string): Promise<WorkspaceSettings> {
    return getSettings(this.#db, workspaceId);
  }

  /** Replaces the settings with validated, canonical values; `request` is what the actor asked for (audited as given). */
  async put(workspaceId: string, actor: string, settings: { default_locale: string; channel_blackouts: Record<string, BlackoutWindow> | null }, request: unknown): Promise<WorkspaceSettings> {
    const saved = await putSettings(this.#db, { workspace_id: workspaceId, ...settings });
    this.#policy.invalidate(workspaceId);
    await this.#audit.record({ workspaceId, actor, action: 'settings.put', details: request });
    return saved;
  }
}
