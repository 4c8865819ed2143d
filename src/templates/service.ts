// Templates of a workspace: append-only versions per key. A change drops the accept path's cached
// policy of the workspace on every node (queue/policy.ts) and is audited.

import type { Kysely } from 'kysely';
import type { AuditService } from '../audit/service.ts';
import type { PolicyCache } from '../queue/policy.ts';
import type { StoreAdapter } from '../store/adapter.ts';
import type { Database } from '../store/schema.ts';
import { deleteTemplate, getTemplate, listTemplates, putTemplate, type Template, type TemplateSummary, type TemplateVariant } from './store.ts';

export type { Template, TemplateSummary, TemplateVariant } from './store.ts';

export class TemplateService {
  readonly #store: StoreAdapter;
  readonly #db: Kysely<Database>;
  readonly #policy: PolicyCache;
  readonly #audit: AuditService;

  constructor(store: StoreAdapter, deps: { policy: PolicyCache; audit: AuditService }) {
    this.#store = store;
    this.#db = store.db;
    this.#policy = deps.policy;
    this.#audit = deps.audit;
  }

  /** Writes the next version of `key` (1 for a new key) from validated variants. */
  async put(workspaceId: string, actor: string, key: string, variants: TemplateVariant[]): Promise<Template> {
    const template = await putTemplate(this.#store, workspaceId, key, variants);
    this.#policy.invalidate(workspaceId);
    await this.#audit.record({ workspaceId, actor, action: 'template.put', target: template.key, details: { version: template.version } });
    return template;
  }

  /** Keys with their latest version, keyset-paged after `after`. */
  list(workspaceId: string, q: { after?: string | undefined; limit: number }): Promise<TemplateSummary[]> {
    return listTemplates(this.#db, workspaceId, q);
  }

  /** The latest version, or `version`. */
  get(workspaceId: string, key: string, version?: number): Promise<Template | undefined> {
    return getTemplate(this.#db, workspaceId, key, version);
  }

  /** Deletes every version; false when there is no such template. */
  async delete(workspaceId: string, actor: string, key: string): Promise<boolean> {
    if (!(await deleteTemplate(this.#db, workspaceId, key))) return false;
    this.#policy.invalidate(workspaceId);
    await this.#audit.record({ workspaceId, actor, action: 'template.delete', target: key });
    return true;
  }
}
