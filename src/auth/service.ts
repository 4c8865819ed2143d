// Authorization: the one place that decides whether a principal may do an action.
//
// Actions are the permission levels routes declare (`config: { scope }`):
//   read   read notifications, recipients, history and policy
//   send   create notifications, manage recipients and their devices and preferences
//   admin  everything in the workspace, including the DLQ, keys, providers and settings
// A key principal may do an action when its scopes include it or include `admin`. A user principal
// may do what its role in the organization allows (domain/roles.ts: viewer = read, member = read +
// send, admin and owner = everything). A recipient principal may do no action: it reaches only
// routes that ask for none and accept recipients (`/v1/me`, the gateway).
//
// A resource of another workspace is not found (404), never forbidden: its existence is not
// disclosed. Contract: `authorize` returns undefined when allowed, else the Problem to answer.

import { Problem } from '../errors.ts';
import type { Principal } from './principal.ts';
import type { Scope } from './scopes.ts';
import { roleAllows } from '../domain/roles.ts';

export type Action = Scope;

/** What an action is on; omitted for actions on the principal's own workspace as a whole. */
export interface Resource {
  readonly workspaceId: string;
}

export function authorize(principal: Principal, action: Action | undefined, resource?: Resource): Problem | undefined {
  if (resource && resource.workspaceId !== principal.workspaceId) return new Problem('not_found');
  if (action === undefined) return undefined;
  // An organization that requires TOTP admits a user without it only to routes that need no scope
  // (their session, TOTP enrolment, organizations and invitations), so they can turn it on.
  if (principal.kind === 'user' && principal.totpMissing) return new Problem('totp_enrolment_required', 'This organization requires TOTP of its members: enrol (POST /v1/auth/totp) and confirm it first');
  if (may(principal, action)) return undefined;
  return new Problem(
    'forbidden',
    principal.kind === 'key'
      ? `This needs the "${action}" scope`
      : principal.kind === 'user'
        ? `Your role (${principal.role}) does not allow "${action}" in this organization`
        : 'A connection token allows only /v1/me and the real-time gateway',
  );
}

/** Whether `principal` may do `action` in its own workspace. */
export function may(principal: Principal, action: Action): boolean {
  if (principal.kind === 'user') return roleAllows(principal.role, action);
  if (principal.kind === 'recipient') return false;
  return principal.scopes.includes('admin') || principal.scopes.includes(action);
}
