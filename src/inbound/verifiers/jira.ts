// Jira Cloud admin webhooks with a secret: X-Hub-Signature: sha256=<hex HMAC-SHA256(raw body)>.
// No timestamp: replays are caught by X-Atlassian-Webhook-Identifier.

import { verifyHubSignature } from './github.ts';
import type { SignedRequest, Verdict } from './verdict.ts';

export const JIRA_SIGNATURE_HEADER = 'x-hub-signature';

export function verifyJira(req: SignedRequest, secrets: readonly string[]): Verdict {
  return verifyHubSignature(JIRA_SIGNATURE_HEADER, req, secrets);
}
