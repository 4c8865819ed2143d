// Slack: X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:" + X-Slack-Request-Timestamp +
// ":" + raw body)>; timestamps more than 5 minutes off are refused.

import { createHmac } from 'node:crypto';
import { fail, fresh, OK, sameBytes, type SignedRequest, type Verdict } from './verdict.ts';

export const SLACK_SIGNATURE_HEADER = 'x-slack-signature';
export const SLACK_TIMESTAMP_HEADER = 'x-slack-request-timestamp';

export function verifySlack(req: SignedRequest, secrets: readonly string[]): Verdict {
  const sig = req.headers[SLACK_SIGNATURE_HEADER];
  const ts = req.headers[SLACK_TIMESTAMP_HEADER];
  if (!sig || !ts) return fail('missing');
  const m = /^v0=([0-9a-f]{64})$/.exec(sig.trim());
  if (!m || !/^\d{1,12}$/.test(ts.trim())) return fail('malformed');
  if (!fresh(Number(ts), req.now, 300)) return fail('stale');
  const got = Buffer.from(m[1]!, 'utf8');
  let ok = false;
  for (const secret of secrets) {
    const want = Buffer.from(createHmac('sha256', secret).update(`v0:${ts.trim()}:`).update(req.body).digest('hex'), 'utf8');
    if (sameBytes(want, got)) ok = true;
  }
  return ok ? OK : fail('mismatch');
}
