// Standard Webhooks (https://www.standardwebhooks.com): webhook-id, webhook-timestamp (unix s) and
// webhook-signature, a space-separated list of `v1,<base64 HMAC-SHA256(key, id.timestamp.body)>`
// where the key is the base64 part of the whsec_ secret, decoded. Timestamps more than 300 s off
// are refused. Other schemes in the list (v1a, asymmetric) are skipped.

import { createHmac } from 'node:crypto';
import { fail, fresh, OK, sameBytes, type SignedRequest, type Verdict } from './verdict.ts';

export const STANDARD_HEADERS = { id: 'webhook-id', timestamp: 'webhook-timestamp', signature: 'webhook-signature' } as const;

/** The HMAC key of a whsec_ secret (the prefix is optional, as in the reference libraries). */
export function standardKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
}

export function verifyStandard(req: SignedRequest, secrets: readonly string[]): Verdict {
  const id = req.headers[STANDARD_HEADERS.id];
  const ts = req.headers[STANDARD_HEADERS.timestamp];
  const sig = req.headers[STANDARD_HEADERS.signature];
  if (!id || !ts || !sig) return fail('missing');
  if (!/^\d{1,12}$/.test(ts.trim())) return fail('malformed');
  const given: Buffer[] = [];
  for (const entry of sig.trim().split(/\s+/)) {
    const comma = entry.indexOf(',');
    if (comma < 0) return fail('malformed');
    if (entry.slice(0, comma) === 'v1') given.push(Buffer.from(entry.slice(comma + 1), 'utf8'));
  }
  if (given.length === 0) return fail('malformed');
  if (!fresh(Number(ts), req.now, 300)) return fail('stale');
  let ok = false;
  for (const secret of secrets) {
    const want = Buffer.from(createHmac('sha256', standardKey(secret)).update(`${id}.${ts.trim()}.`).update(req.body).digest('base64'), 'utf8');
    for (const got of given) if (sameBytes(want, got)) ok = true;
  }
  return ok ? OK : fail('mismatch');
}
