// The audit log (admin scope): who did what to what, when and why. Read-only: no route changes or
// deletes entries (old ones go only by the retention purge, audit/jobs.ts).
//   GET /v1/audit?actor=&action=&target=&from=&to=&limit=&cursor=   newest first, keyset cursor;
//   every filter is exact (actor "user:<id>" or "key:<id>"); from inclusive, to exclusive

import { Type, type Static } from 'typebox';
import type { AuditLogTable } from '../store/schema.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { Cursor, iso, Limit, Page, pageOf, pageRequest, problems } from '../http/schemas.ts';

const NullStr = Type.Union([Type.String(), Type.Null()]);

export const AuditEntryView = Type.Object({
  id: Type.String(),
  actor: Type.String({ description: '"key:<key id>", "user:<user id>", "anonymous" or "system"' }),
  action: Type.String(),
  target: NullStr,
  reason: NullStr,
  details: Type.Unknown(),
  created_at: Type.String(),
});

function auditView(a: AuditLogTable): Static<typeof AuditEntryView> {
  return {
    id: a.id,
    actor: a.actor,
    action: a.action,
    target: a.target,
    reason: a.reason,
    details: a.details === null ? null : JSON.parse(a.details),
    created_at: iso(a.created_at)!,
  };
}

function auditRoutes(app: Api, s: Services): void {
  app.get(
    '/audit',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'List the audit log, newest first',
        tags: ['audit'],
        querystring: Type.Object(
          {
            actor: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Only this actor, e.g. user:usr_… or key:key_…' })),
            action: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Only this action, e.g. dlq.replay' })),
            target: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Only entries about this target (an id)' })),
            from: Type.Optional(Type.String({ format: 'date-time', maxLength: 64, description: 'Entries at or after this time' })),
            to: Type.Optional(Type.String({ format: 'date-time', maxLength: 64, description: 'Entries before this time' })),
            limit: Type.Optional(Limit),
            cursor: Type.Optional(Cursor),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Page(AuditEntryView),
          ...problems(400, 401, 403, 422),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const { before, limit } = pageRequest(q);
      const from = q.from === undefined ? undefined : Date.parse(q.from);
      const to = q.to === undefined ? undefined : Date.parse(q.to);
      const page = pageOf(await s.audit.list(request.principal.workspaceId, { actor: q.actor, action: q.action, target: q.target, from, to, before, limit: limit + 1 }), limit);
      return { data: page.rows.map(auditView), next_cursor: page.next_cursor };
    },
  );
}

export const auditModule: RouteModule = { name: 'audit', prefix: '/v1', auth: 'principal', apiRole: true, routes: auditRoutes };
