// Accounts: registering, signing in, sessions (refresh-token families), and resolving access
// tokens to user principals. The auth routes (auth/routes.ts) and the CLI call this service.
//
// Sessions: sign-in opens a session acting in one organization (the user's oldest membership);
// it lives SESSION_TTL_MS (30 days) from sign-in, whatever its rotations. State machine of a
// session's refresh token:
//   current --refresh--> rotated (its hash moves to session_rotated_tokens; a new current one)
//   current --switch {org}--> rotated (the session now acts in `org`)
//   rotated --presented again--> the session is revoked (reuse: someone holds a copy)
//   any --logout / logout-all / expiry--> revoked (refresh and access tokens stop working)
// An access token names its session; it works only while the session is live, acts in the same
// organization, and the user is still a member there (checked per request, auth/store.ts
// userSession), so logout and role changes take effect at the next request.
//
// Sign-in failures are answered identically (401 invalid_credentials) whether or not the address
// has a user, after the same scrypt work (verifyDummy), and are slowed per account and per client
// address (domain/login-throttle.ts). Every sign-in, failed or not, is audited.

import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { AuditService } from '../audit/service.ts';
import { Problem } from '../errors.ts';
import { newId } from '../domain/ids.ts';
import { ACCOUNT_THROTTLE, ADDRESS_THROTTLE, failureDelayMs, type ThrottleRule } from '../domain/login-throttle.ts';
import { isRole, type UserRole } from '../domain/roles.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import type { Database } from '../store/schema.ts';
import { DEFAULT_WORKSPACE_ID } from '../store/workspaces.ts';
import { hashPassword, needsRehash, passwordVerdict, verifyDummy, verifyPassword } from './passwords.ts';
import type { UserLookup, UserPrincipal } from './principal.ts';
import {
  createOrganization,
  emailKey,
  findMembership,
  findRefresh,
  findUser,
  findUserByEmail,
  insertSession,
  insertUser,
  listMemberships,
  putMembership,
  revokeSession,
  revokeUserSessions,
  rotateSession,
  setUserPassword,
  userSession,
  type UserRow,
} from './store.ts';
import { ACCESS_TTL_MS, hashRefreshToken, newRefreshToken, type TokenService } from './tokens.ts';

export const SESSION_TTL_MS = 30 * 86_400_000;

/** Every 401 carries a challenge (RFC 9110 §11.6.1). */
const CHALLENGE = { headers: { 'www-authenticate': 'Bearer' } };

export type SignupMode = 'invite' | 'open' | 'closed';

/** The second factor sign-in asks for when a user has it on (auth/totp.ts TotpService). */
export interface SecondFactor {
  /** How `code` proved the factor (a TOTP code or a recovery code, each accepted once), or false. */
  verify(user: UserRow, code: string): Promise<'totp' | 'recovery_code' | false>;
}

/** Where a request came from, for sessions, throttling and the audit log. */
export interface ClientInfo {
  ip: string;
  userAgent: string | undefined;
}

export interface IssuedTokens {
  accessToken: string;
  /** Seconds. */
  expiresIn: number;
  refreshToken: string;
  /** Seconds until the session ends. */
  refreshExpiresIn: number;
  userId: string;
  workspaceId: string;
  sessionId: string;
}

export interface UserView {
  id: string;
  email: string;
  name: string;
  created_at: number;
}

export class AccountService implements UserLookup {
  readonly #db: Kysely<Database>;
  readonly #tokens: TokenService;
  readonly #audit: AuditService;
  readonly #limiter: RateLimiter;
  readonly #signup: SignupMode;
  readonly #log: Logger | undefined;
  readonly #secondFactor: SecondFactor | undefined;

  constructor(db: Kysely<Database>, deps: { tokens: TokenService; audit: AuditService; limiter: RateLimiter; signup: SignupMode; log?: Logger; secondFactor?: SecondFactor }) {
    this.#db = db;
    this.#tokens = deps.tokens;
    this.#audit = deps.audit;
    this.#limiter = deps.limiter;
    this.#signup = deps.signup;
    this.#log = deps.log;
    this.#secondFactor = deps.secondFactor;
  }

