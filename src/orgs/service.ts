// Organizations and members, for signed-in users. What a user may do in an organization is decided
// by their membership there (not by the organization their session acts in):
//   any member     read the organization and its members
//   admin, owner   rename it; add a user, change a role, remove a member, all below owner
//   owner          also make, demote and remove owners, and delete the organization
//   anyone         leave (remove themselves)
// An organization the user is not a member of is 404, whatever it is (never 403).
// The last owner can neither leave nor be demoted (409 conflict): every organization keeps an
// owner. Membership changes run under the organization's membership lock (store.ts), so the rule
// holds under concurrency. Every change is audited in the organization.

import type { Kysely } from 'kysely';
import type { AuditService } from '../audit/service.ts';
import { createOrganization, findMembership, listMemberships, putMembership } from '../auth/store.ts';
import type { UserPrincipal } from '../auth/principal.ts';
import { newId } from '../domain/ids.ts';
import { isRole, roleAllows, type UserRole } from '../domain/roles.ts';
import { Problem } from '../errors.ts';
import type { Database } from '../store/schema.ts';
import { DEFAULT_WORKSPACE_ID, deleteWorkspace } from '../store/workspaces.ts';
import { countOwners, deleteMembership, getOrganization, listMembers, totpEnabled, updateOrganization, userExists, withMembershipLock, type MemberRow } from './store.ts';

export interface OrgView {
  id: string;
  name: string;
  role: UserRole;
  created_at: number;
  require_totp: boolean;
}

export class OrgService {
  readonly #db: Kysely<Database>;
  readonly #audit: AuditService;
  readonly #keysChanged: () => void;

  /** `keysChanged`: drops every node's cache of resolved API keys (the organization's keys go with it). */
  constructor(db: Kysely<Database>, deps: { audit: AuditService; keysChanged?: () => void }) {
    this.#db = db;
    this.#audit = deps.audit;
    this.#keysChanged = deps.keysChanged ?? (() => {});
  }

  /** The user's role in `org`; 404 when not a member. */
  async #role(p: UserPrincipal, org: string): Promise<UserRole> {
    const role = await findMembership(this.#db, p.userId, org);
    if (!role || !isRole(role)) throw new Problem('not_found', `No organization "${org}"`);
    return role;
  }

