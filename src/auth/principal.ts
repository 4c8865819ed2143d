// Who is making a request: a principal, resolved in one place from whatever carried the credential.
//
// Principal kinds (a discriminated union on `kind`):
//   key        an API key of one workspace (organization) with scopes (auth/api-keys.ts)
// User sessions (a signed-in person with a role) and recipient connection tokens join this union as
// further kinds; every consumer goes through `authenticate` and `authorize` (auth/service.ts), so
// a new kind is a new case here and there, not a new code path in each route.
//
// Credential carriers: today the HTTP `Authorization: Bearer <key>` header. A cookie, a WebSocket
// query parameter or a WebSocket first frame are further carriers of the same credentials.
//
// Contract of `authenticate(credential, keys)`:
//   - a Principal when the credential is valid;
//   - a Problem (401 unauthorized, with WWW-Authenticate: Bearer) when it is absent, malformed or
//     not valid;
//   - synchronously whenever the answer is known without I/O (a cached key, a malformed or absent
//     credential), otherwise a promise: the accept path authenticates nearly every request without
//     allocating a promise. A store failure rejects the promise (never a 401).

import { Problem } from '../errors.ts';
import type { Scope } from './scopes.ts';

export interface KeyPrincipal {
  readonly kind: 'key';
  readonly workspaceId: string;
  readonly keyId: string;
  readonly scopes: readonly Scope[];
}

export type Principal = KeyPrincipal;

/** Where a credential came from and what it says. */
export type Credential = { readonly carrier: 'authorization'; readonly value: string | undefined };

/** What authenticate needs to resolve API keys (auth/api-keys.ts KeyResolver). */
export interface KeyLookup {
  /** The principal of `key` when cached and fresh; undefined means "ask resolve()". */
  cached(key: string): KeyPrincipal | undefined;
  resolve(key: string): Promise<KeyPrincipal | undefined>;
}

/** Longer bearer values are refused without a lookup (keys are 35 characters). */
const MAX_KEY_LENGTH = 200;

/** The credential an HTTP request carries in its Authorization header. */
export function fromAuthorization(header: string | undefined): Credential {
  return { carrier: 'authorization', value: header };
}

export function authenticate(credential: Credential, keys: KeyLookup): Principal | Problem | Promise<Principal | Problem> {
  const header = credential.value;
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!m) return unauthorized(header ? 'Authorization must be "Bearer <api key>"' : 'Send an API key as "Authorization: Bearer <key>"');
  const key = m[1]!;
  if (key.length > MAX_KEY_LENGTH) return invalidKey();
  const cached = keys.cached(key);
  if (cached) return cached;
  return keys.resolve(key).then((p) => p ?? invalidKey());
}

/** The principal's stable name in audit records and rate-limit buckets (`key:<key id>`). */
export function actorOf(p: Principal): string {
  return `key:${p.keyId}`;
}

function invalidKey(): Problem {
  return unauthorized('The API key is not valid');
}

function unauthorized(detail: string): Problem {
  return new Problem('unauthorized', detail, { headers: { 'www-authenticate': 'Bearer' } });
}
