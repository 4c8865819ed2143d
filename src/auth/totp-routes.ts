// The signed-in user's TOTP second factor (auth/totp.ts).
//   GET  /v1/auth/totp                                   {enabled, pending, recovery_codes_left}
//   POST /v1/auth/totp                                   enrol: {secret, otpauth_uri} (shown once)
//   POST /v1/auth/totp/confirm   {code}                  on: {recovery_codes} (shown once)
//   POST /v1/auth/totp/disable   {password} or {code}    off

import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import { MAX_PASSWORD_LENGTH } from '../domain/password-policy.ts';
import { Problem } from '../errors.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { problems } from '../http/schemas.ts';
import type { UserPrincipal } from './principal.ts';

function userOf(request: FastifyRequest): UserPrincipal {
  const p = request.principal;
  if (p.kind !== 'user') throw new Problem('forbidden', 'This needs a signed-in user (an access token), not an API key');
  return p;
}

const Code = Type.String({ minLength: 1, maxLength: 64, description: 'A 6-digit code of the authenticator app (or, to disable, a recovery code)' });

function totpRoutes(app: Api, s: Services): void {
  app.get(
    '/totp',
    {
      schema: {
        summary: "The signed-in user's TOTP state",
        tags: ['auth'],
        response: { 200: Type.Object({ enabled: Type.Boolean(), pending: Type.Boolean(), recovery_codes_left: Type.Integer() }), ...problems(401, 403) },
      },
    },
    async (request) => s.totp.status(userOf(request)),
  );

  app.post(
    '/totp',
    {
      schema: {
        summary: 'Enrol an authenticator: a new secret and its otpauth:// URI (confirm with a code to turn TOTP on)',
        tags: ['auth'],
        response: { 201: Type.Object({ secret: Type.String({ description: 'base32' }), otpauth_uri: Type.String() }), ...problems(401, 403, 409) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return reply.code(201).send(await s.totp.enrol(userOf(request)));
    },
  );

  app.post(
    '/totp/confirm',
    {
      schema: {
        summary: 'Turn TOTP on with a code from the enrolled authenticator; answers the recovery codes (shown once)',
        tags: ['auth'],
        body: Type.Object({ code: Code }, { additionalProperties: false }),
        response: { 200: Type.Object({ recovery_codes: Type.Array(Type.String()) }), ...problems(401, 403, 409, 422) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return s.totp.confirm(userOf(request), request.body.code);
    },
  );

  app.post(
    '/totp/disable',
    {
      schema: {
        summary: 'Turn TOTP off, proven with the password or a code (TOTP or recovery)',
        tags: ['auth'],
        body: Type.Object({ password: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH * 4 })), code: Type.Optional(Code) }, { additionalProperties: false }),
        response: { 204: Type.Null(), ...problems(401, 403, 409, 422) },
      },
    },
    async (request, reply) => {
      await s.totp.disable(userOf(request), request.body);
      return reply.code(204).send(null);
    },
  );
}

export const totpModule: RouteModule = { name: 'auth-totp', prefix: '/v1/auth', auth: 'principal', apiRole: true, routes: totpRoutes };
