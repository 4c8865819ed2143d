// Sign-in and sessions. Public (no credential): register, login, refresh. With a user's access
// token: logout, logout-all, me, switch.
//   POST /v1/auth/register    {email, password, name, invitation?}  per HERALD_SIGNUP
//   POST /v1/auth/login       {email, password, totp?}     tokens + cookies
//   POST /v1/auth/refresh     {refresh_token?}             (or the refresh cookie) rotated tokens
//   POST /v1/auth/logout                                   ends this session
//   POST /v1/auth/logout-all                               ends every session of the user
//   GET  /v1/auth/me                                       the user, their organizations and roles
//   POST /v1/auth/switch      {org}                        tokens acting in another organization
// Token responses: {access_token, refresh_token, expires_in, token_type: "Bearer", organization}
// plus Set-Cookie for browsers (auth/cookies.ts).

import { Type } from 'typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Problem } from '../errors.ts';
import { MAX_PASSWORD_LENGTH } from '../domain/password-policy.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { problems } from '../http/schemas.ts';
import type { ClientInfo, IssuedTokens } from './accounts.ts';
import { checkCsrf, clearedCookies, parseCookies, REFRESH_COOKIE, cookieScope, sessionCookies } from './cookies.ts';
import type { UserPrincipal } from './principal.ts';

const Email = Type.String({ format: 'email', minLength: 3, maxLength: 254 });
const Password = Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH * 4, description: 'At least 10 characters; not a commonly used password' });

export const TokensView = Type.Object({
  access_token: Type.String(),
  refresh_token: Type.String(),
  expires_in: Type.Integer({ description: 'Seconds the access token is valid' }),
  token_type: Type.Literal('Bearer'),
  organization: Type.String({ description: 'The organization the tokens act in' }),
});

const UserView = Type.Object({ id: Type.String(), email: Type.String(), name: Type.String(), created_at: Type.String() });
const OrgRole = Type.Object({ id: Type.String(), name: Type.String(), role: Type.String() });

function client(request: FastifyRequest): ClientInfo {
  return { ip: request.ip, userAgent: request.headers['user-agent'] };
}

export function sendTokens(s: Services, request: FastifyRequest, reply: FastifyReply, t: IssuedTokens) {
  reply.header('set-cookie', sessionCookies({ accessToken: t.accessToken, accessTtlS: t.expiresIn, refreshToken: t.refreshToken, refreshTtlS: t.refreshExpiresIn }, cookieScope(request.protocol, s.config.publicUrl)));
  reply.header('cache-control', 'no-store');
  return { access_token: t.accessToken, refresh_token: t.refreshToken, expires_in: t.expiresIn, token_type: 'Bearer' as const, organization: t.workspaceId };
}

function publicRoutes(app: Api, s: Services): void {
  app.post(
    '/register',
    {
      schema: {
        summary: 'Register a user (per HERALD_SIGNUP)',
        tags: ['auth'],
        security: [],
        body: Type.Object(
          {
            email: Email,
            password: Password,
            name: Type.String({ minLength: 1, maxLength: 100 }),
            invitation: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'The token of an invitation to this address: registers and joins its organization' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ user: UserView, organization: OrgRole }), ...problems(403, 409, 422) },
      },
    },
    async (request, reply) => {
      const { invitation, ...input } = request.body;
      const r = invitation === undefined ? await s.accounts.register(input, client(request)) : await s.invitations.accept(invitation, input, client(request));
      return reply.code(201).send({ user: { ...r.user, created_at: new Date(r.user.created_at).toISOString() }, organization: r.organization });
    },
  );

  app.post(
    '/login',
    {
      schema: {
        summary: 'Sign in with email and password',
        tags: ['auth'],
        security: [],
        body: Type.Object(
          {
            email: Type.String({ minLength: 1, maxLength: 254 }),
            password: Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH * 4 }),
            totp: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'With TOTP on: the 6-digit code of the authenticator app, or a recovery code' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: TokensView, ...problems(401, 422, 429) },
      },
    },
    async (request, reply) => sendTokens(s, request, reply, await s.accounts.login(request.body.email, request.body.password, client(request), request.body.totp)),
  );

  app.post(
    '/refresh',
    {
      schema: {
        summary: 'Rotate the refresh token (from the body, or the refresh cookie) for new tokens',
        tags: ['auth'],
        security: [],
        body: Type.Object({ refresh_token: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }, { additionalProperties: false }),
        response: { 200: TokensView, ...problems(401, 403, 422) },
      },
    },
    async (request, reply) => {
      let token = request.body.refresh_token;
      if (token === undefined) {
        const cookies = parseCookies(request.headers.cookie);
        token = cookies.get(REFRESH_COOKIE);
        if (!token) throw new Problem('invalid_refresh_token', 'Send the refresh token as {"refresh_token": …} or in the herald_refresh cookie', { headers: { 'www-authenticate': 'Bearer' } });
        const csrf = checkCsrf(request, cookies, s.config.publicUrl);
        if (csrf) throw csrf;
      }
      return sendTokens(s, request, reply, await s.accounts.refresh(token, client(request)));
    },
  );
}

/** The principal as a signed-in user; API keys have no session. */
function userOf(request: FastifyRequest): UserPrincipal {
  const p = request.principal;
  if (p.kind !== 'user') throw new Problem('forbidden', 'This needs a signed-in user (an access token), not an API key');
  return p;
}

function sessionRoutes(app: Api, s: Services): void {
  app.post(
    '/logout',
    { schema: { summary: 'End this session', tags: ['auth'], response: { 204: Type.Null(), ...problems(401, 403) } } },
    async (request, reply) => {
      await s.accounts.logout(userOf(request));
      reply.header('set-cookie', clearedCookies(cookieScope(request.protocol, s.config.publicUrl)));
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/logout-all',
    { schema: { summary: "End every one of the user's sessions", tags: ['auth'], response: { 200: Type.Object({ sessions_ended: Type.Integer() }), ...problems(401, 403) } } },
    async (request, reply) => {
      const n = await s.accounts.logoutAll(userOf(request));
      reply.header('set-cookie', clearedCookies(cookieScope(request.protocol, s.config.publicUrl)));
      return { sessions_ended: n };
    },
  );

  app.get(
    '/me',
    {
      schema: {
        summary: 'The signed-in user, the organization the session acts in, and all their organizations with roles',
        tags: ['auth'],
        response: { 200: Type.Object({ user: Type.Object({ ...UserView.properties, email_verified: Type.Boolean({ description: 'Whether the address was proved: a verification or reset link, an invitation, or an identity provider vouching for it' }) }), organization: Type.Object({ id: Type.String(), role: Type.String() }), organizations: Type.Array(OrgRole) }), ...problems(401, 403) },
      },
    },
    async (request) => {
      const me = await s.accounts.me(userOf(request));
      return { ...me, user: { ...me.user, created_at: new Date(me.user.created_at).toISOString() } };
    },
  );

  app.post(
    '/switch',
    {
      schema: {
        summary: "New tokens acting in another of the user's organizations",
        tags: ['auth'],
        body: Type.Object({ org: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }),
        response: { 200: TokensView, ...problems(401, 403, 404, 422) },
      },
    },
    async (request, reply) => sendTokens(s, request, reply, await s.accounts.switchOrganization(userOf(request), request.body.org, client(request))),
  );
}

export const authPublicModule: RouteModule = { name: 'auth', prefix: '/v1/auth', auth: 'none', apiRole: true, routes: publicRoutes };
export const authSessionModule: RouteModule = { name: 'auth-session', prefix: '/v1/auth', auth: 'principal', apiRole: true, routes: sessionRoutes };
