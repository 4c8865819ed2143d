// Sign-in with GitHub, Google and generic OpenID Connect providers, and organizations linked to
// GitHub organizations. The oauth routes (auth/oauth/routes.ts) call this; the webhook broker may
// call canReadGithubRepo.
//
// A sign-in, start to finish:
//   begin(provider)   new state, PKCE verifier and (OIDC) nonce; a row in oauth_states keyed by the
//                     state's hash, bound to a random value the browser holds in the HttpOnly
//                     `herald_oauth` cookie; valid 10 minutes. Answer: the provider's authorize URL.
//   finish(...)       the state row is taken (deleted) first, whatever follows: single use, so a
//                     replayed callback (same state and code) is refused. Refused unless the row
//                     exists, is unexpired, is for this provider and the cookie matches. Then the
//                     code is exchanged (with the PKCE verifier) and the identity read
//                     (auth/oauth/client.ts), and the user found or made:
//     identity (provider, subject) linked     -> that user
//     else the provider vouches for the email -> the user with that address (the identity is
//                                                linked: audit auth.identity_link), or a new user
//                                                (per HERALD_SIGNUP, below)
//     else                                     -> 403 email_unverified (no linking, no new user)
//   A new user (no password; email verified) is made when HERALD_SIGNUP=open, or with `invite` when
//   the address has a pending invitation (accepted now) or a linked GitHub organization admits them
//   (a standing invitation of its admins); never with `closed`. Without an invitation or a linked
//   organization, the new user owns a new organization.
//   GitHub: the access token is kept sealed on the identity; at each sign-in the user joins every
//   organization linked to a GitHub organization they belong to (default role; an existing
//   membership is left as it is; audit member.join_github). The session then opens as a password
//   sign-in does (AccountService.signInExternal).
// GitHub organization memberships and repository access are read with the user's token and cached
// at most CHECK_TTL_MS (5 minutes) per node.

import { OAUTH_START_THROTTLE } from '../../domain/login-throttle.ts';
import type { RateLimiter } from '../../ratelimit/limiter.ts';
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { AuditService } from '../../audit/service.ts';
import type { Config } from '../../config.ts';
import { newId } from '../../domain/ids.ts';
import { isRole, roleAllows, type UserRole } from '../../domain/roles.ts';
import { Problem } from '../../errors.ts';
import type { Database } from '../../store/schema.ts';
import { DEFAULT_WORKSPACE_ID } from '../../store/workspaces.ts';
import type { InvitationService } from '../../orgs/invitations.ts';
import type { AccountService, ClientInfo, IssuedTokens } from '../accounts.ts';
import type { UserPrincipal } from '../principal.ts';
import type { SecretBox } from '../secret-box.ts';
import { markEmailVerified } from '../security-store.ts';
import { createOrganization, emailKey, findMembership, findUserByEmail, insertUser, listMemberships, putMembership } from '../store.ts';
import { GithubProvider, OidcProvider, type ExternalProfile, type SignInProvider } from './client.ts';
import {
  anyGithubLinks,
  deleteGithubLink,
  findIdentity,
  findUserIdentity,
  getGithubLink,
  githubLinksFor,
  insertIdentity,
  insertState,
  purgeStates,
  putGithubLink,
  takeState,
  updateIdentity,
  listUserIdentities,
  unlinkIdentities,
} from './store.ts';

export const STATE_TTL_MS = 10 * 60_000;
export const CHECK_TTL_MS = 5 * 60_000;
const CACHE_LIMIT = 10_000;

export interface ProviderInfo {
  id: string;
  name: string;
  type: 'github' | 'oidc';
}

export interface GithubLinkView {
  org: string;
  default_role: UserRole;
  updated_at: number;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const random = () => randomBytes(32).toString('base64url');

/** A per-node cache whose entries live at most `ttlMs`. */
export class TtlCache<T> {
  readonly #map = new Map<string, { at: number; value: T }>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(ttlMs: number, now: () => number = Date.now) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  get(key: string): T | undefined {
    const e = this.#map.get(key);
    if (!e) return undefined;
    if (this.#now() - e.at >= this.#ttlMs) {
      this.#map.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: T): void {
    this.#map.delete(key);
    if (this.#map.size >= CACHE_LIMIT) this.#map.delete(this.#map.keys().next().value!);
    this.#map.set(key, { at: this.#now(), value });
  }

  delete(key: string): void {
    this.#map.delete(key);
  }
}

export class OAuthService {
  readonly #limiter: RateLimiter;
  readonly #db: Kysely<Database>;
  readonly #secrets: SecretBox;
  readonly #accounts: AccountService;
  readonly #invitations: InvitationService;
  readonly #audit: AuditService;
  readonly #signup: Config['signup'];
  readonly #publicUrl: URL | undefined;
  readonly #log: Logger | undefined;
  readonly #providers = new Map<string, SignInProvider>();
  readonly #github: GithubProvider | undefined;
  readonly #orgCache: TtlCache<string[]>;
  readonly #repoCache: TtlCache<boolean>;

