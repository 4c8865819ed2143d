// Browser sessions: the cookies sign-in sets, and the CSRF rule for requests they authenticate.
//
// Cookies (all SameSite=Lax, and Secure when the request came over HTTPS or HERALD_PUBLIC_URL is
// https):
//   herald_access   the access token; HttpOnly; Path=/; Max-Age = the token's lifetime
//   herald_refresh  the refresh token; HttpOnly; Path=/v1/auth (only the auth routes see it),
//                   under HERALD_PUBLIC_URL's path when Herald is served under one (CookieScope);
//                   Max-Age = the session's remaining lifetime
//   herald_csrf     a random token, readable by the page's script (not HttpOnly); Path=/
//
// CSRF (contract of checkCsrf): a request authenticated by a cookie with an unsafe method (anything
// but GET, HEAD, OPTIONS) is refused (403 csrf_failed) unless
//   1. its Origin header names Herald itself: the origin of HERALD_PUBLIC_URL when set, else
//      the request's own Host (http or https), and
//   2. its X-CSRF-Token header equals its herald_csrf cookie (double submit: a page of another
//      site can make a browser send the cookie, but cannot read it to put it in a header).
// Requests authenticated by an Authorization header need neither: browsers never add one on
// their own.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Problem } from '../errors.ts';

export const ACCESS_COOKIE = 'herald_access';
export const REFRESH_COOKIE = 'herald_refresh';
export const CSRF_COOKIE = 'herald_csrf';
export const CSRF_HEADER = 'x-csrf-token';
export const REFRESH_COOKIE_PATH = '/v1/auth';

/** The cookies of a Cookie header (first occurrence of a name wins); values are not decoded. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (name && !out.has(name)) out.set(name, value);
  }
  return out;
}

export interface RequestFacts {
  method: string;
  headers: Record<string, string | string[] | undefined>;
  /** 'http' or 'https', as the request arrived. */
  protocol: string;
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** undefined when the cookie-authenticated request may proceed, else the 403 to answer. */
export function checkCsrf(r: RequestFacts, cookies: Map<string, string>, publicUrl: URL | undefined): Problem | undefined {
  if (SAFE.has(r.method)) return undefined;
  const origin = header(r, 'origin');
  if (!origin || origin === 'null') return new Problem('csrf_failed', 'A request authenticated by a cookie must carry an Origin header naming this server');
  const allowed = publicUrl ? [publicUrl.origin] : ownOrigins(header(r, 'host'));
  if (!allowed.includes(origin.toLowerCase())) return new Problem('csrf_failed', `Origin ${origin} is not this server's`);
  const sent = header(r, CSRF_HEADER);
  const expected = cookies.get(CSRF_COOKIE);
  if (!sent || !expected || !sameString(sent, expected)) {
    return new Problem('csrf_failed', `A request authenticated by a cookie must repeat the ${CSRF_COOKIE} cookie in the X-CSRF-Token header`);
  }
  return undefined;
}

function ownOrigins(host: string | undefined): string[] {
  if (!host) return [];
  const h = host.toLowerCase();
  return [`http://${h}`, `https://${h}`];
}

function header(r: RequestFacts, name: string): string | undefined {
  const v = r.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Whether cookies must be Secure: the request came over HTTPS or Herald's public URL is https. */
export function secureCookies(protocol: string, publicUrl: URL | undefined): boolean {
  return protocol === 'https' || publicUrl?.protocol === 'https:';
}

/** Where cookies apply: Secure or not, and the path prefix Herald is served under (HERALD_PUBLIC_URL's path, '' at the root). */
export interface CookieScope {
  secure: boolean;
  prefix: string;
}

export function cookieScope(protocol: string, publicUrl: URL | undefined): CookieScope {
  return { secure: secureCookies(protocol, publicUrl), prefix: (publicUrl?.pathname ?? '').replace(/\/+$/, '') };
}

function cookie(name: string, value: string, o: { path: string; maxAgeS: number; httpOnly: boolean; secure: boolean }): string {
  return `${name}=${value}; Path=${o.path}; Max-Age=${Math.max(0, Math.floor(o.maxAgeS))}; SameSite=Lax${o.httpOnly ? '; HttpOnly' : ''}${o.secure ? '; Secure' : ''}`;
}

/** The Set-Cookie values of a signed-in browser. */
export function sessionCookies(t: { accessToken: string; accessTtlS: number; refreshToken: string; refreshTtlS: number }, { secure, prefix }: CookieScope): string[] {
  return [
    cookie(ACCESS_COOKIE, t.accessToken, { path: '/', maxAgeS: t.accessTtlS, httpOnly: true, secure }),
    cookie(REFRESH_COOKIE, t.refreshToken, { path: prefix + REFRESH_COOKIE_PATH, maxAgeS: t.refreshTtlS, httpOnly: true, secure }),
    cookie(CSRF_COOKIE, randomBytes(18).toString('base64url'), { path: '/', maxAgeS: t.refreshTtlS, httpOnly: false, secure }),
  ];
}

/** The Set-Cookie values that end a browser session. */
export function clearedCookies({ secure, prefix }: CookieScope): string[] {
  return [
    cookie(ACCESS_COOKIE, '', { path: '/', maxAgeS: 0, httpOnly: true, secure }),
    cookie(REFRESH_COOKIE, '', { path: prefix + REFRESH_COOKIE_PATH, maxAgeS: 0, httpOnly: true, secure }),
    cookie(CSRF_COOKIE, '', { path: '/', maxAgeS: 0, httpOnly: false, secure }),
  ];
}
