// A signed-in user's own account: changing the password (the user's other sessions end) and
// erasing the account (security-store.ts eraseUser: personal data deleted, audit entries keep the
// user id as a pseudonym). Both need the current password. Erasing is refused (409 conflict) while
// the user is the only owner of an organization: every organization keeps an owner.

import type { Kysely } from 'kysely';
import type { AuditService } from '../audit/service.ts';
import { Problem } from '../errors.ts';
import type { Database } from '../store/schema.ts';
import { checkPolicy } from './accounts.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import type { UserPrincipal } from './principal.ts';
import { eraseUser, revokeOtherSessions, soleOwnerships } from './security-store.ts';
import { findUser, setUserPassword } from './store.ts';

export class SelfService {
  readonly #db: Kysely<Database>;
  readonly #audit: AuditService;

  constructor(db: Kysely<Database>, deps: { audit: AuditService }) {
    this.#db = db;
    this.#audit = deps.audit;
  }

  async #checkPassword(p: UserPrincipal, password: string, path: string): Promise<void> {
    const u = await findUser(this.#db, p.userId);
    if (!u) throw new Problem('unauthorized', 'The user no longer exists', { headers: { 'www-authenticate': 'Bearer' } });
    if (!u.password_hash || !(await verifyPassword(password, u.password_hash))) {
      throw new Problem('invalid_credentials', `${path}: the password is not correct`, { headers: { 'www-authenticate': 'Bearer' } });
    }
  }

  /** POST /v1/auth/password: the number of other sessions ended. */
  async changePassword(p: UserPrincipal, current: string, next: string): Promise<number> {
    await this.#checkPassword(p, current, 'body.current_password');
    const v = checkPolicyAt(next);
    const now = Date.now();
    await setUserPassword(this.#db, p.userId, await hashPassword(v), now);
    const ended = await revokeOtherSessions(this.#db, p.userId, p.sessionId, now);
    await this.#audit.record({ workspaceId: p.workspaceId, actor: `user:${p.userId}`, action: 'auth.password_change', target: p.userId, details: { sessions_ended: ended } });
    return ended;
  }

  /** DELETE /v1/auth/me. */
  async erase(p: UserPrincipal, password: string): Promise<void> {
    await this.#checkPassword(p, password, 'body.password');
    const sole = await soleOwnerships(this.#db, p.userId);
    if (sole.length > 0) throw new Problem('conflict', `You are the only owner of ${sole.join(', ')}: make another member owner (or delete the organization) first`);
    await eraseUser(this.#db, p.userId);
    await this.#audit.record({ workspaceId: p.workspaceId, actor: `user:${p.userId}`, action: 'auth.erase', target: p.userId });
  }
}

function checkPolicyAt(password: string): string {
  try {
    checkPolicy(password);
  } catch (err) {
    if (err instanceof Problem && err.code === 'weak_password') throw new Problem('weak_password', err.detail?.replace('body.password', 'body.new_password'), { errors: [{ path: 'body.new_password', message: err.errors?.[0]?.message ?? 'weak' }] });
    throw err;
  }
  return password;
}
