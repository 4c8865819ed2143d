// A user's role in an organization and the actions it allows (the actions routes declare:
// read, send, admin; see auth/service.ts).
//   viewer  read
//   member  read + send
//   admin   everything in the organization (keys, providers, settings, the dead-letter queue, ...)
//   owner   everything admin may (and, once organizations are managed through the API, deleting
//           the organization and managing owners)
// viewer ⊂ member ⊂ admin ⊂ owner.

export const ROLES = ['viewer', 'member', 'admin', 'owner'] as const;
export type UserRole = (typeof ROLES)[number];

export function isRole(s: string): s is UserRole {
  return (ROLES as readonly string[]).includes(s);
}

const ALLOWS: Record<UserRole, readonly string[]> = {
  viewer: ['read'],
  member: ['read', 'send'],
  admin: ['read', 'send', 'admin'],
  owner: ['read', 'send', 'admin'],
};

/** Whether `role` may do `action` (read | send | admin). */
export function roleAllows(role: UserRole, action: string): boolean {
  return ALLOWS[role].includes(action);
}
