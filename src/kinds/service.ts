// Notification kinds of a workspace: read (the default kinds always exist) and create or replace.
// A change drops the accept path's cached policy of the workspace on every node (queue/policy.ts)
// and is audited.

import type { Kysely } from 'kysely';
import type { AuditService } from '../audit/service.ts';
import type { Kind, KindPolicy } from '../domain/kinds.ts';
import type { PolicyCache } from '../queue/policy.ts';
import type { Database } from '../store/schema.ts';
import { getKind, getKinds, listKinds, putKind } from './store.ts';

export class KindService {
  readonly #db: Kysely<Database>;
  readonly #policy: PolicyCache;
  readonly #audit: AuditService;

  constructor(db: Kysely<Database>, deps: { policy: PolicyCache; audit: AuditService }) {
    this.#db = db;
    this.#policy = deps.policy;
    this.#audit = deps.audit;
  }

  /** By name, keyset-paged after `after`. */
  list(workspaceId: string, q: { after?: string | undefined; limit: number }): Promise<Kind[]> {
    return listKinds(this.#db, workspaceId, q);
  }

  get(workspaceId: string, kind: string): Promise<Kind | undefined> {
    return getKind(this.#db, workspaceId, kind);
  }

  /** The named kinds that exist, by name. */
  getMany(workspaceId: string, kinds: readonly string[]): Promise<Map<string, Kind>> {
    return getKinds(this.#db, workspaceId, kinds);
  }

  /** Creates or replaces `kind` with a validated policy; `request` is what the actor asked for (audited as given). */
  async put(workspaceId: string, actor: string, kind: string, policy: KindPolicy, request: unknown): Promise<{ kind: Kind; created: boolean }> {
    const r = await putKind(this.#db, workspaceId, kind, policy);
    this.#policy.invalidate(workspaceId);
    await this.#audit.record({ workspaceId, actor, action: 'kind.put', target: r.kind.kind, details: request });
    return r;
  }
}
