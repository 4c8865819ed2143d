// Sending signed webhooks to a test Herald's /hooks routes, signed by an independent implementation.

import { randomBytes } from 'node:crypto';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import { request } from './herald.ts';

export const GH_SECRET = 'gh-secret-0123456789';

/** POSTs `payload` (or `raw`) to /hooks<path> as GitHub would, signed with @octokit/webhooks-methods. */
export async function postGithub(url: string, path: string, payload: unknown, o: { event?: string; delivery?: string; secret?: string; raw?: string } = {}) {
  const body = o.raw ?? JSON.stringify(payload);
  const sig = await octokitSign(o.secret ?? GH_SECRET, body);
  return request(url, undefined, 'POST', `/hooks${path}`, body, {
    'content-type': 'application/json',
    'x-hub-signature-256': sig,
    'x-github-event': o.event ?? 'pull_request',
    'x-github-delivery': o.delivery ?? randomBytes(8).toString('hex'),
  });
}
