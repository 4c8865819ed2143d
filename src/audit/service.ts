// The audit log: who (actor, auth/principal.ts actorOf, or "system") did what (action) to what
// (target) and why (reason). Other features record through this service; only the audit routes
// read it.

import type { Kysely } from 'kysely';
import type { AuditLogTable, Database } from '../store/schema.ts';
import { listAudit, recordAudit } from './store.ts';

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

  /** Newest first, keyset-paged by id. */
  list(workspaceId: string, q: { before?: string | undefined; limit: number; action?: string | undefined }): Promise<AuditLogTable[]> {
    return listAudit(this.#db, workspaceId, q);
  }
}
