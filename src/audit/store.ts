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

export interface AuditQuery {
  before?: string | undefined;
  limit: number;
  actor?: string | undefined;
  action?: string | undefined;
  target?: string | undefined;
  /** ms, inclusive. */
  from?: number | undefined;
  /** ms, exclusive. */
  to?: number | undefined;
}

export async function listAudit(db: Kysely<Database>, workspaceId: string, q: AuditQuery): Promise<AuditLogTable[]> {
  let query = db.selectFrom('audit_log').selectAll().where('workspace_id', '=', workspaceId);
  if (q.before) query = query.where('id', '<', q.before);
  if (q.actor) query = query.where('actor', '=', q.actor);
  if (q.action) query = query.where('action', '=', q.action);
  if (q.target) query = query.where('target', '=', q.target);
  if (q.from !== undefined) query = query.where('created_at', '>=', q.from);
  if (q.to !== undefined) query = query.where('created_at', '<', q.to);
  return query.orderBy('id', 'desc').limit(q.limit).execute();
}

/**
 * Retention: deletes up to `limit` entries (any organization) created before `before`; how many.
 * Only the retention job calls this (no route deletes entries).
 */
export async function purgeAuditBefore(db: Kysely<Database>, before: number, limit: number): Promise<number> {
  const ids = await db.selectFrom('audit_log').select('id').where('created_at', '<', before).limit(limit).execute();
  if (ids.length === 0) return 0;
  const r = await db.deleteFrom('audit_log').where('id', 'in', ids.map((i) => i.id)).executeTakeFirst();
  return Number(r.numDeletedRows);
}