  /** `userId`'s role in `org`, or undefined when they are not a member (for other subsystems' rules). */
  async roleOf(userId: string, org: string): Promise<UserRole | undefined> {
    const role = await findMembership(this.#db, userId, org);
    return role && isRole(role) ? role : undefined;
  }

  /** The ids of the organizations `userId` is a member of. */
  async organizationsOf(userId: string): Promise<string[]> {
    return (await listMemberships(this.#db, userId)).map((m) => m.workspace_id);
  }

  async create(p: UserPrincipal, name: string): Promise<OrgView> {
    const now = Date.now();
    const id = newId('ws');
    await this.#db.transaction().execute(async (tx) => {
      await createOrganization(tx, { id, name }, now);
      await putMembership(tx, { user_id: p.userId, workspace_id: id, role: 'owner' }, now);
    });
    await this.#audit.record({ workspaceId: id, actor: `user:${p.userId}`, action: 'org.create', target: id, details: { name } });
    return { id, name, role: 'owner', created_at: now, require_totp: false };
  }

  async list(p: UserPrincipal): Promise<{ id: string; name: string; role: string }[]> {
    return (await listMemberships(this.#db, p.userId)).map((m) => ({ id: m.workspace_id, name: m.name, role: m.role }));
  }

  async get(p: UserPrincipal, org: string): Promise<OrgView> {
    const role = await this.#role(p, org);
    const o = (await getOrganization(this.#db, org))!;
    return { ...o, role };
  }

  /**
   * PATCH /v1/orgs/{org}: rename, and require TOTP of the members or not (admin, owner). Turning
   * the requirement on needs TOTP on for the actor (409 otherwise: they would lock themselves out).
   */
  async update(p: UserPrincipal, org: string, change: { name?: string | undefined; requireTotp?: boolean | undefined }): Promise<OrgView> {
    const role = await this.#role(p, org);
    if (!roleAllows(role, 'admin')) throw new Problem('forbidden', `Your role (${role}) cannot change the organization`);
    if (change.requireTotp === true && !(await totpEnabled(this.#db, p.userId))) throw new Problem('conflict', 'Turn TOTP on for yourself before requiring it of the members (POST /v1/auth/totp)');
    await updateOrganization(this.#db, org, change);
    await this.#audit.record({ workspaceId: org, actor: `user:${p.userId}`, action: 'org.update', target: org, details: { ...(change.name !== undefined && { name: change.name }), ...(change.requireTotp !== undefined && { require_totp: change.requireTotp }) } });
    return this.get(p, org);
  }


  /**
   * DELETE /v1/orgs/{org} (owner): the organization and everything of it go at once
   * (store/workspaces.ts deleteWorkspace): its keys stop working, its members' sessions acting in
   * it end, its memberships, invitations and all its data are deleted. The users stay. Its audit
   * entries stay (append-only; `org.delete` is the last). The default organization is not deleted
   * (409): configuration keys (HERALD_ADMIN_KEY) and the compatibility endpoints act in it.
   */
  async delete(p: UserPrincipal, org: string): Promise<void> {
    const role = await this.#role(p, org);
    if (role !== 'owner') throw new Problem('forbidden', `Your role (${role}) cannot delete the organization; only an owner can`);
    if (org === DEFAULT_WORKSPACE_ID) throw new Problem('conflict', 'The default organization cannot be deleted');
    const name = (await getOrganization(this.#db, org))?.name ?? null;
    if (!(await deleteWorkspace(this.#db, org))) throw new Problem('not_found', `No organization "${org}"`);
    this.#keysChanged();
    await this.#audit.record({ workspaceId: org, actor: `user:${p.userId}`, action: 'org.delete', target: org, details: { name } });
  }

  async members(p: UserPrincipal, org: string): Promise<MemberRow[]> {
    await this.#role(p, org);
    return listMembers(this.#db, org);
  }

  /**
   * Sets `userId`'s role in `org`, adding an existing user who is not a member yet (until
   * invitations exist, the way to add one). 404: no such organization for `p`, or no such user.
   */
  async putMember(p: UserPrincipal, org: string, userId: string, role: UserRole): Promise<{ created: boolean }> {
    const mine = await this.#role(p, org);
    if (!roleAllows(mine, 'admin')) throw new Problem('forbidden', `Your role (${mine}) cannot manage members`);
    const result = await withMembershipLock(this.#db, org, async (tx) => {
      const current = await findMembership(tx, userId, org);
      if (current === undefined && !(await userExists(tx, userId))) throw new Problem('not_found', `No user "${userId}"`);
      if ((role === 'owner' || current === 'owner') && mine !== 'owner') throw new Problem('forbidden', 'Only an owner can make, demote or remove owners');
      if (current === 'owner' && role !== 'owner' && (await countOwners(tx, org)) <= 1) {
        throw new Problem('conflict', 'This is the last owner of the organization; make another member owner first');
      }
      if (current === role) return { created: false, changed: false, previous: current };
      await putMembership(tx, { user_id: userId, workspace_id: org, role }, Date.now());
      return { created: current === undefined, changed: true, previous: current ?? null };
    });
    if (result.changed) await this.#audit.record({ workspaceId: org, actor: `user:${p.userId}`, action: 'member.put', target: userId, details: { role, previous_role: result.previous } });
    return { created: result.created };
  }

  /** Removes `userId` from `org` (anyone may remove themselves). */
  async removeMember(p: UserPrincipal, org: string, userId: string): Promise<void> {
    const mine = await this.#role(p, org);
    const self = userId === p.userId;
    if (!self && !roleAllows(mine, 'admin')) throw new Problem('forbidden', `Your role (${mine}) cannot remove members`);
    const previous = await withMembershipLock(this.#db, org, async (tx) => {
      const current = await findMembership(tx, userId, org);
      if (current === undefined) throw new Problem('not_found', `No member "${userId}"`);
      if (current === 'owner' && !self && mine !== 'owner') throw new Problem('forbidden', 'Only an owner can remove owners');
      if (current === 'owner' && (await countOwners(tx, org)) <= 1) throw new Problem('conflict', 'The last owner cannot leave the organization; make another member owner first');
      await deleteMembership(tx, userId, org);
      return current;
    });
    await this.#audit.record({ workspaceId: org, actor: `user:${p.userId}`, action: 'member.delete', target: userId, details: { role: previous } });
  }
}
