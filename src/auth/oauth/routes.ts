// Sign-in with external providers (public) and organizations' GitHub links (signed-in users).
//   GET    /v1/auth/providers                    the configured providers, for a sign-in page
//   GET    /v1/auth/oauth/{provider}             302 to the provider; sets the herald_oauth cookie
//   GET    /v1/auth/oauth/{provider}/callback    finishes: tokens + cookies as POST /v1/auth/login
//   GET    /v1/orgs/{org}/github                 the organization's GitHub link (any member)
//   PUT    /v1/orgs/{org}/github  {org, default_role}   link (admin, owner)
//   DELETE /v1/orgs/{org}/github                 unlink (admin, owner)
// The flow and its rules: auth/oauth/service.ts.

import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import { Problem } from '../../errors.ts';
import type { Services } from '../../services.ts';
import type { Api, RouteModule } from '../../http/api.ts';
import { iso, problems } from '../../http/schemas.ts';
import { cookieScope, parseCookies, type CookieScope } from '../cookies.ts';
import type { UserPrincipal } from '../principal.ts';
import { sendTokens, TokensView } from '../routes.ts';
import { STATE_TTL_MS } from './service.ts';

/** Binds a sign-in in progress to the browser that started it. */
export const OAUTH_COOKIE = 'herald_oauth';
const OAUTH_COOKIE_PATH = '/v1/auth/oauth';
const RETURN_PATH = /^\/(?![/\\])[\x21-\x7e]*$/;

/** Where the browser goes after signing in: a path on this server (never another origin). */
const ReturnPath = Type.String({ maxLength: 512, pattern: '^/(?![/\\\\])[\\x21-\\x7e]*$', description: 'A path on this server (e.g. /#/inbox) the browser is sent to after signing in, with 303; without it the callback answers the tokens as JSON' });

const ProviderParam = Type.Object({ provider: Type.String({ minLength: 1, maxLength: 64, description: 'A provider id from GET /v1/auth/providers' }) });
const OrgParam = Type.Object({ org: Type.String({ minLength: 1, maxLength: 64 }) });
const LinkRole = Type.Union([Type.Literal('viewer'), Type.Literal('member'), Type.Literal('admin')], { description: 'The role members of the GitHub organization join with' });
const GithubLinkView = Type.Object({ org: Type.String(), default_role: Type.String(), updated_at: Type.String() });

function oauthCookie(value: string, maxAgeS: number, { secure, prefix }: CookieScope): string {
  return `${OAUTH_COOKIE}=${value}; Path=${prefix}${OAUTH_COOKIE_PATH}; Max-Age=${maxAgeS}; SameSite=Lax; HttpOnly${secure ? '; Secure' : ''}`;
}

