import type { Kysely } from 'kysely';
import { newId } from '../domain/ids.ts';
import type { AuditLogTable, Database } from '../store/schema.ts';

/** Appends to the audit log: who (actor), did what (action) to what (target), why (reason). */
export async function recordAudit(
  db: Kysely<Database>,
  e: { workspaceId: string; actor: string; action: string; target?: string | null; reason?: string | null; details?: unknown },
): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      id: newId('aud'),
      workspace_id: e.workspaceId,
      actor: e.actor,
      action: e.action,
      target: e.target ?? null,
      reason: e.reason ?? null,
      details: e.details === undefined ? null : JSON.stringify(e.details),
      created_at: Date.now(),
    })
    .execute();
}

export async function listAudit(db: Kysely<Database>, workspaceId: string, q: { before?: string | undefined; limit: number; action?: string | undefined }): Promise<AuditLogTable[]> {
  let query = db.selectFrom('audit_log').selectAll().where('workspace_id', '=', workspaceId);
  if (q.before) query = query.where('id', '<', q.before);
  if (q.action) query = query.where('action', '=', q.action);
  return query.orderBy('id', 'desc').limit(q.limit).execute();
}
