// Who is making a request: a principal, resolved in one place from whatever carried the credential.
//
// Principal kinds (a discriminated union on `kind`):
//   key        an API key of one workspace (organization) with scopes (auth/api-keys.ts)
//   user       a signed-in person acting in one organization with a role, through a session
//              (auth/accounts.ts; the access token is a JWT, auth/tokens.ts)
//   recipient  an end user of a customer's app, holding a connection token of one organization
//              (src/realtime verifies it); may use only `/v1/me/*` and the real-time gateway: it
//              has no action (auth/service.ts `may` is false for every one)
// Every consumer goes through `authenticate` and `authorize` (auth/service.ts), so a new kind is a
// new case here and there, not a new code path in each route.
//
// Credential carriers: the HTTP `Authorization: Bearer <API key | access token>` header, or the
// access-token cookie a browser got at sign-in (auth/cookies.ts). A request carrying both is
// authenticated by its header. A cookie is refused on an unsafe request (anything but GET, HEAD,
// OPTIONS) unless it proves it came from Herald's own pages (auth/cookies.ts checkCsrf): browsers
// send cookies with cross-site requests, headers they do not. A WebSocket query parameter or first
// frame are further carriers of the same credentials.
//
// Contract of `authenticate(credential, keys, users)`:
//   - a Principal when the credential is valid;
//   - a Problem (401 unauthorized, with WWW-Authenticate: Bearer) when it is absent, malformed or
//     not valid (an access token that is expired, of a session logged out, or of a membership that
//     is gone);
//   - synchronously whenever the answer is known without I/O (a cached key, a malformed or absent
//     credential), otherwise a promise: the accept path authenticates nearly every request without
//     allocating a promise. A store failure rejects the promise (never a 401).

import { Problem } from '../errors.ts';
import { ACCESS_COOKIE, checkCsrf, parseCookies, type RequestFacts } from './cookies.ts';
import type { UserRole } from '../domain/roles.ts';
import type { Scope } from './scopes.ts';

export interface KeyPrincipal {
  readonly kind: 'key';
  readonly workspaceId: string;
  readonly keyId: string;
  readonly scopes: readonly Scope[];
}

export interface UserPrincipal {
  readonly kind: 'user';
  readonly userId: string;
  /** The organization the session acts in. */
  readonly workspaceId: string;
  readonly role: UserRole;
  readonly sessionId: string;
  /** The organization requires TOTP and the user has it off: only routes without a scope (auth/service.ts authorize). */
  readonly totpMissing?: true;
}

export interface RecipientPrincipal {
  readonly kind: 'recipient';
  readonly workspaceId: string;
  readonly recipientId: string;
  /** Room names (without `room:`) the token grants. */
  readonly rooms: readonly string[];
  /** When the token expires (ms since the epoch). */
  readonly expiresAt: number;
}

export type Principal = KeyPrincipal | UserPrincipal | RecipientPrincipal;

/** Where a credential came from and what it says. */
export type Credential =
  | { readonly carrier: 'authorization'; readonly value: string | undefined }
  /** An access token from the cookie, already past the CSRF check of unsafe requests. */
  | { readonly carrier: 'cookie'; readonly value: string };

/** What authenticate needs to resolve access tokens (auth/accounts.ts AccountService). */
export interface UserLookup {
  /** The principal of a valid access token, or undefined; rejects only when the store fails. */
  resolveAccessToken(token: string): Promise<UserPrincipal | undefined>;
}

/** What authenticate needs to resolve API keys (auth/api-keys.ts KeyResolver). */
export interface KeyLookup {
  /** The principal of `key` when cached and fresh; undefined means "ask resolve()". */
  cached(key: string): KeyPrincipal | undefined;
  resolve(key: string): Promise<KeyPrincipal | undefined>;
}

/** What authenticateRecipient needs to resolve connection tokens (realtime/service.ts RealtimeService). */
export interface RecipientLookup {
  /** The recipient principal of a valid connection token, or why it is not valid; rejects only when the store fails. */
  resolveConnectionToken(token: string): Promise<RecipientPrincipal | string>;
}

