// What every verifier answers, and the helpers they share. A verifier looks only at the raw body
// bytes exactly as received and the request's headers: it never parses and re-serialises.
//
// Contract of a verifier: `{ok: true}` when one of the source's secrets (several during a
// rotation) signs the request, else `{ok: false, reason}` with reason
//   missing    the signature (or its timestamp) header is absent
//   malformed  present but not in the provider's format
//   stale      the signed timestamp is outside the provider's window
//   mismatch   well-formed and fresh, but no secret produces it
// Comparisons of signatures are constant-time (timingSafeEqual over equal-length buffers).

import { timingSafeEqual } from 'node:crypto';

export type FailureReason = 'missing' | 'malformed' | 'stale' | 'mismatch';
export type Verdict = { readonly ok: true } | { readonly ok: false; readonly reason: FailureReason };

export const OK: Verdict = { ok: true };
export const fail = (reason: FailureReason): Verdict => ({ ok: false, reason });

/** What a verifier sees of a request. Header names are lower case. */
export interface SignedRequest {
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** Now, ms since the epoch (injected in tests). */
  readonly now: number;
}

/** Constant-time equality of two byte strings (false when lengths differ, without comparing). */
export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Whether a timestamp in unix seconds is within `windowS` of now. */
export function fresh(unixSeconds: number, now: number, windowS = 300): boolean {
  return Math.abs(now / 1000 - unixSeconds) <= windowS;
}
