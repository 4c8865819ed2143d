// Emailed single-use links of a user (user_tokens, migration 0017): verifying the address and
// resetting the password. Sent through Herald's own email channel (auth/mailer.ts).
//
// A link token is `hv_` (verify_email) or `hp_` (reset_password) + 32 random bytes, stored only as
// its sha256, valid LINK_TTL_MS (one hour) and used up by compare-and-set (security-store.ts
// useUserToken), so it works once even when presented twice at the same moment.
//
//   verify_email:   issued --confirm (once, within the hour)--> used: users.email_verified_at set
//   reset_password: issued --confirm (once, within the hour)--> used: the new password is set,
//                   every session of the user ends, the user's other reset links are used up, and
//                   the address counts as verified (the link reached it)
//
// Asking for a reset answers the same whether or not the address has a user: the message is sent
// after the answer (its failure is logged, never shown), and asks for one address are limited to
// RESET_LIMIT per RESET_PERIOD_MS (beyond it nothing is sent, still the same answer), so the route
// neither tells who has an account nor mails someone without end.

import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { AuditService } from '../audit/service.ts';
import { Problem } from '../errors.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import type { Database } from '../store/schema.ts';
import { DEFAULT_WORKSPACE_ID } from '../store/workspaces.ts';
import { checkPolicy, type ClientInfo } from './accounts.ts';
import type { AccountMailer } from './mailer.ts';
import { hashPassword } from './passwords.ts';
import type { UserPrincipal } from './principal.ts';
import { insertUserToken, markEmailVerified, useUserToken, useUserTokens } from './security-store.ts';
import { emailKey, findUser, findUserByEmail, listMemberships, revokeUserSessions, setUserPassword } from './store.ts';

export const LINK_TTL_MS = 3_600_000;
export const RESET_LIMIT = 3;
export const RESET_PERIOD_MS = 15 * 60_000;

type LinkKind = 'verify_email' | 'reset_password';

const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

export class EmailLinkService {
  readonly #db: Kysely<Database>;
  readonly #audit: AuditService;
  readonly #mailer: AccountMailer;
  readonly #limiter: RateLimiter;
  readonly #log: Logger;

  constructor(db: Kysely<Database>, deps: { audit: AuditService; mailer: AccountMailer; limiter: RateLimiter; log: Logger }) {
    this.#db = db;
    this.#audit = deps.audit;
    this.#mailer = deps.mailer;
    this.#limiter = deps.limiter;
    this.#log = deps.log;
  }

  async #issue(userId: string, kind: LinkKind, now: number): Promise<string> {
    const token = (kind === 'verify_email' ? 'hv_' : 'hp_') + randomBytes(32).toString('base64url');
    await insertUserToken(this.#db, { hash: hashToken(token), user_id: userId, kind, created_at: now, expires_at: now + LINK_TTL_MS, used_at: null });
    return token;
  }

  /** POST /v1/auth/verify-email: emails a verification link to the user's address. */
  async sendVerification(p: UserPrincipal): Promise<void> {
    const user = await findUser(this.#db, p.userId);
    if (!user) throw new Problem('unauthorized', 'The user no longer exists', { headers: { 'www-authenticate': 'Bearer' } });
    if (user.email_verified_at !== null) throw new Problem('conflict', `${user.email} is verified already`);
    if (!this.#mailer.configured) throw new Problem('email_not_configured', 'Verification links are emailed: set HERALD_SMTP_URL');
    const token = await this.#issue(user.id, 'verify_email', Date.now());
    await this.#mailer.send({
      to: user.email,
      subject: 'Verify your email address for Herald',
      intro: `Open this link to confirm that ${user.email} is yours. It works once, for one hour.`,
      page: 'verify-email',
      token,
      api: 'POST /v1/auth/verify-email/confirm {"token": "{token}"}',
      workspaceId: p.workspaceId,
    });
    await this.#audit.record({ workspaceId: p.workspaceId, actor: `user:${p.userId}`, action: 'auth.verify_email_sent', target: p.userId });
  }

  /** POST /v1/auth/verify-email/confirm: marks the address verified. */
  async confirmVerification(token: string, client: ClientInfo): Promise<{ user: string; email: string }> {
    const now = Date.now();
    const userId = await useUserToken(this.#db, hashToken(token), 'verify_email', now);
    const user = userId === undefined ? undefined : await findUser(this.#db, userId);
    if (!user) throw new Problem('invalid_token');
    await markEmailVerified(this.#db, user.id, now);
    await this.#audit.record({ workspaceId: await this.#homeOf(user.id), actor: `user:${user.id}`, action: 'auth.email_verified', target: user.id, details: { ip: client.ip, user_agent: client.userAgent ?? null } });
    return { user: user.id, email: user.email };
  }

  /**
   * POST /v1/auth/password-reset: emails a reset link when a user has the address. Answers the
   * same in every case but a server that sends no email at all (409 email_not_configured).
   */
  async requestReset(email: string, client: ClientInfo): Promise<void> {
    if (!this.#mailer.configured) throw new Problem('email_not_configured', 'Reset links are emailed: set HERALD_SMTP_URL');
    const allowed = await this.#limiter.consume(`reset:acct:${emailKey(email)}`, RESET_LIMIT, RESET_PERIOD_MS);
    const user = await findUserByEmail(this.#db, email);
    const workspaceId = await this.#homeOf(user?.id ?? '');
    await this.#audit.record({ workspaceId, actor: 'anonymous', action: 'auth.password_reset_requested', target: user?.id ?? null, details: { email, sent: Boolean(user && allowed.allowed), ip: client.ip, user_agent: client.userAgent ?? null } });
    if (!user || !allowed.allowed) return;
    const token = await this.#issue(user.id, 'reset_password', Date.now());
    // After the answer: how long sending takes must not tell that the address has a user.
    setImmediate(() => {
      this.#mailer
        .send({
          to: user.email,
          subject: 'Reset your Herald password',
          intro: `Someone (hopefully you) asked to reset the password of ${user.email} on Herald. Open this link to choose a new one; it works once, for one hour, and signs you out everywhere.`,
          page: 'reset-password',
          token,
          api: 'POST /v1/auth/password-reset/confirm {"token": "{token}", "password": "…"}',
          workspaceId,
        })
        .catch((err: unknown) => this.#log.warn({ err, user: user.id }, 'password reset email not sent'));
    });
  }

  /** POST /v1/auth/password-reset/confirm: sets the password; every session of the user ends. */
  async confirmReset(token: string, password: string, client: ClientInfo): Promise<{ sessions_ended: number }> {
    checkPolicy(password);
    const now = Date.now();
    const userId = await useUserToken(this.#db, hashToken(token), 'reset_password', now);
    const user = userId === undefined ? undefined : await findUser(this.#db, userId);
    if (!user) throw new Problem('invalid_token');
    await setUserPassword(this.#db, user.id, await hashPassword(password), now);
    await useUserTokens(this.#db, user.id, 'reset_password', now);
    await markEmailVerified(this.#db, user.id, now);
    const ended = await revokeUserSessions(this.#db, user.id, now);
    await this.#audit.record({ workspaceId: await this.#homeOf(user.id), actor: `user:${user.id}`, action: 'auth.password_reset', target: user.id, details: { sessions_ended: ended, ip: client.ip, user_agent: client.userAgent ?? null } });
    return { sessions_ended: ended };
  }

  /** The organization a user's audit entries go to: their oldest, or the default one. */
  async #homeOf(userId: string): Promise<string> {
    return (await listMemberships(this.#db, userId))[0]?.workspace_id ?? DEFAULT_WORKSPACE_ID;
  }
}