function signInRoutes(app: Api, s: Services): void {
  app.get(
    '/providers',
    {
      schema: {
        summary: 'The configured sign-in providers (GitHub, Google, OpenID Connect)',
        tags: ['auth'],
        security: [],
        response: { 200: Type.Object({ data: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), type: Type.String(), url: Type.String({ description: 'Where a browser starts signing in' }) })) }) },
      },
    },
    async () => ({ data: s.oauth.providers().map((p) => ({ ...p, url: `/v1/auth/oauth/${p.id}` })) }),
  );

  app.get(
    '/oauth/:provider',
    {
      schema: {
        summary: 'Start signing in with a provider: redirects the browser to it (state, PKCE, nonce)',
        tags: ['auth'],
        security: [],
        params: ProviderParam,
        querystring: Type.Object({ redirect: Type.Optional(ReturnPath) }),
        response: { 302: Type.Null({ description: "Location: the provider's authorization URL; sets the herald_oauth cookie" }), ...problems(404, 422, 429, 502) },
      },
    },
    async (request, reply) => {
      const { location, binding } = await s.oauth.begin(request.params.provider, request.ip);
      // The cookie carries the binding and, when asked for, the path to return to (only ever a
      // path on this server, so a changed cookie cannot send the browser elsewhere).
      const value = request.query.redirect === undefined ? binding : `${binding}.${Buffer.from(request.query.redirect).toString('base64url')}`;
      reply.header('set-cookie', oauthCookie(value, STATE_TTL_MS / 1000, cookieScope(request.protocol, s.config.publicUrl)));
      reply.header('cache-control', 'no-store');
      return reply.code(302).header('location', location).send(null);
    },
  );

  app.get(
    '/oauth/:provider/callback',
    {
      schema: {
        summary: 'Where the provider sends the browser back: finishes signing in (tokens and cookies as POST /v1/auth/login)',
        tags: ['auth'],
        security: [],
        params: ProviderParam,
        querystring: Type.Object({
          code: Type.Optional(Type.String({ maxLength: 4096 })),
          state: Type.Optional(Type.String({ maxLength: 512 })),
          error: Type.Optional(Type.String({ maxLength: 256 })),
          error_description: Type.Optional(Type.String({ maxLength: 2048 })),
        }),
        response: { 200: TokensView, 303: Type.Null({ description: 'Signed in; Location: the redirect path the sign-in started with (cookies set)' }), ...problems(400, 401, 403, 404, 422, 502) },
      },
    },
    async (request, reply) => {
      const [binding, to] = (parseCookies(request.headers.cookie).get(OAUTH_COOKIE) ?? '').split('.', 2);
      const tokens = await s.oauth.finish(request.params.provider, request.query, binding || undefined, { ip: request.ip, userAgent: request.headers['user-agent'] });
      const body = sendTokens(s, request, reply, tokens);
      // The sign-in is over: the binding cookie goes (sendTokens set the session cookies).
      const cookies = reply.getHeader('set-cookie');
      reply.header('set-cookie', [...(Array.isArray(cookies) ? cookies : cookies === undefined ? [] : [String(cookies)]), oauthCookie('', 0, cookieScope(request.protocol, s.config.publicUrl))]);
      const path = to ? Buffer.from(to, 'base64url').toString('utf8') : undefined;
      if (path !== undefined && RETURN_PATH.test(path)) return reply.code(303).header('location', path).send(null);
      return body;
    },
  );
}

function userOf(request: FastifyRequest): UserPrincipal {
  const p = request.principal;
  if (p.kind !== 'user') throw new Problem('forbidden', 'Organizations are managed by signed-in users (an access token), not API keys');
  return p;
}

const linkView = (l: { org: string; default_role: string; updated_at: number }) => ({ ...l, updated_at: iso(l.updated_at)! });

function githubLinkRoutes(app: Api, s: Services): void {
  app.get(
    '/orgs/:org/github',
    { schema: { summary: "The organization's link to a GitHub organization", tags: ['organizations'], params: OrgParam, response: { 200: GithubLinkView, ...problems(401, 403, 404) } } },
    async (request) => linkView(await s.oauth.githubLink(userOf(request), request.params.org)),
  );

  app.put(
    '/orgs/:org/github',
    {
      schema: {
        summary: 'Link the organization to a GitHub organization: its members signing in with GitHub join with default_role',
        tags: ['organizations'],
        params: OrgParam,
        body: Type.Object({ org: Type.String({ pattern: '^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$', description: 'The GitHub organization login' }), default_role: LinkRole }, { additionalProperties: false }),
        response: { 200: GithubLinkView, ...problems(401, 403, 404, 422) },
      },
    },
    async (request) => linkView(await s.oauth.setGithubLink(userOf(request), request.params.org, request.body)),
  );

  app.delete(
    '/orgs/:org/github',
    { schema: { summary: 'Unlink the organization from its GitHub organization (members stay)', tags: ['organizations'], params: OrgParam, response: { 204: Type.Null(), ...problems(401, 403, 404) } } },
    async (request, reply) => {
      await s.oauth.deleteGithubLink(userOf(request), request.params.org);
      return reply.code(204).send(null);
    },
  );
}

export const oauthModule: RouteModule = { name: 'auth-oauth', prefix: '/v1/auth', auth: 'none', apiRole: true, routes: signInRoutes };
export const githubLinkModule: RouteModule = { name: 'orgs-github', prefix: '/v1', auth: 'principal', apiRole: true, routes: githubLinkRoutes };
