// The webhook broker's GitHub repository read grant, on both stores, against the fake GitHub of
// test/fakes/github.ts (users sign in with GitHub through the real OAuth flow): an organization
// linked to a GitHub organization lets a GitHub source (`github_read`, path ending in
// /<github org>/<repository>) grant read to every user whose GitHub account can read that
// repository. Users outside the organization read its events by that grant alone; a GitHub user
// who cannot read the repository, a user without GitHub, and other sources stay 404; the grant
// ends when the source drops it or the organization is unlinked. Refusals name body.github_read.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, request, startHeraldOn, type TestHerald } from '../helpers/herald.ts';
import { startFakeGithub, type FakeGithub } from '../fakes/github.ts';
import { postGithub } from '../helpers/hooks.ts';

const PUBLIC_URL = 'http://herald.test';
const ADMIN = { email: 'owner@acme.example', password: 'correct horse battery staple' };
const SECRET = 'gh-secret-0123456789';

/** Signs in through the fake GitHub as `githubUser` (authorize, callback); the access token. */
async function signInWithGithub(h: TestHerald, github: FakeGithub, githubUser: number): Promise<string> {
  github.signedIn = githubUser;
  const start = await fetch(`${h.url}/v1/auth/oauth/github`, { redirect: 'manual' });
  assert.equal(start.status, 302, await start.text());
  const binding = start.headers.getSetCookie().find((c) => c.startsWith('herald_oauth='))!.split(';')[0]!;
  const atGithub = await fetch(start.headers.get('location')!, { redirect: 'manual' });
  assert.equal(atGithub.status, 302, await atGithub.text());
  const back = new URL(atGithub.headers.get('location')!);
  const done = await request(h.url, undefined, 'GET', back.pathname + back.search, undefined, { cookie: binding });
  assert.equal(done.status, 200, done.text);
  return done.body.access_token;
}

