// A fake GitHub on 127.0.0.1 (ephemeral port), speaking the parts of GitHub's OAuth app flow and
// REST API that sign-in uses, validated the way github.com does:
//   web  GET  /login/oauth/authorize     client_id must be a registered app; redirect_uri must be
//                                        under the app's callback URL; PKCE S256 challenge kept;
//                                        "the signed-in browser user" is `signedIn` (302 back
//                                        with code and state)
//        POST /login/oauth/access_token  form client_id, client_secret, code, redirect_uri,
//                                        code_verifier; a wrong secret answers
//                                        incorrect_client_credentials, an unknown or used code
//                                        bad_verification_code (codes are single use and live 10
//                                        minutes), a verifier not matching the challenge or a
//                                        redirect_uri unlike the authorize one also
//                                        bad_verification_code; errors come as 200 JSON {error,
//                                        error_description} like GitHub's
//   api  (under /api/v3, GitHub Enterprise's layout) with Authorization: Bearer <token>, else 401
//        GET /user, /user/emails, /user/orgs, /repos/{owner}/{repo} (404 unless the user can read it)
// Every API request is counted per path (`calls`) so tests can see caching.

import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GithubUser {
  id: number;
  login: string;
  name: string | null;
  emails: { email: string; primary: boolean; verified: boolean }[];
  orgs: string[];
  /** "owner/repo" the user can read. */
  repos: string[];
}

export interface FakeGithub {
  /** Web base URL (HERALD_OAUTH_GITHUB_URL). */
  url: string;
  /** API base URL (HERALD_OAUTH_GITHUB_API_URL). */
  apiUrl: string;
  clientId: string;
  clientSecret: string;
  users: Map<number, GithubUser>;
  /** The user the next authorize request signs in as. */
  signedIn: number | undefined;
  /** API requests per path (without query). */
  calls: Map<string, number>;
  /** Token endpoint requests, and the errors it answered. */
  tokenErrors: string[];
  revokeTokens(userId: number): void;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeGithub(opts: { callbackUrl: string }): Promise<FakeGithub> {
  const clientId = `Iv1.${randomBytes(8).toString('hex')}`;
  const clientSecret = randomBytes(20).toString('hex');
  const codes = new Map<string, { user: number; challenge: string; method: string; redirectUri: string; expires: number }>();
  const tokens = new Map<string, number>();
  const fake: FakeGithub = {
    url: '',
    apiUrl: '',
    clientId,
    clientSecret,
    users: new Map(),
    signedIn: undefined,
    calls: new Map(),
    tokenErrors: [],
    revokeTokens(userId) {
      for (const [t, u] of tokens) if (u === userId) tokens.delete(t);
    },
    close: () => new Promise((r) => server.close(() => r())),
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url!, 'http://x');
    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
      const q = url.searchParams;
      if (q.get('client_id') !== clientId) return send(res, 404, { message: 'Not Found' });
      const redirectUri = q.get('redirect_uri') ?? opts.callbackUrl;
      if (!redirectUri.startsWith(opts.callbackUrl)) return send(res, 400, { error: 'redirect_uri_mismatch' });
      if (q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) return send(res, 400, { error: 'invalid_request', error_description: 'PKCE S256 expected by this fake' });
      if (fake.signedIn === undefined) return send(res, 401, { message: 'nobody is signed in to the fake GitHub' });
      const code = randomBytes(10).toString('hex');
      codes.set(code, { user: fake.signedIn, challenge: q.get('code_challenge')!, method: 'S256', redirectUri, expires: Date.now() + 600_000 });
      const back = new URL(redirectUri);
      back.searchParams.set('code', code);
      if (q.get('state') !== null) back.searchParams.set('state', q.get('state')!);
      res.writeHead(302, { location: back.href });
      res.end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      const form = new URLSearchParams(await readBody(req));
      const fail = (error: string) => {
        fake.tokenErrors.push(error);
        send(res, 200, { error, error_description: error.replaceAll('_', ' '), error_uri: 'https://docs.github.com/apps/troubleshooting' });
      };
      if (form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret) return fail('incorrect_client_credentials');
      const code = form.get('code') ?? '';
      const c = codes.get(code);
      codes.delete(code);
      if (!c || c.expires < Date.now()) return fail('bad_verification_code');
      if (form.get('redirect_uri') !== null && form.get('redirect_uri') !== c.redirectUri) return fail('redirect_uri_mismatch');
      const verifier = form.get('code_verifier') ?? '';
      if (createHash('sha256').update(verifier).digest('base64url') !== c.challenge) return fail('bad_verification_code');
      const token = `gho_${randomBytes(18).toString('base64url')}`;
      tokens.set(token, c.user);
      if (!(req.headers.accept ?? '').includes('application/json')) {
        res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded' });
        res.end(new URLSearchParams({ access_token: token, scope: 'read:org,read:user,user:email', token_type: 'bearer' }).toString());
        return;
      }
      return send(res, 200, { access_token: token, scope: 'read:org,read:user,user:email', token_type: 'bearer' });
    }
    if (req.method === 'GET' && url.pathname.startsWith('/api/v3/')) {
      const path = url.pathname.slice('/api/v3'.length);
      fake.calls.set(path, (fake.calls.get(path) ?? 0) + 1);
      const auth = /^(?:Bearer|token) (\S+)$/.exec(req.headers.authorization ?? '');
      const userId = auth ? tokens.get(auth[1]!) : undefined;
      const user = userId === undefined ? undefined : fake.users.get(userId);
      if (!user) return send(res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
      if (path === '/user') return send(res, 200, { id: user.id, login: user.login, name: user.name, email: null, type: 'User' });
      if (path === '/user/emails') return send(res, 200, user.emails.map((e) => ({ ...e, visibility: e.primary ? 'private' : null })));
      if (path === '/user/orgs') return send(res, 200, user.orgs.map((login, i) => ({ login, id: 1000 + i, url: `${fake.apiUrl}/orgs/${login}` })));
      const repo = /^\/repos\/([^/]+)\/([^/]+)$/.exec(path);
      if (repo) {
        const full = `${decodeURIComponent(repo[1]!)}/${decodeURIComponent(repo[2]!)}`.toLowerCase();
        if (!user.repos.map((r) => r.toLowerCase()).includes(full)) return send(res, 404, { message: 'Not Found' });
        return send(res, 200, { full_name: full, private: true, permissions: { admin: false, push: false, pull: true } });
      }
      return send(res, 404, { message: 'Not Found' });
    }
    send(res, 404, { message: 'Not Found' });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 500, { message: String(err) }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.url = base;
  fake.apiUrl = `${base}/api/v3`;
  return fake;
}
