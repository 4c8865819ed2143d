// GitLab: X-Gitlab-Token carries the shared secret itself; compared in constant time (hashed first,
// so the comparison's length does not depend on the secret's). Replays: X-Gitlab-Event-UUID.

import { createHash } from 'node:crypto';
import { fail, OK, sameBytes, type SignedRequest, type Verdict } from './verdict.ts';

export const GITLAB_TOKEN_HEADER = 'x-gitlab-token';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export function verifyGitlab(req: SignedRequest, secrets: readonly string[]): Verdict {
  const token = req.headers[GITLAB_TOKEN_HEADER];
  if (token === undefined || token === '') return fail('missing');
  const got = digest(token);
  let ok = false;
  for (const secret of secrets) if (sameBytes(digest(secret), got)) ok = true;
  return ok ? OK : fail('mismatch');
}
