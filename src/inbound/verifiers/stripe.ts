// Stripe: Stripe-Signature: t=<unix>,v1=<hex>[,v1=…] (other schemes such as v0 are ignored), each
// v1 an HMAC-SHA256 over `${t}.${raw body}` keyed with the whsec_… string as-is. The timestamp must
// be within 300 s (Stripe's default tolerance).

import { createHmac } from 'node:crypto';
import { fail, fresh, OK, sameBytes, type SignedRequest, type Verdict } from './verdict.ts';

export const STRIPE_SIGNATURE_HEADER = 'stripe-signature';
export const STRIPE_TOLERANCE_S = 300;

export function verifyStripe(req: SignedRequest, secrets: readonly string[]): Verdict {
  const header = req.headers[STRIPE_SIGNATURE_HEADER];
  if (header === undefined || header === '') return fail('missing');
  let t: string | undefined;
  const v1: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return fail('malformed');
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (k === 't') t = v;
    else if (k === 'v1') {
      if (!/^[0-9a-f]{64}$/.test(v)) return fail('malformed');
      v1.push(Buffer.from(v, 'utf8'));
    }
  }
  if (t === undefined || !/^\d{1,12}$/.test(t) || v1.length === 0) return fail('malformed');
  if (!fresh(Number(t), req.now, STRIPE_TOLERANCE_S)) return fail('stale');
  let ok = false;
  for (const secret of secrets) {
    const want = Buffer.from(createHmac('sha256', secret).update(`${t}.`).update(req.body).digest('hex'), 'utf8');
    for (const got of v1) if (sameBytes(want, got)) ok = true;
  }
  return ok ? OK : fail('mismatch');
}
