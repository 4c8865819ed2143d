// The scopes of an API key: `admin` implies every scope.
//   send   create notifications, manage recipients
//   read   read notifications, recipients and history
//   admin  everything, including the dead-letter queue and keys

export const SCOPES = ['send', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];
