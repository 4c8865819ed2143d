// Sign-in with GitHub, Google and a generic OpenID Connect provider, on SQLite and on PostgreSQL +
// Redis. GitHub is the fake in test/fakes/github.ts; Google and a Keycloak-style provider are real
// OpenID Connect providers run locally (oauth2-mock-server: discovery, JWKS, signed ID tokens,
// PKCE). Each test's identity is set through the provider's token-signing hook.

import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Events, OAuth2Server, type MutableToken } from 'oauth2-mock-server';
import { describeOnStores, request, startHeraldOn, type TestHerald } from '../helpers/herald.ts';
import { startFakeGithub, type FakeGithub } from '../fakes/github.ts';
import { startSmtp, type SmtpSink } from '../helpers/smtp.ts';
import { TtlCache } from '../../src/auth/oauth/service.ts';
import { eraseUser } from '../../src/auth/security-store.ts';
import { parseOidcProviders } from '../../src/auth/oauth/config.ts';
import { loadConfig } from '../../src/config.ts';

const PUBLIC_URL = 'http://herald.test';
const ADMIN = { email: 'Owner@Example.com', password: 'correct horse battery staple' };

interface OidcIdentity {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
}

/** A local OpenID Connect provider whose next ID tokens name `who` and get `tamper` applied. */
class Provider {
  server = new OAuth2Server();
  who: OidcIdentity = { sub: 'nobody' };
  tamper: ((payload: Record<string, unknown>) => void) | undefined;

  async start(): Promise<this> {
    await this.server.issuer.keys.generate('RS256');
    await this.server.start(0, '127.0.0.1');
    this.server.service.on(Events.BeforeTokenSigning, (token: MutableToken) => {
      // The ID token is the one with an audience (the client id); the access token has none.
      if (!('aud' in token.payload)) return;
      Object.assign(token.payload, this.who);
      this.tamper?.(token.payload as Record<string, unknown>);
    });
    return this;
  }

  get issuer(): string {
    return this.server.issuer.url!;
  }
}

interface Browser {
  /** The herald_oauth cookie the start set. */
  binding: string;
  /** The callback path and query the provider sent the browser back to. */
  callback: string;
  /** The provider's authorize URL. */
  authorize: URL;
}

/** A browser starting a sign-in: Herald's redirect, the provider's redirect back (not yet followed). */
async function startSignIn(h: TestHerald, provider: string, query = ''): Promise<Browser> {
  const start = await fetch(`${h.url}/v1/auth/oauth/${provider}${query}`, { redirect: 'manual' });
  assert.equal(start.status, 302, await start.text());
  const cookie = start.headers.getSetCookie().find((c) => c.startsWith('herald_oauth='));
  assert.ok(cookie, 'the start sets the herald_oauth cookie');
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /Path=\/v1\/auth\/oauth/);
  const authorize = new URL(start.headers.get('location')!);
  const atProvider = await fetch(authorize, { redirect: 'manual' });
  assert.equal(atProvider.status, 302, await atProvider.text());
  const back = new URL(atProvider.headers.get('location')!);
  assert.equal(`${back.origin}${back.pathname}`, `${PUBLIC_URL}/v1/auth/oauth/${provider}/callback`);
  return { binding: cookie.split(';')[0]!.slice('herald_oauth='.length), callback: back.pathname + back.search, authorize };
}

function finish(h: TestHerald, b: Browser, cookie = `herald_oauth=${b.binding}`) {
  return request(h.url, undefined, 'GET', b.callback, undefined, cookie ? { cookie } : {});
}

async function signIn(h: TestHerald, provider: string) {
  const b = await startSignIn(h, provider);
  return { browser: b, res: await finish(h, b) };
}

const me = (h: TestHerald, token: string) => request(h.url, token, 'GET', '/v1/auth/me');