describeOnStores('webhook broker: GitHub repository read grant', (store) => {
  let h: TestHerald;
  let github: FakeGithub;
  let owner: string;
  const tokens: Record<string, string> = {};
  const ev: Record<string, string> = {};

  before(async () => {
    github = await startFakeGithub({ callbackUrl: `${PUBLIC_URL}/v1/auth/oauth/github/callback` });
    h = await startHeraldOn(store, {
      HERALD_PUBLIC_URL: PUBLIC_URL,
      HERALD_SIGNUP: 'open',
      HERALD_ADMIN_EMAIL: ADMIN.email,
      HERALD_ADMIN_PASSWORD: ADMIN.password,
      HERALD_OAUTH_GITHUB_CLIENT_ID: github.clientId,
      HERALD_OAUTH_GITHUB_CLIENT_SECRET: github.clientSecret,
      HERALD_OAUTH_GITHUB_URL: github.url,
      HERALD_OAUTH_GITHUB_API_URL: github.apiUrl,
    });
    const login = await request(h.url, undefined, 'POST', '/v1/auth/login', ADMIN);
    assert.equal(login.status, 200, login.text);
    owner = login.body.access_token;

    // Outside contributors: on GitHub, not in the GitHub organization, so they do not join Herald's.
    github.users.set(701, { id: 701, login: 'contrib', name: 'Contributor', emails: [{ email: 'contrib@example.net', primary: true, verified: true }], orgs: [], repos: ['acme-corp/widgets'] });
    github.users.set(702, { id: 702, login: 'nosy', name: 'Nosy', emails: [{ email: 'nosy@example.net', primary: true, verified: true }], orgs: [], repos: ['other-corp/widgets'] });
    tokens.contrib = await signInWithGithub(h, github, 701);
    tokens.nosy = await signInWithGithub(h, github, 702);
    const reg = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'plain@example.net', password: ADMIN.password, name: 'plain' });
    assert.equal(reg.status, 201, reg.text);
    tokens.plain = (await request(h.url, undefined, 'POST', '/v1/auth/login', { email: 'plain@example.net', password: ADMIN.password })).body.access_token;
    for (const t of Object.values(tokens)) {
      const me = await request(h.url, t, 'GET', '/v1/auth/me');
      assert.ok(!me.body.organizations.some((o: any) => o.id === 'ws_default'), 'not a member of the source organization');
    }
  });
  after(async () => {
    await h?.stop();
    await github?.close();
  });

  it('is refused unless the organization is linked and the path names a repository of the linked GitHub organization', async () => {
    const put = (id: string, body: Record<string, unknown>) => h.api('PUT', `/v1/sources/${id}`, { provider: 'github', secrets: [SECRET], github_read: true, ...body });
    const unlinked = await put('widgets', { path: '/github/acme-corp/widgets' });
    assert.equal(unlinked.status, 422, unlinked.text);
    assert.equal(unlinked.body.errors[0].path, 'body.github_read');
    assert.match(unlinked.body.detail, /linked to a GitHub organization/);

    assert.equal((await request(h.url, owner, 'PUT', '/v1/orgs/ws_default/github', { org: 'Acme-Corp', default_role: 'member' })).status, 200);
    for (const [path, provider] of [['/github/other-corp/widgets', 'github'], ['/widgets', 'github'], ['/github/acme-corp/widgets', 'stripe']] as const) {
      const r = await put('widgets', { path, provider, ...(provider === 'stripe' && { secrets: ['whsec_abc'] }) });
      assert.equal(r.status, 422, `${path} ${provider}: ${r.text}`);
      assert.ok(r.body.errors.some((e: any) => e.path === 'body.github_read'), r.text);
    }
    const ok = await put('widgets', { path: '/github/Acme-Corp/Widgets' });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.body.github_repo, 'acme-corp/widgets');
    const plain = await h.api('PUT', '/v1/sources/gadgets', { path: '/github/acme-corp/gadgets', provider: 'github', secrets: [SECRET] });
    assert.equal(plain.status, 201, plain.text);
    assert.equal(plain.body.github_repo, null);
    for (const [id, path] of [['widgets', '/github/Acme-Corp/Widgets'], ['gadgets', '/github/acme-corp/gadgets']]) {
      const r = await postGithub(h.url, path!, { repository: { full_name: path!.slice(8) } }, { event: 'push' });
      assert.equal(r.status, 202, r.text);
      ev[id!] = r.body.id;
    }
  });

  it('admits a user whose GitHub account can read the repository, and nobody else', async () => {
    const read = (who: string, id: string) => request(h.url, tokens[who], 'GET', `/v1/events/${id}`);
    const listed = async (who: string) => (await request(h.url, tokens[who], 'GET', '/v1/events?limit=100')).body.data.map((e: any) => e.id);

    const got = await read('contrib', ev.widgets!);
    assert.equal(got.status, 200, got.text);
    assert.deepEqual(got.body.payload, { repository: { full_name: 'Acme-Corp/Widgets' } });
    assert.deepEqual(await listed('contrib'), [ev.widgets]);
    assert.equal((await read('contrib', ev.gadgets!)).status, 404, 'another source of the organization');
    for (const who of ['nosy', 'plain']) {
      assert.equal((await read(who, ev.widgets!)).status, 404, `${who} reads nothing`);
      assert.deepEqual(await listed(who), [], `${who} lists nothing`);
    }
    assert.ok((github.calls.get('/repos/acme-corp/widgets') ?? 0) >= 1, 'asked of GitHub with the user token');
  });

  it('ends when the source drops the grant or the organization is unlinked', async () => {
    const read = () => request(h.url, tokens.contrib, 'GET', `/v1/events/${ev.widgets}`);
    assert.equal((await h.api('PUT', '/v1/sources/widgets', { path: '/github/Acme-Corp/Widgets', provider: 'github', secrets: [SECRET] })).status, 200);
    assert.equal((await read()).status, 404, 'the grant dropped');
    assert.equal((await h.api('PUT', '/v1/sources/widgets', { path: '/github/Acme-Corp/Widgets', provider: 'github', secrets: [SECRET], github_read: true })).status, 200);
    assert.equal((await read()).status, 200);
    assert.equal((await request(h.url, owner, 'DELETE', '/v1/orgs/ws_default/github')).status, 204);
    assert.equal((await read()).status, 404, 'unlinked');
    assert.deepEqual((await request(h.url, tokens.contrib, 'GET', '/v1/events')).body.data, []);
  });
});
