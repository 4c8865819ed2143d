// The protocol side of external sign-in: building the authorization request and finishing it with
// the provider. Two kinds:
//   github  an OAuth app: {HERALD_OAUTH_GITHUB_URL}/login/oauth/authorize and /access_token, then
//           the REST API ({HERALD_OAUTH_GITHUB_API_URL}) /user and /user/emails (the verified
//           primary address); the access token is kept (sealed) for organization checks.
//   oidc    OpenID Connect (Google, Keycloak, Authentik, Okta, Auth0): metadata from discovery,
//           code flow with PKCE (S256) and a nonce; the ID token verified with jose against the
//           issuer's JWKS: signature, iss (the discovered issuer), aud (our client id; azp when
//           several), exp (60 s leeway), nonce (this sign-in's). Email from the ID token, else
//           from the userinfo endpoint (same sub).
// Failures: the provider refusing or a token that does not verify is `oauth_failed` (401); a
// provider that cannot be reached or answers outside the protocol is `provider_unavailable` (502).

import type { createRemoteJWKSet, JWTPayload } from 'jose';

/** jose on the first ID token to verify: a process without OpenID Connect sign-ins never loads it (test/cli/footprint.test.ts). */
const jose = (): Promise<typeof import('jose')> => import('jose');
import { Problem } from '../../errors.ts';
import type { OidcProviderConfig } from './config.ts';

const TIMEOUT_MS = 10_000;
const DISCOVERY_TTL_MS = 3_600_000;
const ID_TOKEN_LEEWAY_S = 60;

/** Who the provider says signed in. */
export interface ExternalProfile {
  /** The provider's stable account id (OIDC `sub`, GitHub numeric id). */
  subject: string;
  email: string | null;
  /** Whether the provider vouches for `email`. */
  emailVerified: boolean;
  name: string | null;
  /** GitHub login, OIDC preferred_username. */
  login: string | null;
  /** The provider's access token when Herald keeps it (GitHub), else null. */
  token: string | null;
}

export interface AuthorizeParams {
  state: string;
  codeChallenge: string;
  nonce: string;
  redirectUri: string;
}

export interface FinishParams {
  code: string;
  codeVerifier: string;
  nonce: string;
  redirectUri: string;
}

export interface SignInProvider {
  readonly id: string;
  readonly name: string;
  readonly type: 'github' | 'oidc';
  /** Whether the sign-in uses a nonce (OIDC). */
  readonly usesNonce: boolean;
  authorizeUrl(p: AuthorizeParams): Promise<URL>;
  finish(p: FinishParams): Promise<ExternalProfile>;
}

function unavailable(provider: string, what: string): Problem {
  return new Problem('provider_unavailable', `${provider}: ${what}`);
}

/** fetch with a timeout; a network failure is provider_unavailable. */
async function call(provider: string, url: URL | string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    throw unavailable(provider, `${init.method ?? 'GET'} ${String(url)} failed (${(err as Error).message})`);
  }
}