describeOnStores('sign-in with GitHub, Google and OpenID Connect', (store) => {
  let h: TestHerald;
  let github: FakeGithub;
  let google: Provider;
  let keycloak: Provider;
  let ownerToken: string;

  before(async () => {
    github = await startFakeGithub({ callbackUrl: `${PUBLIC_URL}/v1/auth/oauth/github/callback` });
    google = await new Provider().start();
    keycloak = await new Provider().start();
    h = await startHeraldOn(store, {
      HERALD_PUBLIC_URL: PUBLIC_URL,
      HERALD_SIGNUP: 'open',
      HERALD_ADMIN_EMAIL: ADMIN.email,
      HERALD_ADMIN_PASSWORD: ADMIN.password,
      HERALD_OAUTH_GITHUB_CLIENT_ID: github.clientId,
      HERALD_OAUTH_GITHUB_CLIENT_SECRET: github.clientSecret,
      HERALD_OAUTH_GITHUB_URL: github.url,
      HERALD_OAUTH_GITHUB_API_URL: github.apiUrl,
      HERALD_OAUTH_GOOGLE_CLIENT_ID: 'google-client.apps.example',
      HERALD_OAUTH_GOOGLE_CLIENT_SECRET: 'google-secret',
      HERALD_OAUTH_GOOGLE_ISSUER: google.issuer,
      HERALD_OIDC_PROVIDERS: JSON.stringify([{ id: 'keycloak', name: 'Company SSO', issuer: keycloak.issuer, client_id: 'herald', client_secret: 'kc-secret', scopes: ['email', 'profile'] },
        // Nothing listens on the discard port: a provider that cannot be reached.
        { id: 'down', name: 'Down', issuer: 'http://127.0.0.1:9/realms/down', client_id: 'herald', client_secret: 'x' }]),
    });
    const login = await request(h.url, undefined, 'POST', '/v1/auth/login', ADMIN);
    assert.equal(login.status, 200, login.text);
    ownerToken = login.body.access_token;
  });
  after(async () => {
    await h?.stop();
    await github?.close();
    await google?.server.stop();
    await keycloak?.server.stop();
  });
  beforeEach(() => {
    google.tamper = undefined;
    keycloak.tamper = undefined;
  });

  it('lists the configured providers', async () => {
    const r = await request(h.url, undefined, 'GET', '/v1/auth/providers');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.data, [
      { id: 'github', name: 'GitHub', type: 'github', url: '/v1/auth/oauth/github' },
      { id: 'google', name: 'Google', type: 'oidc', url: '/v1/auth/oauth/google' },
      { id: 'keycloak', name: 'Company SSO', type: 'oidc', url: '/v1/auth/oauth/keycloak' },
      { id: 'down', name: 'Down', type: 'oidc', url: '/v1/auth/oauth/down' },
    ]);
    const unknown = await request(h.url, undefined, 'GET', '/v1/auth/oauth/facebook');
    assert.equal(unknown.status, 404);
    // A provider that cannot be reached is a 502 naming it, not a 500.
    const down = await request(h.url, undefined, 'GET', '/v1/auth/oauth/down');
    assert.equal(down.status, 502, down.text);
    assert.equal(down.body.code, 'provider_unavailable');
    assert.match(down.body.detail, /^down: /);
  });

  it('Google: redirects with state, PKCE S256 and a nonce; the callback signs a new user in with tokens and cookies', async () => {
    google.who = { sub: 'g-1001', email: 'Grace@Example.org', email_verified: true, name: 'Grace' };
    const b = await startSignIn(h, 'google');
    const q = b.authorize.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), 'google-client.apps.example');
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.match(q.get('code_challenge')!, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(q.get('state')!.length >= 32);
    assert.ok(q.get('nonce')!.length >= 32);
    assert.equal(q.get('scope'), 'openid email profile');
    const r = await finish(h, b);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.token_type, 'Bearer');
    const cookies = r.headers.getSetCookie();
    assert.ok(cookies.some((c) => c.startsWith('herald_access=') && c.includes('HttpOnly')));
    assert.ok(cookies.some((c) => c.startsWith('herald_refresh=')));
    assert.ok(cookies.some((c) => c.startsWith('herald_oauth=;') && c.includes('Max-Age=0')), 'the binding cookie is cleared');
    const m = await me(h, r.body.access_token);
    assert.equal(m.status, 200, m.text);
    assert.equal(m.body.user.email, 'Grace@Example.org');
    assert.equal(m.body.user.name, 'Grace');
    assert.equal(m.body.organization.role, 'owner');
    assert.notEqual(m.body.organization.id, 'ws_default');
    // The refresh token works like a password sign-in's.
    const refreshed = await request(h.url, undefined, 'POST', '/v1/auth/refresh', { refresh_token: r.body.refresh_token });
    assert.equal(refreshed.status, 200, refreshed.text);
    // Signing in again finds the same user through the linked identity.
    const again = await signIn(h, 'google');
    assert.equal(again.res.status, 200, again.res.text);
    assert.equal((await me(h, again.res.body.access_token)).body.user.id, m.body.user.id);
  });

  it('with ?redirect=, the callback sends the browser back to that path on this server (303, cookies set)', async () => {
    google.who = { sub: 'g-redirect', email: 'redirect@example.org', email_verified: true };
    const b = await startSignIn(h, 'google', '?redirect=' + encodeURIComponent('/#/inbox?tab=unread'));
    const r = await fetch(h.url + b.callback, { redirect: 'manual', headers: { cookie: `herald_oauth=${b.binding}` } });
    assert.equal(r.status, 303, await r.text());
    assert.equal(r.headers.get('location'), '/#/inbox?tab=unread');
    const access = r.headers.getSetCookie().find((c) => c.startsWith('herald_access='))!;
    assert.ok(access, 'the session cookies are set');
    const m = await me(h, access.split(';')[0]!.slice('herald_access='.length));
    assert.equal(m.body.user.email, 'redirect@example.org');
    // A cookie changed to carry another origin does not redirect there: the tokens come as JSON.
    const c = await startSignIn(h, 'google');
    const forgedTo = await fetch(h.url + c.callback, { redirect: 'manual', headers: { cookie: `herald_oauth=${c.binding}.${Buffer.from('//evil.example/').toString('base64url')}` } });
    assert.equal(forgedTo.status, 200, await forgedTo.text());
    assert.equal(forgedTo.headers.get('location'), null);
    // Only a path on this server: another origin, a scheme-relative URL or a backslash is refused.
    for (const bad of ['https://evil.example/', '//evil.example/', '/\\evil.example', 'relative/path']) {
      const refused = await request(h.url, undefined, 'GET', `/v1/auth/oauth/google?redirect=${encodeURIComponent(bad)}`);
      assert.equal(refused.status, 422, `${bad}: ${refused.text}`);
      assert.equal(refused.body.code, 'validation_failed');
    }
  });

  it('erasing a user also erases their external identities; the same account then signs up anew', async () => {
    google.who = { sub: 'g-erase', email: 'erase@example.org', email_verified: true, name: 'Eve Rase' };
    const first = await signIn(h, 'google');
    assert.equal(first.res.status, 200, first.res.text);
    const id = (await me(h, first.res.body.access_token)).body.user.id;
    const db = h.herald.services.store.db;
    await eraseUser(db, id);
    assert.equal((await db.selectFrom('identities').selectAll().where('user_id', '=', id).execute()).length, 0);
    const again = await signIn(h, 'google');
    assert.equal(again.res.status, 200, again.res.text);
    assert.notEqual((await me(h, again.res.body.access_token)).body.user.id, id);
  });

  it('links to an existing user only through a verified email address', async () => {
    const owner = (await me(h, ownerToken)).body.user;
    // Unverified: refused, and nothing is linked.
    keycloak.who = { sub: 'kc-owner', email: 'owner@example.com', email_verified: false, name: 'Impostor' };
    const refused = await signIn(h, 'keycloak');
    assert.equal(refused.res.status, 403, refused.res.text);
    assert.equal(refused.res.body.code, 'email_unverified');
    assert.equal(refused.res.headers.getSetCookie().some((c) => c.startsWith('herald_access=')), false);
    // No email at all: refused too.
    keycloak.who = { sub: 'kc-nomail' };
    const noMail = await signIn(h, 'keycloak');
    assert.equal(noMail.res.status, 403, noMail.res.text);
    assert.equal(noMail.res.body.code, 'email_unverified');
    // Verified (another case of the same address): the same user, now linked.
    keycloak.who = { sub: 'kc-owner', email: 'OWNER@example.com', email_verified: true, name: 'Owner' };
    const linked = await signIn(h, 'keycloak');
    assert.equal(linked.res.status, 200, linked.res.text);
    const m = await me(h, linked.res.body.access_token);
    assert.equal(m.body.user.id, owner.id);
    assert.deepEqual(m.body.organization, { id: 'ws_default', role: 'owner' });
    const audit = await request(h.url, ownerToken, 'GET', '/v1/audit?limit=50');
    assert.ok(audit.body.data.some((e: any) => e.action === 'auth.identity_link' && e.target === owner.id), 'the link is audited');
    assert.ok(audit.body.data.some((e: any) => e.action === 'auth.login' && e.details?.via === 'keycloak'), 'the sign-in is audited with its provider');
    // Once linked, the identity signs in even if the provider later stops vouching for the address.
    keycloak.who = { sub: 'kc-owner', email: 'owner@example.com', email_verified: false };
    const later = await signIn(h, 'keycloak');
    assert.equal(later.res.status, 200, later.res.text);
    assert.equal((await me(h, later.res.body.access_token)).body.user.id, owner.id);
  });

  it('refuses a forged state, a state from another browser, and a replayed callback', async () => {
    keycloak.who = { sub: 'kc-replay', email: 'replay@example.org', email_verified: true };
    const b = await startSignIn(h, 'keycloak');
    const forged = b.callback.replace(/state=[^&]+/, 'state=forged-state-value');
    const r1 = await request(h.url, undefined, 'GET', forged, undefined, { cookie: `herald_oauth=${b.binding}` });
    assert.equal(r1.status, 400, r1.text);
    assert.equal(r1.body.code, 'invalid_oauth_state');
    const noState = await request(h.url, undefined, 'GET', b.callback.replace(/&?state=[^&]+/, ''), undefined, { cookie: `herald_oauth=${b.binding}` });
    assert.equal(noState.status, 400, noState.text);
    assert.equal(noState.body.code, 'invalid_oauth_state');
    // The genuine callback in another browser (no cookie, or another one): refused, and the state is used up.
    const other = await startSignIn(h, 'keycloak');
    const r2 = await finish(h, other, `herald_oauth=${b.binding}`);
    assert.equal(r2.status, 400, r2.text);
    assert.equal(r2.body.code, 'invalid_oauth_state');
    assert.equal((await finish(h, other)).status, 400, 'a state is single use even when its first use failed');
    // The genuine one succeeds once; the same code and state again are refused.
    const ok = await finish(h, b);
    assert.equal(ok.status, 200, ok.text);
    const replay = await finish(h, b);
    assert.equal(replay.status, 400, replay.text);
    assert.equal(replay.body.code, 'invalid_oauth_state');
    // A state of one provider presented at another's callback.
    const g = await startSignIn(h, 'keycloak');
    const cross = await request(h.url, undefined, 'GET', g.callback.replace('/keycloak/', '/google/'), undefined, { cookie: `herald_oauth=${g.binding}` });
    assert.equal(cross.status, 400, cross.text);
  });

  it('refuses an ID token with a wrong nonce, an expired one, and one for another audience', async () => {
    google.who = { sub: 'g-2002', email: 'nonce@example.org', email_verified: true };
    google.tamper = (p) => {
      p.nonce = 'not-the-nonce-herald-sent';
    };
    const wrongNonce = await signIn(h, 'google');
    assert.equal(wrongNonce.res.status, 401, wrongNonce.res.text);
    assert.equal(wrongNonce.res.body.code, 'oauth_failed');
    assert.match(wrongNonce.res.body.detail, /nonce/);
    const failed = await request(h.url, ownerToken, 'GET', '/v1/audit?action=auth.login_failed&limit=200');
    assert.equal(failed.status, 200, failed.text);
    assert.ok(failed.body.data.some((e: any) => e.details?.via === 'google' && e.details?.code === 'oauth_failed' && /nonce/.test(e.details?.detail)), 'the failed sign-in is audited');
    google.tamper = (p) => {
      delete p.nonce;
    };
    const noNonce = await signIn(h, 'google');
    assert.equal(noNonce.res.status, 401, noNonce.res.text);
    const now = Math.floor(Date.now() / 1000);
    google.tamper = (p) => {
      p.iat = now - 7200;
      p.nbf = now - 7200;
      p.exp = now - 3600;
    };
    const expired = await signIn(h, 'google');
    assert.equal(expired.res.status, 401, expired.res.text);
    assert.equal(expired.res.body.code, 'oauth_failed');
    assert.match(expired.res.body.detail, /exp/);
    google.tamper = (p) => {
      p.aud = 'another-client';
    };
    const audience = await signIn(h, 'google');
    assert.equal(audience.res.status, 401, audience.res.text);
    assert.match(audience.res.body.detail, /aud/);
    google.tamper = (p) => {
      p.iss = 'https://evil.example';
    };
    const issuer = await signIn(h, 'google');
    assert.equal(issuer.res.status, 401, issuer.res.text);
    // None of them made a user.
    google.tamper = undefined;
    const fine = await signIn(h, 'google');
    assert.equal(fine.res.status, 200, fine.res.text);
    const audit = await request(h.url, ownerToken, 'GET', '/v1/audit?limit=200');
    assert.equal(audit.status, 200);
  });

  it('GitHub: signs in with the verified primary email; an unverified primary is refused; the token is sealed at rest', async () => {
    github.users.set(501, { id: 501, login: 'octo-unverified', name: null, emails: [{ email: 'unverified@example.net', primary: true, verified: false }, { email: 'other@example.net', primary: false, verified: true }], orgs: [], repos: [] });
    github.signedIn = 501;
    const refused = await signIn(h, 'github');
    assert.equal(refused.res.status, 403, refused.res.text);
    assert.equal(refused.res.body.code, 'email_unverified');

    github.users.set(502, { id: 502, login: 'octocat', name: 'The Octocat', emails: [{ email: 'octocat@example.net', primary: true, verified: true }], orgs: ['other-org'], repos: ['octocat/hello'] });
    github.signedIn = 502;
    const ok = await signIn(h, 'github');
    assert.equal(ok.res.status, 200, ok.res.text);
    const m = await me(h, ok.res.body.access_token);
    assert.equal(m.body.user.email, 'octocat@example.net');
    assert.equal(m.body.user.name, 'The Octocat');
    const row = await h.herald.services.store.db.selectFrom('identities').selectAll().where('provider', '=', 'github').where('subject', '=', '502').executeTakeFirstOrThrow();
    assert.equal(row.user_id, m.body.user.id);
    assert.equal(row.login, 'octocat');
    assert.match(row.token!, /^v1:/);
    assert.ok(!row.token!.includes('gho_'), 'the GitHub token is stored sealed');
    // The code was exchanged once; replaying the callback is refused by Herald before GitHub sees it.
    const errorsBefore = github.tokenErrors.length;
    const replay = await finish(h, ok.browser);
    assert.equal(replay.status, 400);
    assert.equal(github.tokenErrors.length, errorsBefore);
  });

  it('GitHub: a provider error in the callback and a code GitHub refuses are oauth_failed', async () => {
    github.signedIn = 502;
    const b = await startSignIn(h, 'github');
    const denied = await request(h.url, undefined, 'GET', `/v1/auth/oauth/github/callback?error=access_denied&error_description=The+user+has+denied&state=${new URL(b.callback, 'http://x').searchParams.get('state')}`, undefined, { cookie: `herald_oauth=${b.binding}` });
    assert.equal(denied.status, 401, denied.text);
    assert.equal(denied.body.code, 'oauth_failed');
    const b2 = await startSignIn(h, 'github');
    const badCode = await finish(h, { ...b2, callback: b2.callback.replace(/code=[^&]+/, 'code=not-a-code') });
    assert.equal(badCode.status, 401, badCode.text);
    assert.equal(badCode.body.code, 'oauth_failed');
    assert.match(badCode.body.detail, /bad_verification_code/);
  });

  it('GitHub organization link: admins set it; members of the GitHub org join with its default role when they sign in', async () => {
    // Who may set it: an admin of the organization; another organization is 404; keys are 403.
    const put = (token: string, org: string, body: unknown) => request(h.url, token, 'PUT', `/v1/orgs/${org}/github`, body);
    assert.equal((await request(h.url, ownerToken, 'GET', '/v1/orgs/ws_default/github')).status, 404);
    const set = await put(ownerToken, 'ws_default', { org: 'Acme-Corp', default_role: 'member' });
    assert.equal(set.status, 200, set.text);
    assert.equal(set.body.org, 'acme-corp');
    assert.equal(set.body.default_role, 'member');
    assert.equal((await put(ownerToken, 'ws_nope', { org: 'acme-corp', default_role: 'member' })).status, 404);
    assert.equal((await put(h.key, 'ws_default', { org: 'acme-corp', default_role: 'member' })).status, 403);
    assert.equal((await put(ownerToken, 'ws_default', { org: 'acme-corp', default_role: 'owner' })).status, 422);

    github.users.set(601, { id: 601, login: 'acme-dev', name: 'Acme Dev', emails: [{ email: 'dev@acme.example', primary: true, verified: true }], orgs: ['ACME-corp'], repos: ['acme-corp/widgets'] });
    github.signedIn = 601;
    const r = await signIn(h, 'github');
    assert.equal(r.res.status, 200, r.res.text);
    const m = await me(h, r.res.body.access_token);
    // Joined the linked organization (and, with HERALD_SIGNUP=open, acts in it: no organization of their own).
    assert.deepEqual(m.body.organizations.map((o: any) => [o.id, o.role]), [['ws_default', 'member']]);
    const audit = await request(h.url, ownerToken, 'GET', '/v1/audit?limit=100');
    assert.ok(audit.body.data.some((e: any) => e.action === 'member.join_github' && e.target === m.body.user.id));
    // A member (not admin) cannot change the link.
    assert.equal((await put(r.res.body.access_token, 'ws_default', { org: 'x', default_role: 'admin' })).status, 403);
    assert.equal((await request(h.url, r.res.body.access_token, 'GET', '/v1/orgs/ws_default/github')).status, 200);

    // Someone outside the GitHub organization does not join.
    github.users.set(602, { id: 602, login: 'stranger', name: null, emails: [{ email: 'stranger@example.net', primary: true, verified: true }], orgs: ['elsewhere'], repos: [] });
    github.signedIn = 602;
    const s = await signIn(h, 'github');
    assert.equal(s.res.status, 200, s.res.text);
    const sm = await me(h, s.res.body.access_token);
    assert.ok(!sm.body.organizations.some((o: any) => o.id === 'ws_default'));
    assert.equal(sm.body.user.name, 'stranger');

    // canReadGithubRepo asks GitHub with the user's token, and caches the answer.
    const oauth = h.herald.services.oauth;
    const uid = m.body.user.id;
    const before = github.calls.get('/repos/acme-corp/widgets') ?? 0;
    assert.equal(await oauth.canReadGithubRepo(uid, 'acme-corp', 'widgets'), true);
    assert.equal(await oauth.canReadGithubRepo(uid, 'Acme-Corp', 'Widgets'), true);
    assert.equal(github.calls.get('/repos/acme-corp/widgets'), before + 1, 'the second check is answered from the cache');
    assert.equal(await oauth.canReadGithubRepo(uid, 'acme-corp', 'secret-plans'), false);
    assert.equal(await oauth.canReadGithubRepo(sm.body.user.id, 'acme-corp', 'widgets'), false);
    assert.equal(await oauth.canReadGithubRepo((await me(h, ownerToken)).body.user.id, 'acme-corp', 'widgets'), false, 'no GitHub identity: false');
    assert.equal(await oauth.isGithubOrgMember(uid, 'acme-corp'), true);
    // A revoked token reads nothing (a repository not asked before, so not cached).
    github.users.get(601)!.repos.push('acme-corp/gadgets');
    github.revokeTokens(601);
    assert.equal(await oauth.canReadGithubRepo(uid, 'acme-corp', 'gadgets'), false);

    const del = await request(h.url, ownerToken, 'DELETE', '/v1/orgs/ws_default/github');
    assert.equal(del.status, 204);
    assert.equal((await request(h.url, ownerToken, 'GET', '/v1/orgs/ws_default/github')).status, 404);
  });

  // Two nodes share one database (PostgreSQL only: two processes cannot share a SQLite file): a
  // sign-in started on one node finishes on the other, once.
  if (store === 'postgres') {
    it('a sign-in started on one node finishes on another, and only once', async () => {
      const other = await startHeraldOn(store, h.env, { join: h });
      try {
        keycloak.who = { sub: 'kc-two-nodes', email: 'two-nodes@example.org', email_verified: true };
        const b = await startSignIn(h, 'keycloak');
        const there = await finish(other, b);
        assert.equal(there.status, 200, there.text);
        assert.equal((await me(h, there.body.access_token)).status, 200);
        const again = await finish(h, b);
        assert.equal(again.status, 400, again.text);
        assert.equal(again.body.code, 'invalid_oauth_state');
      } finally {
        await other.stop();
      }
    });
  }

  describe('with HERALD_SIGNUP=invite', () => {
    let hi: TestHerald;
    let smtp: SmtpSink;
    before(async () => {
      smtp = await startSmtp();
      hi = await startHeraldOn(store, {
        HERALD_SMTP_URL: smtp.url,
        HERALD_PUBLIC_URL: PUBLIC_URL,
        HERALD_ADMIN_EMAIL: ADMIN.email,
        HERALD_ADMIN_PASSWORD: ADMIN.password,
        HERALD_OAUTH_GITHUB_CLIENT_ID: github.clientId,
        HERALD_OAUTH_GITHUB_CLIENT_SECRET: github.clientSecret,
        HERALD_OAUTH_GITHUB_URL: github.url,
        HERALD_OAUTH_GITHUB_API_URL: github.apiUrl,
        HERALD_OAUTH_GOOGLE_CLIENT_ID: 'google-client.apps.example',
        HERALD_OAUTH_GOOGLE_CLIENT_SECRET: 'google-secret',
        HERALD_OAUTH_GOOGLE_ISSUER: google.issuer,
      });
    });
    after(async () => {
      await hi?.stop();
      await smtp?.close();
    });

    it('a new user is made only with a pending invitation of the verified address or a linked GitHub organization', async () => {
      google.who = { sub: 'g-invite', email: 'newcomer@example.org', email_verified: true };
      const g = await signIn(hi, 'google');
      assert.equal(g.res.status, 403, g.res.text);
      assert.equal(g.res.body.code, 'invitation_required');
      // Invited: the sign-in makes the user, accepts the invitation, and the session acts there.
      const owner = await request(hi.url, undefined, 'POST', '/v1/auth/login', ADMIN);
      const inv = await request(hi.url, owner.body.access_token, 'POST', '/v1/orgs/ws_default/invitations', { email: 'Newcomer@example.org', role: 'member' });
      assert.equal(inv.status, 201, inv.text);
      const invited = await signIn(hi, 'google');
      assert.equal(invited.res.status, 200, invited.res.text);
      const im = await me(hi, invited.res.body.access_token);
      assert.deepEqual(im.body.organizations.map((o: any) => [o.id, o.role]), [['ws_default', 'member']]);
      assert.deepEqual(im.body.organization, { id: 'ws_default', role: 'member' });
      const used = await request(hi.url, owner.body.access_token, 'GET', '/v1/orgs/ws_default/invitations');
      assert.equal(used.body.data.find((i: any) => i.id === inv.body.id)?.status, 'accepted', used.text);

      github.users.set(701, { id: 701, login: 'acme-new', name: 'New at Acme', emails: [{ email: 'new@acme.example', primary: true, verified: true }], orgs: ['acme-corp'], repos: [] });
      github.signedIn = 701;
      const before = await signIn(hi, 'github');
      assert.equal(before.res.status, 403, before.res.text);
      assert.equal(before.res.body.code, 'invitation_required');

      const login = await request(hi.url, undefined, 'POST', '/v1/auth/login', ADMIN);
      const link = await request(hi.url, login.body.access_token, 'PUT', '/v1/orgs/ws_default/github', { org: 'acme-corp', default_role: 'viewer' });
      assert.equal(link.status, 200, link.text);
      const after = await signIn(hi, 'github');
      assert.equal(after.res.status, 200, after.res.text);
      const m = await me(hi, after.res.body.access_token);
      assert.deepEqual(m.body.organizations.map((o: any) => [o.id, o.role]), [['ws_default', 'viewer']]);
    });
  });
});

