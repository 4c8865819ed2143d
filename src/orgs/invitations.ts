// Invitations: an organization's admin invites an email address with a role; the invitation is
// emailed as a single-use link (auth/mailer.ts) valid INVITATION_TTL_MS (7 days). Its token is
// stored only as its sha256.
//
// State machine of an invitation:
//   pending --accept (the link, once)--> accepted (the person is a member with the role)
//   pending --DELETE by an admin--> revoked
//   pending --7 days--> expired
// Accepting: a signed-in user whose address is the invited one (another address is 403
// invitation_email_mismatch), or a new user registering with {name, password} under the invited
// address (HERALD_SIGNUP invite or open; closed refuses). The link proves the address: the user's
// email counts as verified. Someone already a member keeps their role. The acceptance runs under the
// organization's membership lock and uses the invitation up by compare-and-set, so a link works once.
// Who may invite: admins (roles below owner) and owners (any role), as for members (orgs/service.ts).

import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditService } from '../audit/service.ts';
import { checkPolicy, type ClientInfo, type SignupMode } from '../auth/accounts.ts';
import type { AccountMailer } from '../auth/mailer.ts';
import { hashPassword } from '../auth/passwords.ts';
import type { UserPrincipal } from '../auth/principal.ts';
import { markEmailVerified } from '../auth/security-store.ts';
import { emailKey, findMembership, findUser, findUserByEmail, insertUser, putMembership } from '../auth/store.ts';
import { newId } from '../domain/ids.ts';
import { isRole, roleAllows, type UserRole } from '../domain/roles.ts';
import { Problem } from '../errors.ts';
import type { Database, InvitationsTable } from '../store/schema.ts';
import { deleteInvitation, findInvitationByHash, insertInvitation, listInvitations, pendingInvitationsFor, revokeInvitation, useInvitation } from './invitations-store.ts';
import { getOrganization, withMembershipLock } from './store.ts';

export const INVITATION_TTL_MS = 7 * 86_400_000;

export type InvitationStatus = 'pending' | 'accepted' | 'revoked' | 'expired';

export interface InvitationView {
  id: string;
  organization: string;
  email: string;
  role: string;
  status: InvitationStatus;
  invited_by: string;
  created_at: number;
  expires_at: number;
  accepted_at: number | null;
  accepted_by: string | null;
}

const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

function statusOf(i: InvitationsTable, now: number): InvitationStatus {
  if (i.accepted_at !== null) return 'accepted';
  if (i.revoked_at !== null) return 'revoked';
  return i.expires_at <= now ? 'expired' : 'pending';
}

function view(i: InvitationsTable, now = Date.now()): InvitationView {
  return { id: i.id, organization: i.workspace_id, email: i.email, role: i.role, status: statusOf(i, now), invited_by: i.invited_by, created_at: i.created_at, expires_at: i.expires_at, accepted_at: i.accepted_at, accepted_by: i.accepted_by };
}

export class InvitationService {
  readonly #db: Kysely<Database>;
  readonly #audit: AuditService;
  readonly #mailer: AccountMailer;
  readonly #signup: SignupMode;

  constructor(db: Kysely<Database>, deps: { audit: AuditService; mailer: AccountMailer; signup: SignupMode }) {
    this.#db = db;
    this.#audit = deps.audit;
    this.#mailer = deps.mailer;
    this.#signup = deps.signup;
  }

  /** The principal's role in `org` when it allows managing members; 404 when not a member, 403 below admin. */
  async #admin(p: UserPrincipal, org: string): Promise<UserRole> {
    const role = await findMembership(this.#db, p.userId, org);
    if (!role || !isRole(role)) throw new Problem('not_found', `No organization "${org}"`);
    if (!roleAllows(role, 'admin')) throw new Problem('forbidden', `Your role (${role}) cannot manage invitations`);
    return role;
  }