  constructor(db: Kysely<Database>, deps: { config: Config; secrets: SecretBox; accounts: AccountService; invitations: InvitationService; audit: AuditService; limiter: RateLimiter; log?: Logger; now?: () => number }) {
    this.#db = db;
    this.#limiter = deps.limiter;
    this.#secrets = deps.secrets;
    this.#accounts = deps.accounts;
    this.#invitations = deps.invitations;
    this.#audit = deps.audit;
    this.#signup = deps.config.signup;
    this.#publicUrl = deps.config.publicUrl;
    this.#log = deps.log;
    this.#orgCache = new TtlCache(CHECK_TTL_MS, deps.now);
    this.#repoCache = new TtlCache(CHECK_TTL_MS, deps.now);
    const c = deps.config;
    if (c.oauthGithubClientId && c.oauthGithubClientSecret) {
      this.#github = new GithubProvider({ clientId: c.oauthGithubClientId, clientSecret: c.oauthGithubClientSecret, webUrl: c.oauthGithubUrl!, apiUrl: c.oauthGithubApiUrl! });
      this.#providers.set('github', this.#github);
    }
    if (c.oauthGoogleClientId && c.oauthGoogleClientSecret) {
      const issuer = c.oauthGoogleIssuer!.pathname === '/' ? c.oauthGoogleIssuer!.origin : c.oauthGoogleIssuer!.href;
      this.#providers.set('google', new OidcProvider({ id: 'google', name: 'Google', issuer, client_id: c.oauthGoogleClientId, client_secret: c.oauthGoogleClientSecret, scopes: ['openid', 'email', 'profile'] }));
    }
    for (const p of c.oidcProviders) this.#providers.set(p.id, new OidcProvider(p));
  }

  /** GET /v1/auth/providers: the configured sign-in providers. */
  providers(): ProviderInfo[] {
    return [...this.#providers.values()].map((p) => ({ id: p.id, name: p.name, type: p.type }));
  }

  #provider(id: string): SignInProvider {
    const p = this.#providers.get(id);
    if (!p) throw new Problem('not_found', `No sign-in provider "${id}" is configured (GET /v1/auth/providers lists them)`);
    return p;
  }

  #redirectUri(provider: string): string {
    const base = this.#publicUrl!.href.replace(/\/+$/, '');
    return `${base}/v1/auth/oauth/${provider}/callback`;
  }

