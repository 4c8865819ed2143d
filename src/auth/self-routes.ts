// The signed-in user's own account (auth/self-service.ts).
//   POST   /v1/auth/password  {current_password, new_password}  other sessions end
//   DELETE /v1/auth/me        {password}                         erases the account
//   GET    /v1/auth/identities                                   linked external identities
//   DELETE /v1/auth/identities/{provider}                        unlinks (never the last way to sign in)

import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import { MAX_PASSWORD_LENGTH } from '../domain/password-policy.ts';
import { Problem } from '../errors.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { problems } from '../http/schemas.ts';
import { clearedCookies, cookieScope } from './cookies.ts';
import type { UserPrincipal } from './principal.ts';

const Password = Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH * 4 });

function userOf(request: FastifyRequest): UserPrincipal {
  const p = request.principal;
  if (p.kind !== 'user') throw new Problem('forbidden', 'This needs a signed-in user (an access token), not an API key');
  return p;
}

function selfRoutes(app: Api, s: Services): void {
  app.post(
    '/password',
    {
      schema: {
        summary: "Change the password; the user's other sessions end",
        tags: ['auth'],
        body: Type.Object({ current_password: Password, new_password: Password }, { additionalProperties: false }),
        response: { 200: Type.Object({ sessions_ended: Type.Integer() }), ...problems(401, 403, 422) },
      },
    },
    async (request) => ({ sessions_ended: await s.self.changePassword(userOf(request), request.body.current_password, request.body.new_password) }),
  );

  app.delete(
    '/me',
    {
      schema: {
        summary: "Erase the signed-in user's account and personal data (refused while the only owner of an organization)",
        tags: ['auth'],
        body: Type.Object({ password: Password }, { additionalProperties: false }),
        response: { 204: Type.Null(), ...problems(401, 403, 409, 422) },
      },
    },
    async (request, reply) => {
      await s.self.erase(userOf(request), request.body.password);
      reply.header('set-cookie', clearedCookies(cookieScope(request.protocol, s.config.publicUrl)));
      return reply.code(204).send(null);
    },
  );
}

function identityRoutes(app: Api, s: Services): void {
  app.get(
    '/identities',
    {
      schema: {
        summary: 'The external identities (GitHub, Google, OIDC) linked to the signed-in user',
        tags: ['auth'],
        response: {
          200: Type.Object({ data: Type.Array(Type.Object({ provider: Type.String(), subject: Type.String(), email: Type.Union([Type.String(), Type.Null()]), login: Type.Union([Type.String(), Type.Null()]), created_at: Type.String() })) }),
          ...problems(401, 403),
        },
      },
    },
    async (request) => ({ data: (await s.oauth.identities(userOf(request))).map((i) => ({ ...i, created_at: new Date(i.created_at).toISOString() })) }),
  );

  app.delete(
    '/identities/:provider',
    {
      schema: {
        summary: "Unlink the user's identity of a provider (refused when it is the last way to sign in)",
        tags: ['auth'],
        params: Type.Object({ provider: Type.String({ minLength: 1, maxLength: 64, description: 'A provider id, as GET /v1/auth/identities lists it' }) }),
        response: { 204: Type.Null(), ...problems(401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      await s.oauth.unlink(userOf(request), request.params.provider);
      return reply.code(204).send(null);
    },
  );
}

export const selfModule: RouteModule = { name: 'auth-self', prefix: '/v1/auth', auth: 'principal', apiRole: true, routes: (app, s) => {
    selfRoutes(app, s);
    identityRoutes(app, s);
  } };