async function json(provider: string, res: Response, what: string): Promise<unknown> {
  const text = await res.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw unavailable(provider, `${what} answered ${res.status} with a body that is not JSON`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A URL under `base` (keeping base's path, e.g. a GitHub Enterprise prefix). */
function under(base: URL, path: string): URL {
  const b = new URL(base.href);
  if (!b.pathname.endsWith('/')) b.pathname += '/';
  return new URL(path.replace(/^\//, ''), b);
}

function form(values: Record<string, string>): string {
  return new URLSearchParams(values).toString();
}

/** The token endpoint's answer: tokens, or the provider's error (a refused code) as oauth_failed. */
async function tokenResponse(provider: string, res: Response): Promise<Record<string, unknown>> {
  const body = res.status < 500 ? await json(provider, res, 'the token endpoint') : undefined;
  if (isObject(body) && typeof body.error === 'string') {
    const desc = typeof body.error_description === 'string' ? `: ${body.error_description.slice(0, 200)}` : '';
    throw new Problem('oauth_failed', `${provider} refused the authorization code (${body.error.slice(0, 100)}${desc})`);
  }
  if (!res.ok || !isObject(body) || typeof body.access_token !== 'string') {
    throw unavailable(provider, `the token endpoint answered ${res.status} without an access token`);
  }
  return body;
}

export class GithubProvider implements SignInProvider {
  readonly id = 'github';
  readonly name = 'GitHub';
  readonly type = 'github' as const;
  readonly usesNonce = false;
  readonly #clientId: string;
  readonly #clientSecret: string;
  readonly #web: URL;
  readonly #api: URL;

  constructor(o: { clientId: string; clientSecret: string; webUrl: URL; apiUrl: URL }) {
    this.#clientId = o.clientId;
    this.#clientSecret = o.clientSecret;
    this.#web = o.webUrl;
    this.#api = o.apiUrl;
  }

  async authorizeUrl(p: AuthorizeParams): Promise<URL> {
    const u = under(this.#web, 'login/oauth/authorize');
    u.search = form({
      client_id: this.#clientId,
      redirect_uri: p.redirectUri,
      scope: 'read:user user:email read:org',
      state: p.state,
      code_challenge: p.codeChallenge,
      code_challenge_method: 'S256',
    });
    return u;
  }

  async finish(p: FinishParams): Promise<ExternalProfile> {
    const res = await call('github', under(this.#web, 'login/oauth/access_token'), {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: form({ client_id: this.#clientId, client_secret: this.#clientSecret, code: p.code, redirect_uri: p.redirectUri, code_verifier: p.codeVerifier }),
    });
    const token = (await tokenResponse('github', res)).access_token as string;
    const user = await this.api(token, 'user');
    if (user.status !== 200 || !isObject(user.body) || (typeof user.body.id !== 'number' && typeof user.body.id !== 'string')) {
      throw unavailable('github', `GET /user answered ${user.status}`);
    }
    const emails = await this.api(token, 'user/emails');
    if (emails.status !== 200 || !Array.isArray(emails.body)) throw unavailable('github', `GET /user/emails answered ${emails.status}`);
    const primary = (emails.body as unknown[]).find((e) => isObject(e) && e.primary === true && typeof e.email === 'string') as { email: string; verified?: unknown } | undefined;
    return {
      subject: String(user.body.id),
      email: primary?.email ?? null,
      emailVerified: primary?.verified === true,
      name: typeof user.body.name === 'string' && user.body.name !== '' ? user.body.name : null,
      login: typeof user.body.login === 'string' ? user.body.login : null,
      token,
    };
  }

  /** GET {api}/{path} with a user's token: the status and the JSON body (undefined when not JSON). */
  async api(token: string, path: string): Promise<{ status: number; body: unknown }> {
    const res = await call('github', under(this.#api, path), {
      headers: { accept: 'application/vnd.github+json', authorization: `Bearer ${token}`, 'user-agent': 'Herald', 'x-github-api-version': '2022-11-28' },
    });
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.status, body };
  }
}

interface OidcMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  userinfo_endpoint?: string;
  token_endpoint_auth_methods_supported?: string[];
  id_token_signing_alg_values_supported?: string[];
}

function trimSlash(s: string): string {
  return s.replace(/\/+$/, '');
}

export class OidcProvider implements SignInProvider {
  readonly id: string;
  readonly name: string;
  readonly type = 'oidc' as const;
  readonly usesNonce = true;
  readonly #c: OidcProviderConfig;
  #meta: { at: number; value: Promise<OidcMetadata> } | undefined;
  #jwks: { uri: string; set: ReturnType<typeof createRemoteJWKSet> } | undefined;

  constructor(c: OidcProviderConfig) {
    this.id = c.id;
    this.name = c.name;
    this.#c = c;
  }

  /** Discovery, cached an hour; a failed one is not cached. */
  metadata(): Promise<OidcMetadata> {
    if (this.#meta && Date.now() - this.#meta.at < DISCOVERY_TTL_MS) return this.#meta.value;
    const value = this.#discover();
    this.#meta = { at: Date.now(), value };
    value.catch(() => {
      if (this.#meta?.value === value) this.#meta = undefined;
    });
    return value;
  }

  async #discover(): Promise<OidcMetadata> {
    const url = `${trimSlash(this.#c.issuer)}/.well-known/openid-configuration`;
    const res = await call(this.id, url);
    if (res.status !== 200) throw unavailable(this.id, `discovery (${url}) answered ${res.status}`);
    const m = await json(this.id, res, 'discovery');
    if (!isObject(m)) throw unavailable(this.id, 'discovery answered something that is not an object');
    for (const k of ['issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const) {
      if (typeof m[k] !== 'string') throw unavailable(this.id, `discovery has no ${k}`);
    }
    // OpenID Connect Discovery §4.3: the document's issuer is the one configured.
    if (trimSlash(m.issuer as string) !== trimSlash(this.#c.issuer)) throw unavailable(this.id, `discovery names the issuer ${String(m.issuer)}, not ${this.#c.issuer}`);
    return m as unknown as OidcMetadata;
  }

  async #keys(uri: string): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const { createRemoteJWKSet } = await jose();
    if (this.#jwks?.uri !== uri) this.#jwks = { uri, set: createRemoteJWKSet(new URL(uri), { timeoutDuration: TIMEOUT_MS }) };
    return this.#jwks.set;
  }

  async authorizeUrl(p: AuthorizeParams): Promise<URL> {
    const m = await this.metadata();
    const u = new URL(m.authorization_endpoint);
    for (const [k, v] of Object.entries({
      response_type: 'code',
      client_id: this.#c.client_id,
      redirect_uri: p.redirectUri,
      scope: this.#c.scopes.join(' '),
      state: p.state,
      nonce: p.nonce,
      code_challenge: p.codeChallenge,
      code_challenge_method: 'S256',
    })) {
      u.searchParams.set(k, v);
    }
    return u;
  }

  async finish(p: FinishParams): Promise<ExternalProfile> {
    const m = await this.metadata();
    const methods = m.token_endpoint_auth_methods_supported;
    // client_secret_basic is the default (OpenID Connect Core §9); post only when basic is not offered.
    const basic = !methods || methods.includes('client_secret_basic') || !methods.includes('client_secret_post');
    const params: Record<string, string> = { grant_type: 'authorization_code', code: p.code, redirect_uri: p.redirectUri, code_verifier: p.codeVerifier };
    const headers: Record<string, string> = { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' };
    if (basic) {
      headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(this.#c.client_id)}:${encodeURIComponent(this.#c.client_secret)}`).toString('base64')}`;
    } else {
      params.client_id = this.#c.client_id;
      params.client_secret = this.#c.client_secret;
    }
    const tokens = await tokenResponse(this.id, await call(this.id, m.token_endpoint, { method: 'POST', headers, body: form(params) }));
    if (typeof tokens.id_token !== 'string') throw unavailable(this.id, 'the token endpoint answered without an id_token');
    const claims = await this.#verify(m, tokens.id_token, p.nonce);
    let email = typeof claims.email === 'string' ? claims.email : null;
    let verified = claims.email_verified === true || claims.email_verified === 'true';
    let name = typeof claims.name === 'string' ? claims.name : null;
    if (email === null && m.userinfo_endpoint) {
      const res = await call(this.id, m.userinfo_endpoint, { headers: { accept: 'application/json', authorization: `Bearer ${tokens.access_token as string}` } });
      if (res.status !== 200) throw unavailable(this.id, `the userinfo endpoint answered ${res.status}`);
      const info = await json(this.id, res, 'the userinfo endpoint');
      // OpenID Connect Core §5.3.2: userinfo of another subject must not be used.
      if (isObject(info) && info.sub === claims.sub) {
        email = typeof info.email === 'string' ? info.email : null;
        verified = info.email_verified === true || info.email_verified === 'true';
        name ??= typeof info.name === 'string' ? info.name : null;
      }
    }
    return { subject: claims.sub!, email, emailVerified: email !== null && verified, name, login: typeof claims.preferred_username === 'string' ? claims.preferred_username : null, token: null };
  }

  async #verify(m: OidcMetadata, idToken: string, nonce: string): Promise<JWTPayload> {
    let payload: JWTPayload;
    const { errors: joseErrors, jwtVerify } = await jose();
    try {
      const algorithms = (m.id_token_signing_alg_values_supported ?? ['RS256']).filter((a) => a !== 'none' && !a.startsWith('HS'));
      ({ payload } = await jwtVerify(idToken, await this.#keys(m.jwks_uri), {
        issuer: m.issuer,
        audience: this.#c.client_id,
        algorithms,
        clockTolerance: ID_TOKEN_LEEWAY_S,
        requiredClaims: ['sub', 'exp', 'iat'],
      }));
    } catch (err) {
      if (err instanceof joseErrors.JOSEError && !(err instanceof joseErrors.JWKSTimeout)) {
        throw new Problem('oauth_failed', `${this.id}: the ID token does not verify (${err.code}: ${err.message})`);
      }
      throw unavailable(this.id, `its signing keys (${m.jwks_uri}) could not be read (${(err as Error).message})`);
    }
    if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== this.#c.client_id) {
      throw new Problem('oauth_failed', `${this.id}: the ID token has several audiences and its azp is not this client`);
    }
    if (payload.nonce !== nonce) throw new Problem('oauth_failed', `${this.id}: the ID token's nonce is not this sign-in's`);
    return payload;
  }
}