  /** GET /v1/auth/identities: the external identities linked to the user. */
  async identities(p: UserPrincipal): Promise<{ provider: string; subject: string; email: string | null; login: string | null; created_at: number }[]> {
    return (await listUserIdentities(this.#db, p.userId)).map((i) => ({ provider: i.provider, subject: i.subject, email: i.email, login: i.login, created_at: i.created_at }));
  }

  /**
   * DELETE /v1/auth/identities/{provider}: unlinks the user's identities of that provider (and so
   * their sealed provider token). 404 when none is linked; 409 when it is the last way to sign in
   * (no password, no other provider): set a password first (a reset link).
   */
  async unlink(p: UserPrincipal, provider: string): Promise<void> {
    const r = await unlinkIdentities(this.#db, p.userId, provider, Date.now());
    if (r === 'none') throw new Problem('not_found', `No identity of "${provider}" is linked to you`);
    if (r === 'last') throw new Problem('conflict', `"${provider}" is your only way to sign in; set a password first (POST /v1/auth/password-reset)`);
    await this.#audit.record({ workspaceId: p.workspaceId, actor: `user:${p.userId}`, action: 'auth.identity_unlink', target: p.userId, details: { provider } });
  }

  /**
   * GET /v1/auth/oauth/{provider}: where to send the browser, and the value of the cookie that
   * binds this sign-in to it.
   */
  async begin(providerId: string, ip: string): Promise<{ location: string; binding: string }> {
    const provider = this.#provider(providerId);
    const d = await this.#limiter.consume(`oauth:ip:${ip}`, OAUTH_START_THROTTLE.limit, OAUTH_START_THROTTLE.periodMs);
    if (!d.allowed) {
      const seconds = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
      throw new Problem('rate_limited', `Too many sign-ins started from this address; retry in ${seconds}s`, { headers: { 'retry-after': String(seconds) } });
    }
    const now = Date.now();
    const state = random();
    const binding = random();
    const verifier = random();
    const nonce = provider.usesNonce ? random() : null;
    const location = await provider.authorizeUrl({
      state,
      nonce: nonce ?? '',
      codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
      redirectUri: this.#redirectUri(provider.id),
    });
    await purgeStates(this.#db, now);
    await insertState(this.#db, {
      state_hash: sha256(state),
      provider: provider.id,
      binding_hash: sha256(binding),
      code_verifier: this.#secrets.seal(verifier),
      nonce,
      created_at: now,
      expires_at: now + STATE_TTL_MS,
    });
    return { location: location.href, binding };
  }

  /** GET /v1/auth/oauth/{provider}/callback: finishes the sign-in; new tokens as from a password sign-in. */
  async finish(
    providerId: string,
    query: { code?: string | undefined; state?: string | undefined; error?: string | undefined; error_description?: string | undefined },
    binding: string | undefined,
    client: ClientInfo,
  ): Promise<IssuedTokens> {
    const provider = this.#provider(providerId);
    if (!query.state) throw new Problem('invalid_oauth_state', 'The callback has no state parameter');
    const row = await takeState(this.#db, sha256(query.state));
    const now = Date.now();
    if (!row || row.provider !== provider.id) throw new Problem('invalid_oauth_state', 'This sign-in state is unknown or was used already; start signing in again');
    if (row.expires_at <= now) throw new Problem('invalid_oauth_state', 'This sign-in took longer than 10 minutes; start signing in again');
    if (!binding || sha256(binding) !== row.binding_hash) throw new Problem('invalid_oauth_state', 'This sign-in was not started in this browser (the herald_oauth cookie is missing or different)');
    try {
      if (query.error) {
        const desc = query.error_description ? `: ${query.error_description.slice(0, 200)}` : '';
        throw new Problem('oauth_failed', `${provider.name} did not sign you in (${query.error.slice(0, 100)}${desc})`);
      }
      if (!query.code) throw new Problem('oauth_failed', `${provider.name} answered without an authorization code`);
      const profile = await provider.finish({ code: query.code, codeVerifier: this.#secrets.open(row.code_verifier), nonce: row.nonce ?? '', redirectUri: this.#redirectUri(provider.id) });
      const userId = await this.#resolveUser(provider, profile, client);
      return await this.#accounts.signInExternal(userId, provider.id, client);
    } catch (err) {
      // A sign-in that got past the state check and failed is audited like a failed password
      // sign-in (a bad state is not: anyone can send one, and it reached no provider).
      if (err instanceof Problem) {
        await this.#audit.record({
          workspaceId: DEFAULT_WORKSPACE_ID,
          actor: 'anonymous',
          action: 'auth.login_failed',
          target: null,
          details: { via: provider.id, code: err.code, detail: err.detail ?? null, ip: client.ip, user_agent: client.userAgent ?? null },
        });
      }
      throw err;
    }
  }

  async #resolveUser(provider: SignInProvider, profile: ExternalProfile, client: ClientInfo): Promise<string> {
    const now = Date.now();
    const sealed = profile.token ? this.#secrets.seal(profile.token) : null;
    const identity = await findIdentity(this.#db, provider.id, profile.subject);
    if (identity) {
      await updateIdentity(this.#db, provider.id, profile.subject, { email: profile.email, login: profile.login, token: sealed }, now);
      if (profile.token) {
        this.#forgetChecks(identity.user_id);
        await this.#joinLinkedOrgs(identity.user_id, profile.token);
      }
      return identity.user_id;
    }
    if (!profile.email || !profile.emailVerified) {
      throw new Problem('email_unverified', `${provider.name} does not vouch for ${profile.email ? `the address ${profile.email}` : 'any email address'} of this account; verify it there (GitHub: the primary address) and sign in again`);
    }
    const existing = await findUserByEmail(this.#db, profile.email);
    let userId: string;
    if (existing) {
      userId = existing.id;
      await this.#link(provider, profile, userId, sealed, now);
      const orgs = await listMemberships(this.#db, userId);
      await this.#audit.record({
        workspaceId: orgs[0]?.workspace_id ?? 'ws_default',
        actor: `user:${userId}`,
        action: 'auth.identity_link',
        target: userId,
        details: { provider: provider.id, subject: profile.subject, email: profile.email, ip: client.ip, user_agent: client.userAgent ?? null },
      });
      if (profile.token) await this.#joinLinkedOrgs(userId, profile.token);
      return userId;
    }
    // A new user.
    if (this.#signup === 'closed') throw new Problem('signup_closed', 'This server does not accept new users (HERALD_SIGNUP=closed)');
    const linked = profile.token ? await this.#linkedOrgsOf(profile.token) : [];
    const invited = await this.#invitations.hasPending(profile.email);
    if (this.#signup === 'invite' && linked.length === 0 && !invited) {
      throw new Problem('invitation_required', 'This server accepts new users only with an invitation (HERALD_SIGNUP=invite); ask an administrator of your organization');
    }
    const name = (profile.name ?? profile.login ?? profile.email.split('@')[0]!).slice(0, 100);
    userId = newId('usr');
    if (!(await insertUser(this.#db, { id: userId, email: profile.email.trim(), email_key: emailKey(profile.email), name, password_hash: null, created_at: now, updated_at: now }))) {
      // Made at the same moment by another sign-in: link to that user instead.
      userId = (await findUserByEmail(this.#db, profile.email))!.id;
    }
    if (!(await this.#link(provider, profile, userId, sealed, now))) return (await findIdentity(this.#db, provider.id, profile.subject))!.user_id;
    // The provider verified the address.
    await markEmailVerified(this.#db, userId, now);
    const joined = invited ? await this.#invitations.acceptPendingFor(userId, profile.email, client) : [];
    await this.#join(userId, linked);
    let home = joined[0] ?? linked[0]?.workspace_id;
    if (home === undefined) {
      home = newId('ws');
      await createOrganization(this.#db, { id: home, name: `${name}'s organization`.slice(0, 200) }, now);
      await putMembership(this.#db, { user_id: userId, workspace_id: home, role: 'owner' }, now);
    }
    await this.#audit.record({ workspaceId: home, actor: `user:${userId}`, action: 'auth.register', target: userId, details: { email: profile.email, provider: provider.id, ip: client.ip, user_agent: client.userAgent ?? null } });
    return userId;
  }

  #link(provider: SignInProvider, profile: ExternalProfile, userId: string, sealed: string | null, now: number): Promise<boolean> {
    return insertIdentity(this.#db, { provider: provider.id, subject: profile.subject, user_id: userId, email: profile.email, login: profile.login, token: sealed, created_at: now, updated_at: now });
  }

  /** Organizations linked to a GitHub organization the token's user belongs to (read now, cached). */
  async #linkedOrgsOf(token: string, userId?: string): Promise<{ workspace_id: string; default_role: string }[]> {
    if (!(await anyGithubLinks(this.#db))) return [];
    const orgs = await this.#githubOrgs(token, userId);
    return githubLinksFor(this.#db, orgs);
  }

  async #joinLinkedOrgs(userId: string, token: string): Promise<void> {
    await this.#join(userId, await this.#linkedOrgsOf(token, userId));
  }

  /** Adds the user to each linked organization they are not a member of, with its default role. */
  async #join(userId: string, links: { workspace_id: string; default_role: string }[]): Promise<void> {
    for (const l of links) {
      if (await findMembership(this.#db, userId, l.workspace_id)) continue;
      await putMembership(this.#db, { user_id: userId, workspace_id: l.workspace_id, role: l.default_role }, Date.now());
      await this.#audit.record({ workspaceId: l.workspace_id, actor: `user:${userId}`, action: 'member.join_github', target: userId, details: { role: l.default_role } });
    }
  }

  /** The GitHub organizations (lowercased logins) the token's user belongs to; cached per user. */
  async #githubOrgs(token: string, userId: string | undefined): Promise<string[]> {
    const cached = userId ? this.#orgCache.get(userId) : undefined;
    if (cached) return cached;
    const r = await this.#github!.api(token, 'user/orgs?per_page=100');
    if (r.status !== 200 || !Array.isArray(r.body)) {
      this.#log?.warn({ status: r.status, user: userId }, 'GitHub /user/orgs failed; no organization memberships assumed');
      return [];
    }
    const orgs = (r.body as unknown[]).flatMap((o) => (typeof o === 'object' && o !== null && typeof (o as { login?: unknown }).login === 'string' ? [(o as { login: string }).login.toLowerCase()] : []));
    if (userId) this.#orgCache.set(userId, orgs);
    return orgs;
  }

  #forgetChecks(userId: string): void {
    this.#orgCache.delete(userId);
  }

  /** The user's GitHub token, or undefined when they never signed in with GitHub. */
  async #githubToken(userId: string): Promise<string | undefined> {
    const id = await findUserIdentity(this.#db, userId, 'github');
    return id?.token ? this.#secrets.open(id.token) : undefined;
  }

  /**
   * Whether the user can read the GitHub repository owner/repo, asked of GitHub with the user's own
   * token (GET /repos/{owner}/{repo}); false when they never signed in with GitHub, the token was
   * revoked, or the repository is not visible to them. Cached at most 5 minutes per node. For the
   * webhook broker's access control.
   */
  async canReadGithubRepo(userId: string, owner: string, repo: string): Promise<boolean> {
    if (!this.#github) return false;
    const key = `${userId}\n${owner.toLowerCase()}/${repo.toLowerCase()}`;
    const cached = this.#repoCache.get(key);
    if (cached !== undefined) return cached;
    const token = await this.#githubToken(userId);
    if (!token) return false;
    const r = await this.#github.api(token, `repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}`);
    if (r.status >= 500) throw new Problem('provider_unavailable', `github: GET /repos/${owner}/${repo} answered ${r.status}`);
    const body = r.body as { permissions?: { pull?: unknown } } | undefined;
    const ok = r.status === 200 && body?.permissions?.pull !== false;
    this.#repoCache.set(key, ok);
    return ok;
  }

  /** The GitHub organization (lower case) the organization is linked to, if any. For the webhook broker. */
  async linkedGithubOrg(workspaceId: string): Promise<string | undefined> {
    return (await getGithubLink(this.#db, workspaceId))?.github_org;
  }

  /** Whether the user belongs to the GitHub organization `org` now (cached at most 5 minutes). */
  async isGithubOrgMember(userId: string, org: string): Promise<boolean> {
    if (!this.#github) return false;
    const token = await this.#githubToken(userId);
    if (!token) return false;
    return (await this.#githubOrgs(token, userId)).includes(org.toLowerCase());
  }

  async #adminRole(p: UserPrincipal, org: string, write: boolean): Promise<void> {
    const role = await findMembership(this.#db, p.userId, org);
    if (!role || !isRole(role)) throw new Problem('not_found', `No organization "${org}"`);
    if (write && !roleAllows(role, 'admin')) throw new Problem('forbidden', `Your role (${role}) cannot change the organization's GitHub link`);
  }

  /** GET /v1/orgs/{org}/github (any member). */
  async githubLink(p: UserPrincipal, org: string): Promise<GithubLinkView> {
    await this.#adminRole(p, org, false);
    const l = await getGithubLink(this.#db, org);
    if (!l) throw new Problem('not_found', 'This organization is not linked to a GitHub organization');
    return { org: l.github_org, default_role: l.default_role as UserRole, updated_at: l.updated_at };
  }

  /** PUT /v1/orgs/{org}/github (admin, owner). */
  async setGithubLink(p: UserPrincipal, org: string, input: { org: string; default_role: UserRole }): Promise<GithubLinkView> {
    await this.#adminRole(p, org, true);
    const githubOrg = input.org.toLowerCase();
    await putGithubLink(this.#db, { workspace_id: org, github_org: githubOrg, default_role: input.default_role }, Date.now());
    await this.#audit.record({ workspaceId: org, actor: `user:${p.userId}`, action: 'org.github_link', target: org, details: { github_org: githubOrg, default_role: input.default_role } });
    return this.githubLink(p, org);
  }

  /** DELETE /v1/orgs/{org}/github (admin, owner); members who joined through it stay. */
  async deleteGithubLink(p: UserPrincipal, org: string): Promise<void> {
    await this.#adminRole(p, org, true);
    if (!(await deleteGithubLink(this.#db, org))) throw new Problem('not_found', 'This organization is not linked to a GitHub organization');
    await this.#audit.record({ workspaceId: org, actor: `user:${p.userId}`, action: 'org.github_unlink', target: org });
  }
}