/**
 * The recipient principal of `/v1/me` requests: `Authorization: Bearer <connection token>`
 * (docs/realtime.md); anything else is a 401 problem. API keys and access tokens are not
 * recipients, so they are refused here too.
 */
export function authenticateRecipient(credential: Credential, recipients: RecipientLookup): Problem | Promise<RecipientPrincipal | Problem> {
  const m = credential.carrier === 'authorization' && credential.value ? /^Bearer\s+(\S+)\s*$/i.exec(credential.value) : null;
  if (!m || m[1]!.length > MAX_TOKEN_LENGTH || !JWT_SHAPE.test(m[1]!)) return unauthorized('Send a connection token as "Authorization: Bearer <token>" (POST /v1/realtime/tokens)');
  return recipients.resolveConnectionToken(m[1]!).then((p) => (typeof p === 'string' ? unauthorized(`The connection token is not valid: ${p}`) : p));
}

/** Longer bearer values are refused without a lookup (keys are 35 characters). */
const MAX_KEY_LENGTH = 200;

/** The credential an HTTP request carries in its Authorization header. */
export function fromAuthorization(header: string | undefined): Credential {
  return { carrier: 'authorization', value: header };
}

/**
 * The credential a request carries: its Authorization header when it has one, else its access
 * cookie (refused by the CSRF rule on unsafe requests, auth/cookies.ts), else none (a 401 later).
 */
export function credentialOf(r: RequestFacts, publicUrl: URL | undefined): Credential | Problem {
  const authorization = r.headers.authorization;
  if (authorization !== undefined || r.headers.cookie === undefined) return fromAuthorization(authorization as string | undefined);
  const cookies = parseCookies(r.headers.cookie as string);
  const token = cookies.get(ACCESS_COOKIE);
  if (!token) return fromAuthorization(undefined);
  return checkCsrf(r, cookies, publicUrl) ?? fromCookie(token);
}

/** The credential of a browser's access-token cookie. */
export function fromCookie(token: string): Credential {
  return { carrier: 'cookie', value: token };
}

/** Longer access tokens are refused without verifying (ours are about 400 characters). */
const MAX_TOKEN_LENGTH = 4096;

/** A JWT's shape (three base64url parts); API keys have no dots. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export function authenticate(credential: Credential, keys: KeyLookup, users?: UserLookup): Principal | Problem | Promise<Principal | Problem> {
  if (credential.carrier === 'cookie') return accessToken(credential.value, users);
  const header = credential.value;
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!m) return unauthorized(header ? 'Authorization must be "Bearer <API key or access token>"' : 'Send an API key or an access token as "Authorization: Bearer <credential>"');
  const key = m[1]!;
  if (JWT_SHAPE.test(key)) return accessToken(key, users);
  if (key.length > MAX_KEY_LENGTH) return invalidKey();
  const cached = keys.cached(key);
  if (cached) return cached;
  return keys.resolve(key).then((p) => p ?? invalidKey());
}

function accessToken(token: string, users: UserLookup | undefined): Problem | Promise<Principal | Problem> {
  if (!users || token.length > MAX_TOKEN_LENGTH || !JWT_SHAPE.test(token)) return invalidToken();
  return users.resolveAccessToken(token).then((p) => p ?? invalidToken());
}

/** The principal's stable name in audit records and rate-limit buckets (`key:<key id>`, `user:<user id>`, `recipient:<id>`). */
export function actorOf(p: Principal): string {
  return p.kind === 'key' ? `key:${p.keyId}` : p.kind === 'user' ? `user:${p.userId}` : `recipient:${p.recipientId}`;
}

function invalidToken(): Problem {
  return unauthorized('The access token is not valid, has expired, or its session has ended; refresh it or sign in again');
}

function invalidKey(): Problem {
  return unauthorized('The API key is not valid');
}

function unauthorized(detail: string): Problem {
  return new Problem('unauthorized', detail, { headers: { 'www-authenticate': 'Bearer' } });
}
