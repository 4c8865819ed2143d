// Password hashing and the password policy's common-password list.
//
// Hash: scrypt (node:crypto), memory-hard. Parameters: N = 2^15, r = 8, p = 1 (32 MiB of memory
// per hash: 128 · N · r bytes), a 16-byte random salt, a 32-byte key. Stored self-describing as
//   scrypt$<N>$<r>$<p>$<salt base64url>$<key base64url>
// so the parameters can change: a stored hash is verified with its own parameters, and
// `needsRehash` says when it was made with others. Verification compares in constant time.
//
// Common passwords: src/auth/common-passwords.txt, one per line, lowercased: the entries of at
// least 10 characters (shorter ones are refused by length anyway) of the password dictionary of
// @zxcvbn-ts/language-common 4.1.3 (MIT; passwords.json, derived from leaked-password corpora by
// Dropbox's zxcvbn), 1,557 entries.

import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkPassword, type PasswordVerdict } from '../domain/password-policy.ts';

export const SCRYPT = { N: 2 ** 15, r: 8, p: 1, saltBytes: 16, keyBytes: 32 } as const;

let common: Set<string> | undefined;

/** The bundled common passwords (lowercased), read on first use. */
export function commonPasswords(): ReadonlySet<string> {
  common ??= new Set(readFileSync(new URL('./common-passwords.txt', import.meta.url), 'utf8').split('\n').filter(Boolean));
  return common;
}

/** The policy's verdict on `password` with the bundled common list. */
export function passwordVerdict(password: string): PasswordVerdict {
  const list = commonPasswords();
  return checkPassword(password, (p) => list.has(p));
}

function derive(password: string, salt: Buffer, N: number, r: number, p: number, keyBytes: number): Promise<Buffer> {
  // scrypt needs 128·N·r bytes; Node's default maxmem (32 MiB) is exactly that at N=2^15, r=8, so
  // allow twice the need.
  const opts: ScryptOptions = { N, r, p, maxmem: 256 * N * r };
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, keyBytes, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const { N, r, p, saltBytes, keyBytes } = SCRYPT;
  const salt = randomBytes(saltBytes);
  const key = await derive(password, salt, N, r, p, keyBytes);
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** Parses a stored hash; undefined when it is not one this module wrote (or its parameters are unsafe to run). */
function parse(stored: string): { N: number; r: number; p: number; salt: Buffer; key: Buffer } | undefined {
  const m = /^scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9_-]{8,})\$([A-Za-z0-9_-]{16,})$/.exec(stored);
  if (!m) return undefined;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // N a power of two; at most 1 GiB of memory.
  if (N < 2 || (N & (N - 1)) !== 0 || r < 1 || p < 1 || 128 * N * r > 2 ** 30) return undefined;
  return { N, r, p, salt: Buffer.from(m[4]!, 'base64url'), key: Buffer.from(m[5]!, 'base64url') };
}

/** Whether `password` matches `stored`; false for a malformed stored hash. Constant-time compare. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const h = parse(stored);
  if (!h) return false;
  const key = await derive(password, h.salt, h.N, h.r, h.p, h.key.length);
  return timingSafeEqual(key, h.key);
}

/** Whether `stored` was made with other parameters than today's (rehash after a successful login). */
export function needsRehash(stored: string): boolean {
  const h = parse(stored);
  return !h || h.N !== SCRYPT.N || h.r !== SCRYPT.r || h.p !== SCRYPT.p || h.key.length !== SCRYPT.keyBytes || h.salt.length !== SCRYPT.saltBytes;
}

let dummy: Promise<string> | undefined;

/**
 * Spends the time a real verification takes, for a sign-in whose address has no password: the
 * answer's timing then does not tell whether the address exists.
 */
export async function verifyDummy(password: string): Promise<false> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'));
  await verifyPassword(password, await dummy);
  return false;
}