describe('sign-in configuration', () => {
  it('HERALD_OIDC_PROVIDERS: a JSON list; errors name the entry and field', () => {
    assert.deepEqual(parseOidcProviders('[{"id":"kc","name":"KC","issuer":"https://sso.example/realms/x","client_id":"a","client_secret":"b"}]'), [
      { id: 'kc', name: 'KC', issuer: 'https://sso.example/realms/x', client_id: 'a', client_secret: 'b', scopes: ['openid', 'email', 'profile'] },
    ]);
    assert.throws(() => parseOidcProviders('{'), /not JSON/);
    assert.throws(() => parseOidcProviders('[{"id":"github","name":"x","issuer":"https://a","client_id":"a","client_secret":"b"}]'), /reserved/);
    assert.throws(() => parseOidcProviders('[{"id":"Bad Id","name":"x","issuer":"https://a","client_id":"a","client_secret":"b"}]'), /entry 0: "id"/);
    assert.throws(() => parseOidcProviders('[{"id":"a","name":"x","issuer":"ftp://a","client_id":"a","client_secret":"b"}]'), /issuer/);
    assert.throws(() => parseOidcProviders('[{"id":"a","name":"x","issuer":"https://a","client_id":"a"}]'), /client_secret/);
    assert.throws(() => parseOidcProviders('[{"id":"a","name":"x","issuer":"https://a","client_id":"a","client_secret":"b","extra":1}]'), /unknown field "extra"/);
  });

  it('client id and secret go together, and providers need HERALD_PUBLIC_URL', () => {
    assert.throws(() => loadConfig({}, { HERALD_OAUTH_GITHUB_CLIENT_ID: 'x' }), /HERALD_OAUTH_GITHUB_CLIENT_SECRET/);
    assert.throws(() => loadConfig({}, { HERALD_OAUTH_GOOGLE_CLIENT_SECRET: 'x' }), /HERALD_OAUTH_GOOGLE_CLIENT_ID/);
    assert.throws(() => loadConfig({}, { HERALD_OAUTH_GITHUB_CLIENT_ID: 'x', HERALD_OAUTH_GITHUB_CLIENT_SECRET: 'y' }), /HERALD_PUBLIC_URL/);
    assert.throws(() => loadConfig({}, { HERALD_OIDC_PROVIDERS: '[{"id":"a"}]' }), /HERALD_OIDC_PROVIDERS/);
    const c = loadConfig({}, { HERALD_OAUTH_GITHUB_CLIENT_ID: 'x', HERALD_OAUTH_GITHUB_CLIENT_SECRET: 'y', HERALD_PUBLIC_URL: 'https://h.example' });
    assert.equal(c.oauthGithubUrl!.href, 'https://github.com/');
    assert.equal(c.oauthGithubApiUrl!.href, 'https://api.github.com/');
    assert.equal(c.oauthGoogleIssuer!.href, 'https://accounts.google.com/');
  });
});

describe('GitHub check cache', () => {
  it('keeps an answer at most its time to live', () => {
    let now = 1_000_000;
    const cache = new TtlCache<boolean>(300_000, () => now);
    cache.set('k', true);
    now += 299_999;
    assert.equal(cache.get('k'), true);
    now += 1;
    assert.equal(cache.get('k'), undefined);
  });
});
