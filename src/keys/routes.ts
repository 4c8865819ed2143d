// API keys (admin scope). The key itself is only ever shown in the response that creates it.
//   POST   /v1/keys        {name, scopes, expires_at?}   expires_at: an RFC 3339 time in the future
//   GET    /v1/keys
//   DELETE /v1/keys/{id}   revoke

import { Type } from 'typebox';
import { actorOf } from '../auth/principal.ts';
import { SCOPES } from '../auth/scopes.ts';
import { Problem } from '../errors.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { iso, problems } from '../http/schemas.ts';

const Scope = Type.Union(SCOPES.map((sc) => Type.Literal(sc)));
const KeyView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  prefix: Type.String(),
  created_at: Type.String(),
  last_used_at: Type.Union([Type.String(), Type.Null()]),
  revoked_at: Type.Union([Type.String(), Type.Null()]),
  created_by: Type.Union([Type.String(), Type.Null()], { description: '"user:<id>" or "key:<id>" that created the key; null: made by configuration or the CLI' }),
  expires_at: Type.Union([Type.String(), Type.Null()], { description: 'From then on the key is refused (401); null: never' }),
});

function keyRoutes(app: Api, s: Services): void {
  app.post(
    '/keys',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Create an API key (shown once)',
        tags: ['keys'],
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 100 }),
            scopes: Type.Array(Scope, { minItems: 1, uniqueItems: true }),
            expires_at: Type.Optional(Type.String({ format: 'date-time', maxLength: 64, description: 'When the key stops working (in the future); omitted: never' })),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({ id: Type.String(), key: Type.String(), prefix: Type.String(), scopes: Type.Array(Type.String()), created_by: Type.String(), expires_at: Type.Union([Type.String(), Type.Null()]) }),
          ...problems(401, 403, 422),
        },
      },
    },
    async (request, reply) => {
      const { name, scopes, expires_at } = request.body;
      const expiresAt = expires_at === undefined ? null : Date.parse(expires_at);
      if (expiresAt !== null && !(expiresAt > Date.now())) throw new Problem('validation_failed', 'expires_at must be a time in the future', { errors: [{ path: 'body.expires_at', message: 'must be in the future' }] });
      const actor = actorOf(request.principal);
      const created = await s.apiKeys.create(request.principal.workspaceId, actor, { name, scopes, expiresAt });
      return reply.code(201).send({ ...created, scopes, created_by: actor, expires_at: iso(expiresAt) });
    },
  );

  app.get(
    '/keys',
    { config: { scope: 'admin' }, schema: { summary: 'List API keys', tags: ['keys'], response: { 200: Type.Object({ data: Type.Array(KeyView) }), ...problems(401, 403) } } },
    async (request) => {
      const rows = await s.apiKeys.list(request.principal.workspaceId);
      return {
        data: rows.map((k) => ({ id: k.id, name: k.name, scopes: k.scopes.split(' '), prefix: k.prefix, created_at: iso(k.created_at)!, last_used_at: iso(k.last_used_at), revoked_at: iso(k.revoked_at), created_by: k.created_by, expires_at: iso(k.expires_at) })),
      };
    },
  );

  app.delete(
    '/keys/:id',
    {
      config: { scope: 'admin' },
      schema: { summary: 'Revoke an API key', tags: ['keys'], params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { 204: Type.Null(), ...problems(401, 403, 404) } },
    },
    async (request, reply) => {
      const ok = await s.apiKeys.revoke(request.principal.workspaceId, actorOf(request.principal), request.params.id);
      if (!ok) throw new Problem('not_found', `No active key "${request.params.id}"`);
      return reply.code(204).send(null);
    },
  );
}

export const keysModule: RouteModule = { name: 'keys', prefix: '/v1', auth: 'principal', apiRole: true, routes: keyRoutes };
