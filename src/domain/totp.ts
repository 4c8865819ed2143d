// TOTP (RFC 6238) over HOTP (RFC 4226), and the base32 (RFC 4648) its secrets are written in.
// Pure: the time is an argument.
//
// Herald's parameters: HMAC-SHA1, 6 digits, 30-second steps, a 160-bit secret: what every
// authenticator app reads from an otpauth:// URI. A code is accepted for the step it was made in
// and one step either side (clock drift); the caller records the step it accepted and refuses that
// step and earlier ones afterwards, so a code works once.

import { createHmac, timingSafeEqual } from 'node:crypto';

export const TOTP_STEP_S = 30;
export const TOTP_DIGITS = 6;
/** Steps either side of the current one that are accepted. */
export const TOTP_WINDOW = 1;

export type HotpAlgorithm = 'sha1' | 'sha256' | 'sha512';

/** RFC 4226 §5.3: the HOTP value of `counter`, `digits` long. */
export function hotp(secret: Uint8Array, counter: number, digits = TOTP_DIGITS, algorithm: HotpAlgorithm = 'sha1'): string {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac(algorithm, secret).update(msg).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const bin = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(bin % 10 ** digits).padStart(digits, '0');
}

/** The RFC 6238 time step of `timeMs`. */
export function totpStep(timeMs: number, stepS = TOTP_STEP_S): number {
  return Math.floor(timeMs / 1000 / stepS);
}

/** RFC 6238: the code at `timeMs`. */
export function totp(secret: Uint8Array, timeMs: number, o: { digits?: number; stepS?: number; algorithm?: HotpAlgorithm } = {}): string {
  return hotp(secret, totpStep(timeMs, o.stepS), o.digits, o.algorithm);
}

/**
 * The step whose code `code` is, among the current step at `timeMs` and TOTP_WINDOW either side
 * (latest first), or undefined. Compares in constant time.
 */
export function matchTotp(secret: Uint8Array, code: string, timeMs: number): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const now = totpStep(timeMs);
  let found: number | undefined;
  for (let step = now + TOTP_WINDOW; step >= now - TOTP_WINDOW; step--) {
    if (timingSafeEqual(Buffer.from(hotp(secret, step)), Buffer.from(code)) && found === undefined) found = step;
  }
  return found;
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function base32Encode(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

/** Decodes base32 (case-insensitive, padding and spaces ignored); throws on another character. */
export function base32Decode(s: string): Buffer {
  const clean = s.replace(/[\s=]/g, '').toUpperCase();
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const c of clean) {
    const i = B32.indexOf(c);
    if (i < 0) throw new Error(`not base32: "${c}"`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The otpauth:// URI authenticator apps read (the Key Uri Format of Google Authenticator). */
export function otpauthUri(o: { issuer: string; account: string; secret: Uint8Array }): string {
  const label = `${encodeURIComponent(o.issuer)}:${encodeURIComponent(o.account)}`;
  const q = new URLSearchParams({ secret: base32Encode(o.secret), issuer: o.issuer, algorithm: 'SHA1', digits: String(TOTP_DIGITS), period: String(TOTP_STEP_S) });
  return `otpauth://totp/${label}?${q.toString()}`;
}
