// Emailed single-use links (auth/email-links.ts): verifying the address and resetting the password.
//   POST /v1/auth/verify-email                                    (signed in) emails a verification link
//   POST /v1/auth/verify-email/confirm   {token}                  marks the address verified
//   POST /v1/auth/password-reset         {email}                  202 always; emails a reset link to a user
//   POST /v1/auth/password-reset/confirm {token, password}        sets the password; every session ends

import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import { MAX_PASSWORD_LENGTH } from '../domain/password-policy.ts';
import { Problem } from '../errors.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { problems } from '../http/schemas.ts';
import type { ClientInfo } from './accounts.ts';

const LinkToken = Type.String({ minLength: 1, maxLength: 200, description: 'The code of the emailed link' });

function client(request: FastifyRequest): ClientInfo {
  return { ip: request.ip, userAgent: request.headers['user-agent'] };
}

function publicRoutes(app: Api, s: Services): void {
  app.post(
    '/verify-email/confirm',
    {
      schema: {
        summary: 'Confirm an email address with the code of its verification link',
        tags: ['auth'],
        security: [],
        body: Type.Object({ token: LinkToken }, { additionalProperties: false }),
        response: { 200: Type.Object({ user: Type.String(), email: Type.String(), email_verified: Type.Literal(true) }), ...problems(400, 422) },
      },
    },
    async (request) => ({ ...(await s.emailLinks.confirmVerification(request.body.token, client(request))), email_verified: true as const }),
  );

  app.post(
    '/password-reset',
    {
      schema: {
        summary: 'Email a password reset link (the answer is the same whether or not the address has a user)',
        tags: ['auth'],
        security: [],
        body: Type.Object({ email: Type.String({ format: 'email', minLength: 3, maxLength: 254 }) }, { additionalProperties: false }),
        response: { 202: Type.Object({ message: Type.String() }), ...problems(409, 422) },
      },
    },
    async (request, reply) => {
      await s.emailLinks.requestReset(request.body.email, client(request));
      return reply.code(202).send({ message: 'If a user has this address, a reset link is on its way; it works once, for one hour.' });
    },
  );

  app.post(
    '/password-reset/confirm',
    {
      schema: {
        summary: "Set a new password with the code of a reset link; every session of the user ends",
        tags: ['auth'],
        security: [],
        body: Type.Object({ token: LinkToken, password: Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH * 4, description: 'At least 10 characters; not a commonly used password' }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ sessions_ended: Type.Integer() }), ...problems(400, 422) },
      },
    },
    async (request) => s.emailLinks.confirmReset(request.body.token, request.body.password, client(request)),
  );
}

function signedInRoutes(app: Api, s: Services): void {
  app.post(
    '/verify-email',
    {
      schema: {
        summary: "Email a verification link to the signed-in user's address",
        tags: ['auth'],
        response: { 202: Type.Null(), ...problems(401, 403, 409, 503) },
      },
    },
    async (request, reply) => {
      const p = request.principal;
      if (p.kind !== 'user') throw new Problem('forbidden', 'This needs a signed-in user (an access token), not an API key');
      await s.emailLinks.sendVerification(p);
      return reply.code(202).send(null);
    },
  );
}

export const emailLinkPublicModule: RouteModule = { name: 'auth-links', prefix: '/v1/auth', auth: 'none', apiRole: true, routes: publicRoutes };
export const emailLinkModule: RouteModule = { name: 'auth-links-signed-in', prefix: '/v1/auth', auth: 'principal', apiRole: true, routes: signedInRoutes };