  /** POST /v1/orgs/{org}/invitations: records the invitation and emails its link. */
  async create(p: UserPrincipal, org: string, input: { email: string; role: UserRole }): Promise<InvitationView> {
    const mine = await this.#admin(p, org);
    if (input.role === 'owner' && mine !== 'owner') throw new Problem('forbidden', 'Only an owner can invite owners');
    if (!this.#mailer.configured) throw new Problem('email_not_configured', 'Invitations are emailed: set HERALD_SMTP_URL');
    const now = Date.now();
    const token = 'hi_' + randomBytes(32).toString('base64url');
    const row: InvitationsTable = {
      id: newId('inv'),
      workspace_id: org,
      email: input.email.trim(),
      email_key: emailKey(input.email),
      role: input.role,
      hash: hashToken(token),
      invited_by: `user:${p.userId}`,
      created_at: now,
      expires_at: now + INVITATION_TTL_MS,
      accepted_at: null,
      accepted_by: null,
      revoked_at: null,
    };
    await insertInvitation(this.#db, row);
    const orgName = (await getOrganization(this.#db, org))?.name ?? org;
    const inviter = await findUser(this.#db, p.userId);
    try {
      await this.#mailer.send({
        to: row.email,
        subject: `You are invited to ${orgName} on Herald`,
        intro: `${inviter?.name ?? 'Someone'} invites you to the organization "${orgName}" on Herald as ${input.role}. The invitation works once, until ${new Date(row.expires_at).toUTCString()}.`,
        page: 'invitation',
        token,
        api: 'POST /v1/invitations/{token}/accept (signed in, or with {"name", "password"} to register)',
        workspaceId: org,
      });
    } catch (err) {
      // Nobody can use an invitation that did not reach its address.
      await deleteInvitation(this.#db, row.id);
      throw err;
    }
    await this.#audit.record({ workspaceId: org, actor: `user:${p.userId}`, action: 'invitation.create', target: row.id, details: { email: row.email, role: row.role } });
    return view(row, now);
  }

  async list(p: UserPrincipal, org: string): Promise<InvitationView[]> {
    await this.#admin(p, org);
    const now = Date.now();
    return (await listInvitations(this.#db, org)).map((i) => view(i, now));
  }

  /** DELETE /v1/orgs/{org}/invitations/{id}: 404 unless pending. */
  async revoke(p: UserPrincipal, org: string, id: string): Promise<void> {
    await this.#admin(p, org);
    if (!(await revokeInvitation(this.#db, org, id, Date.now()))) throw new Problem('not_found', `No pending invitation "${id}"`);
    await this.#audit.record({ workspaceId: org, actor: `user:${p.userId}`, action: 'invitation.revoke', target: id });
  }

  /**
   * POST /v1/invitations/{token}/accept, and POST /v1/auth/register with an invitation: `as` is the
   * signed-in user, or a new user's {name, password} (and, from register, the address they typed,
   * which must be the invited one).
   */
  async accept(
    token: string,
    as: { userId: string } | { name: string; password: string; email?: string },
    client: ClientInfo,
  ): Promise<{ user: { id: string; email: string; name: string; created_at: number }; organization: { id: string; name: string; role: string }; created: boolean }> {
    const now = Date.now();
    const inv = await findInvitationByHash(this.#db, hashToken(token));
    if (!inv || statusOf(inv, now) !== 'pending') throw new Problem('invalid_token', 'The invitation is not valid, was already used, was revoked, or has expired');
    let user: { id: string; email: string; name: string; created_at: number };
    let newRow: Parameters<typeof insertUser>[1] | undefined;
    if ('userId' in as) {
      const u = await findUser(this.#db, as.userId);
      if (!u) throw new Problem('unauthorized', 'The user no longer exists', { headers: { 'www-authenticate': 'Bearer' } });
      if (u.email_key !== inv.email_key) throw new Problem('invitation_email_mismatch', `The invitation is for another address than yours (${u.email})`);
      user = u;
    } else {
      if (this.#signup === 'closed') throw new Problem('signup_closed', 'This server does not accept new users (HERALD_SIGNUP=closed); sign in with an existing account to accept');
      if (as.email !== undefined && emailKey(as.email) !== inv.email_key) throw new Problem('invitation_email_mismatch', 'Register with the address the invitation was sent to');
      checkPolicy(as.password);
      if (await findUserByEmail(this.#db, inv.email)) throw new Problem('email_taken', `A user with the address ${inv.email} exists: sign in and accept the invitation`);
      newRow = { id: newId('usr'), email: inv.email, email_key: inv.email_key, name: as.name, password_hash: await hashPassword(as.password), created_at: now, updated_at: now };
      user = newRow;
    }
    const role = await withMembershipLock(this.#db, inv.workspace_id, async (tx) => {
      if (newRow && !(await insertUser(tx, newRow))) throw new Problem('email_taken', `A user with the address ${inv.email} exists: sign in and accept the invitation`);
      if (!(await useInvitation(tx, inv.id, user.id, now))) throw new Problem('invalid_token', 'The invitation is not valid, was already used, was revoked, or has expired');
      await markEmailVerified(tx, user.id, now);
      const current = await findMembership(tx, user.id, inv.workspace_id);
      if (current !== undefined) return current;
      await putMembership(tx, { user_id: user.id, workspace_id: inv.workspace_id, role: inv.role }, now);
      return inv.role;
    });
    const org = await getOrganization(this.#db, inv.workspace_id);
    await this.#audit.record({
      workspaceId: inv.workspace_id,
      actor: `user:${user.id}`,
      action: 'invitation.accept',
      target: inv.id,
      details: { role, registered: newRow !== undefined, ip: client.ip, user_agent: client.userAgent ?? null },
    });
    return { user: { id: user.id, email: user.email, name: user.name, created_at: user.created_at }, organization: { id: inv.workspace_id, name: org?.name ?? inv.workspace_id, role }, created: newRow !== undefined };
  }
  /** Whether `email` has a pending invitation (external sign-in: a new user may be made then). */
  async hasPending(email: string): Promise<boolean> {
    return (await pendingInvitationsFor(this.#db, emailKey(email), Date.now())).length > 0;
  }

  /**
   * Accepts every pending invitation of the user's address, for a user just made by an external
   * sign-in whose provider verified that address (auth/oauth/service.ts): the organizations joined,
   * oldest invitation first. Each is used up by the same compare-and-set as accept().
   */
  async acceptPendingFor(userId: string, email: string, client: ClientInfo): Promise<string[]> {
    const now = Date.now();
    const joined: string[] = [];
    for (const inv of await pendingInvitationsFor(this.#db, emailKey(email), now)) {
      const role = await withMembershipLock(this.#db, inv.workspace_id, async (tx) => {
        if (!(await useInvitation(tx, inv.id, userId, now))) return undefined;
        const current = await findMembership(tx, userId, inv.workspace_id);
        if (current !== undefined) return current;
        await putMembership(tx, { user_id: userId, workspace_id: inv.workspace_id, role: inv.role }, now);
        return inv.role;
      });
      if (role === undefined) continue;
      joined.push(inv.workspace_id);
      await this.#audit.record({ workspaceId: inv.workspace_id, actor: `user:${userId}`, action: 'invitation.accept', target: inv.id, details: { role, registered: true, via: 'sign-in', ip: client.ip, user_agent: client.userAgent ?? null } });
    }
    return joined;
  }
}
