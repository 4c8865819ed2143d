// GitHub: X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>. No timestamp: replays
// are caught by the delivery id (X-GitHub-Delivery). Jira Cloud signs the same way in
// X-Hub-Signature (jira.ts).

import { createHmac } from 'node:crypto';
import { fail, OK, sameBytes, type SignedRequest, type Verdict } from './verdict.ts';

export const GITHUB_SIGNATURE_HEADER = 'x-hub-signature-256';

/** sha256=<hex> HMAC-SHA256 signatures in `header` (GitHub, Jira). */
export function verifyHubSignature(header: string, req: SignedRequest, secrets: readonly string[]): Verdict {
  const given = req.headers[header];
  if (given === undefined || given === '') return fail('missing');
  const m = /^sha256=([0-9a-fA-F]{64})$/.exec(given.trim());
  if (!m) return fail('malformed');
  const got = Buffer.from(m[1]!.toLowerCase(), 'utf8');
  let ok = false;
  for (const secret of secrets) {
    const want = Buffer.from(createHmac('sha256', secret).update(req.body).digest('hex'), 'utf8');
    if (sameBytes(want, got)) ok = true;
  }
  return ok ? OK : fail('mismatch');
}

export function verifyGithub(req: SignedRequest, secrets: readonly string[]): Verdict {
  return verifyHubSignature(GITHUB_SIGNATURE_HEADER, req, secrets);
}
