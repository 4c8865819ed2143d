// Organizations and their members (signed-in users only; an API key is 403: it belongs to one
// organization and has no memberships). Who may do what: orgs/service.ts.
//   POST   /v1/orgs                          {name}  the creator becomes owner
//   GET    /v1/orgs                          the user's organizations with their role
//   GET    /v1/orgs/{org}
//   PATCH  /v1/orgs/{org}                    {name?, require_totp?}
//   GET    /v1/orgs/{org}/members
//   PUT    /v1/orgs/{org}/members/{user}     {role}
//   DELETE /v1/orgs/{org}/members/{user}

import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import type { UserPrincipal } from '../auth/principal.ts';
import { ROLES } from '../domain/roles.ts';
import { Problem } from '../errors.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { iso, problems } from '../http/schemas.ts';

const Name = Type.String({ minLength: 1, maxLength: 200 });
const Role = Type.Union(ROLES.map((r) => Type.Literal(r)));
const OrgParam = Type.Object({ org: Type.String({ minLength: 1, maxLength: 64 }) });
const MemberParams = Type.Object({ org: Type.String({ minLength: 1, maxLength: 64 }), user: Type.String({ minLength: 1, maxLength: 64 }) });
const OrgView = Type.Object({ id: Type.String(), name: Type.String(), role: Type.String(), created_at: Type.String(), require_totp: Type.Boolean({ description: 'Members must have TOTP on to use routes that need a scope' }) });
const MemberView = Type.Object({ user: Type.String(), email: Type.String(), name: Type.String(), role: Type.String(), since: Type.String() });

function userOf(request: FastifyRequest): UserPrincipal {
  const p = request.principal;
  if (p.kind !== 'user') throw new Problem('forbidden', 'Organizations are managed by signed-in users (an access token), not API keys');
  return p;
}

const view = (o: { id: string; name: string; role: string; created_at: number; require_totp: boolean }) => ({ ...o, created_at: iso(o.created_at)! });

function orgRoutes(app: Api, s: Services): void {
  app.post(
    '/orgs',
    {
      schema: {
        summary: 'Create an organization; you become its owner',
        tags: ['organizations'],
        body: Type.Object({ name: Name }, { additionalProperties: false }),
        response: { 201: OrgView, ...problems(401, 403, 422) },
      },
    },
    async (request, reply) => reply.code(201).send(view(await s.orgs.create(userOf(request), request.body.name))),
  );

  app.get(
    '/orgs',
    { schema: { summary: 'Your organizations and your role in each', tags: ['organizations'], response: { 200: Type.Object({ data: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), role: Type.String() })) }), ...problems(401, 403) } } },
    async (request) => ({ data: await s.orgs.list(userOf(request)) }),
  );

  app.get(
    '/orgs/:org',
    { schema: { summary: 'One of your organizations', tags: ['organizations'], params: OrgParam, response: { 200: OrgView, ...problems(401, 403, 404) } } },
    async (request) => view(await s.orgs.get(userOf(request), request.params.org)),
  );

  app.patch(
    '/orgs/:org',
    {
      schema: {
        summary: 'Rename an organization, or require TOTP of its members (admin or owner)',
        tags: ['organizations'],
        params: OrgParam,
        body: Type.Object({ name: Type.Optional(Name), require_totp: Type.Optional(Type.Boolean()) }, { additionalProperties: false, minProperties: 1 }),
        response: { 200: OrgView, ...problems(401, 403, 404, 409, 422) },
      },
    },
    async (request) => view(await s.orgs.update(userOf(request), request.params.org, { name: request.body.name, requireTotp: request.body.require_totp })),
  );

  app.delete(
    '/orgs/:org',
    {
      schema: {
        summary: 'Delete an organization with its keys, memberships and data (owner; not the default organization)',
        tags: ['organizations'],
        params: OrgParam,
        response: { 204: Type.Null(), ...problems(401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      await s.orgs.delete(userOf(request), request.params.org);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/orgs/:org/members',
    { schema: { summary: "An organization's members and their roles", tags: ['organizations'], params: OrgParam, response: { 200: Type.Object({ data: Type.Array(MemberView) }), ...problems(401, 403, 404) } } },
    async (request) => ({
      data: (await s.orgs.members(userOf(request), request.params.org)).map((m) => ({ user: m.user_id, email: m.email, name: m.name, role: m.role, since: iso(m.created_at)! })),
    }),
  );

  app.put(
    '/orgs/:org/members/:user',
    {
      schema: {
        summary: "Set a member's role, or add an existing user (admin; owners only by an owner)",
        tags: ['organizations'],
        params: MemberParams,
        body: Type.Object({ role: Role }, { additionalProperties: false }),
        response: { 200: Type.Object({ user: Type.String(), role: Type.String() }), 201: Type.Object({ user: Type.String(), role: Type.String() }), ...problems(401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      const r = await s.orgs.putMember(userOf(request), request.params.org, request.params.user, request.body.role);
      return reply.code(r.created ? 201 : 200).send({ user: request.params.user, role: request.body.role });
    },
  );

  app.delete(
    '/orgs/:org/members/:user',
    {
      schema: { summary: 'Remove a member (admin), or leave (yourself)', tags: ['organizations'], params: MemberParams, response: { 204: Type.Null(), ...problems(401, 403, 404, 409) } },
    },
    async (request, reply) => {
      await s.orgs.removeMember(userOf(request), request.params.org, request.params.user);
      return reply.code(204).send(null);
    },
  );
}

export const orgsModule: RouteModule = { name: 'orgs', prefix: '/v1', auth: 'principal', apiRole: true, routes: orgRoutes };
