// Invitations (orgs/invitations.ts).
//   POST   /v1/orgs/{org}/invitations        {email, role}  admin; emails a single-use link (7 days)
//   GET    /v1/orgs/{org}/invitations                       admin; newest first, with status
//   DELETE /v1/orgs/{org}/invitations/{id}                  admin; revokes a pending one
//   POST   /v1/invitations/{token}/accept    {} signed in, or {name, password} to register

import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import { authenticate, credentialOf, type UserPrincipal } from '../auth/principal.ts';
import { MAX_PASSWORD_LENGTH } from '../domain/password-policy.ts';
import { ROLES } from '../domain/roles.ts';
import { Problem } from '../errors.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { iso, problems } from '../http/schemas.ts';
import type { InvitationView } from './invitations.ts';

const Role = Type.Union(ROLES.map((r) => Type.Literal(r)));
const OrgParam = Type.Object({ org: Type.String({ minLength: 1, maxLength: 64 }) });
const NullStr = Type.Union([Type.String(), Type.Null()]);
const InvitationSchema = Type.Object({
  id: Type.String(),
  organization: Type.String(),
  email: Type.String(),
  role: Type.String(),
  status: Type.String({ description: 'pending, accepted, revoked or expired' }),
  invited_by: Type.String(),
  created_at: Type.String(),
  expires_at: Type.String(),
  accepted_at: NullStr,
  accepted_by: NullStr,
});
const Accepted = Type.Object({
  user: Type.Object({ id: Type.String(), email: Type.String(), name: Type.String(), created_at: Type.String() }),
  organization: Type.Object({ id: Type.String(), name: Type.String(), role: Type.String() }),
});

const invitationView = (i: InvitationView) => ({ ...i, created_at: iso(i.created_at)!, expires_at: iso(i.expires_at)!, accepted_at: iso(i.accepted_at) });

function userOf(request: FastifyRequest): UserPrincipal {
  const p = request.principal;
  if (p.kind !== 'user') throw new Problem('forbidden', 'Invitations are managed by signed-in users (an access token), not API keys');
  return p;
}

function manageRoutes(app: Api, s: Services): void {
  app.post(
    '/orgs/:org/invitations',
    {
      schema: {
        summary: 'Invite an email address to the organization with a role (emails a single-use link valid 7 days)',
        tags: ['organizations'],
        params: OrgParam,
        body: Type.Object({ email: Type.String({ format: 'email', minLength: 3, maxLength: 254 }), role: Role }, { additionalProperties: false }),
        response: { 201: InvitationSchema, ...problems(401, 403, 404, 409, 422, 503) },
      },
    },
    async (request, reply) => reply.code(201).send(invitationView(await s.invitations.create(userOf(request), request.params.org, request.body))),
  );

  app.get(
    '/orgs/:org/invitations',
    { schema: { summary: "The organization's invitations, newest first", tags: ['organizations'], params: OrgParam, response: { 200: Type.Object({ data: Type.Array(InvitationSchema) }), ...problems(401, 403, 404) } } },
    async (request) => ({ data: (await s.invitations.list(userOf(request), request.params.org)).map(invitationView) }),
  );

  app.delete(
    '/orgs/:org/invitations/:id',
    {
      schema: {
        summary: 'Revoke a pending invitation',
        tags: ['organizations'],
        params: Type.Object({ org: Type.String({ minLength: 1, maxLength: 64 }), id: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 204: Type.Null(), ...problems(401, 403, 404) },
      },
    },
    async (request, reply) => {
      await s.invitations.revoke(userOf(request), request.params.org, request.params.id);
      return reply.code(204).send(null);
    },
  );
}

function acceptRoutes(app: Api, s: Services): void {
  app.post(
    '/invitations/:token/accept',
    {
      schema: {
        summary: 'Accept an invitation: signed in (body {}), or registering with {name, password}',
        tags: ['organizations'],
        security: [],
        params: Type.Object({ token: Type.String({ minLength: 1, maxLength: 200 }) }),
        body: Type.Object(
          { name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })), password: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH * 4 })) },
          { additionalProperties: false },
        ),
        response: { 200: Accepted, 201: Accepted, ...problems(400, 401, 403, 409, 422) },
      },
    },
    async (request, reply) => {
      const client = { ip: request.ip, userAgent: request.headers['user-agent'] };
      const { name, password } = request.body;
      let as: { userId: string } | { name: string; password: string };
      if (request.headers.authorization !== undefined || request.headers.cookie !== undefined) {
        const credential = credentialOf(request, s.config.publicUrl);
        if (credential instanceof Problem) throw credential;
        // A cookie without an access token is no credential: the person registers instead.
        const principal = credential.value === undefined && credential.carrier === 'authorization' ? undefined : await authenticate(credential, s.keys, s.accounts);
        if (principal instanceof Problem) throw principal;
        if (principal && principal.kind !== 'user') throw new Problem('forbidden', 'An API key cannot accept invitations; sign in, or register with {name, password}');
        as = principal ? { userId: principal.userId } : registration(name, password);
      } else {
        as = registration(name, password);
      }
      const r = await s.invitations.accept(request.params.token, as, client);
      return reply.code(r.created ? 201 : 200).send({ user: { ...r.user, created_at: iso(r.user.created_at)! }, organization: r.organization });
    },
  );
}

function registration(name: string | undefined, password: string | undefined): { name: string; password: string } {
  if (name === undefined || password === undefined) {
    const missing = [name === undefined && 'body.name', password === undefined && 'body.password'].filter((x): x is string => Boolean(x));
    throw new Problem('validation_failed', 'Sign in to accept, or send {name, password} to register', { errors: missing.map((path) => ({ path, message: 'required to register' })) });
  }
  return { name, password };
}

export const invitationsModule: RouteModule = { name: 'invitations', prefix: '/v1', auth: 'principal', apiRole: true, routes: manageRoutes };
export const invitationAcceptModule: RouteModule = { name: 'invitation-accept', prefix: '/v1', auth: 'none', apiRole: true, routes: acceptRoutes };
