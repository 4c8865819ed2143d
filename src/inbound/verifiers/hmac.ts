// Generic HMAC: a header chosen per source holds `<prefix><digest>`, the digest an HMAC of the raw
// body with the source's secret, sha256 or sha1, in hex or base64. For services that sign this way
// without a scheme of their own. No timestamp: pair it with a delivery-id header if replays matter.

import { createHmac } from 'node:crypto';
import { fail, OK, sameBytes, type SignedRequest, type Verdict } from './verdict.ts';

export interface HmacOptions {
  /** Header name, lower case. */
  readonly header: string;
  readonly algorithm: 'sha256' | 'sha1';
  readonly encoding: 'hex' | 'base64';
  /** Text before the digest, e.g. "sha256=". */
  readonly prefix?: string | undefined;
}

export function verifyHmac(req: SignedRequest, secrets: readonly string[], o: HmacOptions): Verdict {
  const given = req.headers[o.header.toLowerCase()];
  if (given === undefined || given === '') return fail('missing');
  const prefix = o.prefix ?? '';
  if (!given.startsWith(prefix)) return fail('malformed');
  const digest = given.slice(prefix.length).trim();
  const hexLen = o.algorithm === 'sha256' ? 64 : 40;
  const wellFormed = o.encoding === 'hex' ? digest.length === hexLen && /^[0-9a-fA-F]+$/.test(digest) : /^[A-Za-z0-9+/]+={0,2}$/.test(digest);
  if (!wellFormed) return fail('malformed');
  const got = Buffer.from(o.encoding === 'hex' ? digest.toLowerCase() : digest, 'utf8');
  let ok = false;
  for (const secret of secrets) {
    const want = Buffer.from(createHmac(o.algorithm, secret).update(req.body).digest(o.encoding), 'utf8');
    if (sameBytes(want, got)) ok = true;
  }
  return ok ? OK : fail('mismatch');
}
