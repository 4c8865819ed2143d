// Shopify: X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(app secret, raw body)). Replays:
// X-Shopify-Webhook-Id.

import { createHmac } from 'node:crypto';
import { fail, OK, sameBytes, type SignedRequest, type Verdict } from './verdict.ts';

export const SHOPIFY_SIGNATURE_HEADER = 'x-shopify-hmac-sha256';

export function verifyShopify(req: SignedRequest, secrets: readonly string[]): Verdict {
  const given = req.headers[SHOPIFY_SIGNATURE_HEADER];
  if (given === undefined || given === '') return fail('missing');
  if (!/^[A-Za-z0-9+/]{43}=$/.test(given.trim())) return fail('malformed');
  const got = Buffer.from(given.trim(), 'utf8');
  let ok = false;
  for (const secret of secrets) {
    const want = Buffer.from(createHmac('sha256', secret).update(req.body).digest('base64'), 'utf8');
    if (sameBytes(want, got)) ok = true;
  }
  return ok ? OK : fail('mismatch');
}
