// The audit log: who (actor, auth/principal.ts actorOf, or "system") did what (action) to what
// (target) and why (reason). Other features record through this service; only the audit routes
// read it.

import type { Kysely } from 'kysely';
import type { AuditLogTable, Database } from '../store/schema.ts';
import { listAudit, recordAudit, type AuditQuery } from './store.ts';

export interface AuditEntry {
  workspaceId: string;
  actor: string;
  action: string;
  target?: string | null;
  reason?: string | null;
  details?: unknown;
}

export class AuditService {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  record(e: AuditEntry): Promise<void> {
    return recordAudit(this.#db, e);
  }

  /** Newest first, keyset-paged by id; each filter exact, from inclusive and to exclusive (ms). */
  list(workspaceId: string, q: AuditQuery): Promise<AuditLogTable[]> {
    return listAudit(this.#db, workspaceId, q);
  }
}