  /**
   * POST /v1/auth/register: per HERALD_SIGNUP. With `open`, the new user owns a new organization
   * of their own (never joins an existing one: that takes an invitation).
   */
  async register(input: { email: string; password: string; name: string }, client: ClientInfo): Promise<{ user: UserView; organization: { id: string; name: string; role: UserRole } }> {
    if (this.#signup === 'closed') throw new Problem('signup_closed', 'This server does not accept new users (HERALD_SIGNUP=closed)');
    if (this.#signup === 'invite') throw new Problem('invitation_required', 'This server accepts new users only with an invitation (HERALD_SIGNUP=invite): register with {"invitation": <token>} from the invitation email, or ask an administrator of your organization for one');
    checkPolicy(input.password);
    const now = Date.now();
    const user = await this.#newUser(input, now);
    const org = { id: newId('ws'), name: `${input.name}'s organization`.slice(0, 200) };
    await createOrganization(this.#db, org, now);
    await putMembership(this.#db, { user_id: user.id, workspace_id: org.id, role: 'owner' }, now);
    await this.#audit.record({ workspaceId: org.id, actor: `user:${user.id}`, action: 'auth.register', target: user.id, details: { email: user.email, ip: client.ip, user_agent: client.userAgent ?? null } });
    return { user: userView(user), organization: { ...org, role: 'owner' } };
  }

  /** HERALD_ADMIN_EMAIL: see ensureMember. */
  ensureOwner(input: { email: string; password: string | undefined; name?: string }, actor: string): Promise<{ user: UserView; created: boolean }> {
    return ensureMember(this.#db, this.#audit, { ...input, role: 'owner' }, actor);
  }

  #newUser(input: { email: string; password: string; name: string }, now: number): Promise<UserRow> {
    return newUser(this.#db, input, now);
  }

  /** POST /v1/auth/login. */
  /**
   * POST /v1/auth/login. With TOTP on (auth/totp.ts), the password is checked first; only a right
   * password gets 401 totp_required (no `totp`) or invalid_totp (a wrong code, counted as a failure).
   */
  async login(email: string, password: string, client: ClientInfo, totp?: string): Promise<IssuedTokens> {
    const account = `login:acct:${emailKey(email)}`;
    const address = `login:ip:${client.ip}`;
    const [a, b] = await Promise.all([
      this.#limiter.peek(account, ACCOUNT_THROTTLE.limit, ACCOUNT_THROTTLE.periodMs),
      this.#limiter.peek(address, ADDRESS_THROTTLE.limit, ADDRESS_THROTTLE.periodMs),
    ]);
    if (!a.allowed || !b.allowed) {
      const seconds = Math.max(1, Math.ceil(Math.max(a.retryAfterMs, b.retryAfterMs) / 1000));
      await this.#audit.record({ workspaceId: DEFAULT_WORKSPACE_ID, actor: 'anonymous', action: 'auth.login_throttled', target: null, details: { email, ip: client.ip, user_agent: client.userAgent ?? null } });
      throw new Problem('rate_limited', `Too many failed sign-ins ${!a.allowed ? 'for this account' : 'from this address'}; retry in ${seconds}s`, { headers: { 'retry-after': String(seconds) } });
    }
    const user = await findUserByEmail(this.#db, email);
    const ok = user?.password_hash ? await verifyPassword(password, user.password_hash) : await verifyDummy(password);
    const memberships = user && ok ? await listMemberships(this.#db, user.id) : [];
    const org = memberships.find((m) => isRole(m.role));
    if (!user || !ok || !org) {
      const [fa, fb] = await Promise.all([this.#fail(account, ACCOUNT_THROTTLE), this.#fail(address, ADDRESS_THROTTLE)]);
      // The same query whether or not the address has a user: the answer's timing tells nothing.
      const orgs = await listMemberships(this.#db, user?.id ?? '');
      await this.#audit.record({
        workspaceId: orgs[0]?.workspace_id ?? DEFAULT_WORKSPACE_ID,
        actor: 'anonymous',
        action: 'auth.login_failed',
        target: user?.id ?? null,
        details: { email, ip: client.ip, user_agent: client.userAgent ?? null },
      });
      const delay = Math.max(fa, fb);
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      throw new Problem('invalid_credentials', undefined, CHALLENGE);
    }
    let secondFactor: 'totp' | 'recovery_code' | undefined;
    if (user.totp_enabled_at !== null && this.#secondFactor) {
      if (totp === undefined) throw new Problem('totp_required', 'Send the code of your authenticator app (or a recovery code) as "totp"', CHALLENGE);
      secondFactor = (await this.#secondFactor.verify(user, totp)) || undefined;
      if (!secondFactor) {
        const [fa, fb] = await Promise.all([this.#fail(account, ACCOUNT_THROTTLE), this.#fail(address, ADDRESS_THROTTLE)]);
        await this.#audit.record({ workspaceId: org.workspace_id, actor: 'anonymous', action: 'auth.login_failed', target: user.id, details: { email, reason: 'totp', ip: client.ip, user_agent: client.userAgent ?? null } });
        const delay = Math.max(fa, fb);
        if (delay > 0) await new Promise((r) => setTimeout(r, delay));
        throw new Problem('invalid_totp', undefined, CHALLENGE);
      }
    }
    if (needsRehash(user.password_hash!)) await setUserPassword(this.#db, user.id, await hashPassword(password), Date.now());
    const tokens = await this.#openSession(user.id, org.workspace_id, client);
    await this.#audit.record({
      workspaceId: org.workspace_id,
      actor: `user:${user.id}`,
      action: 'auth.login',
      target: tokens.sessionId,
      details: { ip: client.ip, user_agent: client.userAgent ?? null, ...(secondFactor && { second_factor: secondFactor }) },
    });
    return tokens;
  }

  /**
   * Opens a session for a user who signed in with an external provider (auth/oauth), acting in
   * their oldest organization, as a password sign-in does; audited auth.login with `via`.
   */
  async signInExternal(userId: string, via: string, client: ClientInfo): Promise<IssuedTokens> {
    const org = (await listMemberships(this.#db, userId)).find((m) => isRole(m.role));
    if (!org) throw new Problem('forbidden', 'You are not a member of any organization; ask an administrator to add you');
    const tokens = await this.#openSession(userId, org.workspace_id, client);
    await this.#audit.record({ workspaceId: org.workspace_id, actor: `user:${userId}`, action: 'auth.login', target: tokens.sessionId, details: { via, ip: client.ip, user_agent: client.userAgent ?? null } });
    return tokens;
  }

  /** Counts a failure in a throttle bucket; the delay it earns. */
  async #fail(key: string, rule: ThrottleRule): Promise<number> {
    const d = await this.#limiter.consume(key, rule.limit, rule.periodMs);
    if (d.unchecked) return 0;
    return failureDelayMs(rule, rule.limit - d.remaining);
  }

  async #openSession(userId: string, workspaceId: string, client: ClientInfo): Promise<IssuedTokens> {
    const now = Date.now();
    const refreshToken = newRefreshToken();
    const sessionId = newId('ses');
    const expiresAt = now + SESSION_TTL_MS;
    await insertSession(this.#db, {
      id: sessionId,
      user_id: userId,
      workspace_id: workspaceId,
      refresh_hash: hashRefreshToken(refreshToken),
      created_at: now,
      rotated_at: null,
      revoked_at: null,
      expires_at: expiresAt,
      ip: client.ip,
      user_agent: client.userAgent?.slice(0, 500) ?? null,
    });
    return this.#issue(userId, workspaceId, sessionId, refreshToken, expiresAt, now);
  }

  async #issue(userId: string, workspaceId: string, sessionId: string, refreshToken: string, expiresAt: number, now: number): Promise<IssuedTokens> {
    const access = await this.#tokens.sign({ userId, workspaceId, sessionId }, now);
    return { accessToken: access.token, expiresIn: access.expiresIn, refreshToken, refreshExpiresIn: Math.floor((expiresAt - now) / 1000), userId, workspaceId, sessionId };
  }

  /** POST /v1/auth/refresh: rotates the refresh token; a rotated one presented again revokes its session. */
  async refresh(token: string, client: ClientInfo): Promise<IssuedTokens> {
    const now = Date.now();
    const hash = hashRefreshToken(token);
    const found = await findRefresh(this.#db, hash);
    if (!found) throw new Problem('invalid_refresh_token', undefined, CHALLENGE);
    const s = found.session;
    if (found.kind === 'rotated') {
      if (await revokeSession(this.#db, s.id, now)) {
        this.#log?.warn({ session: s.id, user: s.user_id, ip: client.ip }, 'a rotated refresh token was presented again: session revoked');
        await this.#audit.record({ workspaceId: s.workspace_id, actor: 'anonymous', action: 'auth.refresh_reuse', target: s.id, details: { user: s.user_id, ip: client.ip, user_agent: client.userAgent ?? null } });
      }
      throw new Problem('invalid_refresh_token', 'This refresh token was already used; its session has been ended. Sign in again', CHALLENGE);
    }
    if (s.revoked_at !== null || s.expires_at <= now) throw new Problem('invalid_refresh_token', 'The session has ended; sign in again', CHALLENGE);
    const next = newRefreshToken();
    if (!(await rotateSession(this.#db, s.id, hash, hashRefreshToken(next), now))) {
      // Lost a race with another rotation of the same token: that is a reuse too.
      await revokeSession(this.#db, s.id, now);
      throw new Problem('invalid_refresh_token', 'This refresh token was already used; its session has been ended. Sign in again', CHALLENGE);
    }
    return this.#issue(s.user_id, s.workspace_id, s.id, next, s.expires_at, now);
  }

  /** POST /v1/auth/switch: the session now acts in `workspaceId`, where the user must be a member (else 404). */
  async switchOrganization(p: UserPrincipal, workspaceId: string, client: ClientInfo): Promise<IssuedTokens> {
    const role = await findMembership(this.#db, p.userId, workspaceId);
    if (!role || !isRole(role)) throw new Problem('not_found', `You are not a member of an organization "${workspaceId}"`);
    const now = Date.now();
    const found = await this.#db.selectFrom('sessions').selectAll().where('id', '=', p.sessionId).executeTakeFirst();
    const next = newRefreshToken();
    if (!found || !(await rotateSession(this.#db, found.id, found.refresh_hash, hashRefreshToken(next), now, workspaceId))) {
      throw new Problem('unauthorized', 'The session has ended; sign in again', { headers: { 'www-authenticate': 'Bearer' } });
    }
    await this.#audit.record({ workspaceId, actor: `user:${p.userId}`, action: 'auth.switch', target: p.sessionId, details: { from: p.workspaceId, ip: client.ip } });
    return this.#issue(p.userId, workspaceId, found.id, next, found.expires_at, now);
  }

  /** POST /v1/auth/logout: ends the session the principal's token belongs to. */
  async logout(p: UserPrincipal): Promise<void> {
    await revokeSession(this.#db, p.sessionId, Date.now());
    await this.#audit.record({ workspaceId: p.workspaceId, actor: `user:${p.userId}`, action: 'auth.logout', target: p.sessionId });
  }

  /** POST /v1/auth/logout-all: ends every session of the user; how many were live. */
  async logoutAll(p: UserPrincipal): Promise<number> {
    const n = await revokeUserSessions(this.#db, p.userId, Date.now());
    await this.#audit.record({ workspaceId: p.workspaceId, actor: `user:${p.userId}`, action: 'auth.logout_all', target: p.userId, details: { sessions: n } });
    return n;
  }

  /** GET /v1/auth/me. */
  async me(p: UserPrincipal): Promise<{ user: UserView & { email_verified: boolean }; organization: { id: string; role: UserRole }; organizations: { id: string; name: string; role: string }[] }> {
    const user = await findUser(this.#db, p.userId);
    if (!user) throw new Problem('unauthorized', 'The user no longer exists', { headers: { 'www-authenticate': 'Bearer' } });
    const orgs = await listMemberships(this.#db, p.userId);
    return { user: { ...userView(user), email_verified: user.email_verified_at !== null }, organization: { id: p.workspaceId, role: p.role }, organizations: orgs.map((o) => ({ id: o.workspace_id, name: o.name, role: o.role })) };
  }

  async resolveAccessToken(token: string): Promise<UserPrincipal | undefined> {
    const claims = await this.#tokens.verify(token);
    if (!claims) return undefined;
    const session = await userSession(this.#db, claims.sessionId, claims.userId, claims.workspaceId, Date.now());
    if (!session || !isRole(session.role)) return undefined;
    return { kind: 'user', userId: claims.userId, workspaceId: claims.workspaceId, role: session.role, sessionId: claims.sessionId, ...(session.totpMissing && { totpMissing: true }) };
  }
}

async function newUser(db: Kysely<Database>, input: { email: string; password: string; name: string }, now: number): Promise<UserRow> {
  const user: UserRow = {
    id: newId('usr'),
    email: input.email.trim(),
    email_key: emailKey(input.email),
    name: input.name,
    password_hash: await hashPassword(input.password),
    created_at: now,
    updated_at: now,
    email_verified_at: null,
    totp_secret: null,
    totp_enabled_at: null,
    totp_last_step: null,
  };
  if (!(await insertUser(db, user))) throw new Problem('email_taken', `A user with the email address ${input.email} exists`);
  return user;
}

/**
 * Makes the user `email` a member of the default organization with `role`, creating the user if
 * missing (with `password`, checked against the policy; without one, a missing user is a
 * validation_failed problem). An existing user keeps its password. For HERALD_ADMIN_EMAIL (role
 * owner) and `herald users create`.
 */
export async function ensureMember(
  db: Kysely<Database>,
  audit: AuditService,
  input: { email: string; password: string | undefined; name?: string | undefined; role: UserRole },
  actor: string,
): Promise<{ user: UserView; created: boolean }> {
  const now = Date.now();
  let user = await findUserByEmail(db, input.email);
  let created = false;
  if (!user) {
    if (input.password === undefined) throw new Problem('validation_failed', `No user ${input.email}; a password is needed to create it`);
    checkPolicy(input.password);
    try {
      user = await newUser(db, { email: input.email, password: input.password, name: input.name ?? input.email.split('@')[0]! }, now);
      created = true;
    } catch (err) {
      // Another node created it at the same moment.
      if (!(err instanceof Problem && err.code === 'email_taken')) throw err;
      user = (await findUserByEmail(db, input.email))!;
    }
  }
  const role = await findMembership(db, user.id, DEFAULT_WORKSPACE_ID);
  if (role !== input.role) {
    await putMembership(db, { user_id: user.id, workspace_id: DEFAULT_WORKSPACE_ID, role: input.role }, now);
    await audit.record({ workspaceId: DEFAULT_WORKSPACE_ID, actor, action: 'member.put', target: user.id, details: { email: user.email, role: input.role, previous_role: role ?? null, created } });
  }
  return { user: userView(user), created };
}

export function checkPolicy(password: string): void {
  const v = passwordVerdict(password);
  if (!v.ok) throw new Problem('weak_password', `body.password ${v.message}`, { errors: [{ path: 'body.password', message: v.message }] });
}

function userView(u: UserRow): UserView {
  return { id: u.id, email: u.email, name: u.name, created_at: u.created_at };
}

export { ACCESS_TTL_MS };
