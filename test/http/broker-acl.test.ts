// Who reads which inbound events, on both stores: the owner, a member of each role, a member of
// another organization, public events, and API keys of each scope. Anything not readable is 404
// (never 403), whether it exists or not; listings show exactly the readable events.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, request, startHeraldOn, type TestHerald } from '../helpers/herald.ts';
import { postGithub } from '../helpers/hooks.ts';

const PASSWORD = 'a long enough passphrase';
const SECRET = 'gh-secret-0123456789';

describeOnStores('webhook broker: access to events', (store) => {
  let h: TestHerald;
  const users: Record<string, { id: string; token: string; org: string }> = {};
  const keys: Record<string, string> = {};
  const ev: Record<string, string> = {};

  before(async () => {
    h = await startHeraldOn(store, { HERALD_SIGNUP: 'open' });
    for (const name of ['ann', 'bob', 'vic', 'adam', 'carol']) {
      const reg = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: `${name}@example.com`, password: PASSWORD, name });
      assert.equal(reg.status, 201, reg.text);
      const login = await request(h.url, undefined, 'POST', '/v1/auth/login', { email: `${name}@example.com`, password: PASSWORD });
      users[name] = { id: reg.body.user.id, token: login.body.access_token, org: reg.body.organization.id };
    }
    const ann = users.ann!;
    for (const [name, role] of [['bob', 'member'], ['vic', 'viewer'], ['adam', 'admin']] as const) {
      const r = await request(h.url, ann.token, 'PUT', `/v1/orgs/${ann.org}/members/${users[name]!.id}`, { role });
      assert.equal(r.status, 201, r.text);
    }
    const sources = [
      ['org', { visibility: 'org' }],
      ['private', { visibility: 'private' }],
      ['public', { visibility: 'public' }],
      ['bobs', { visibility: 'private', owner: users.bob!.id }],
    ] as const;
    for (const [id, extra] of sources) {
      const r = await request(h.url, ann.token, 'PUT', `/v1/sources/${id}`, { path: `/acl/${id}`, provider: 'github', secrets: [SECRET], ...extra });
      assert.equal(r.status, 201, r.text);
      if (id !== 'bobs') assert.equal(r.body.owner, ann.id, 'the creator owns a source by default');
      const posted = await postGithub(h.url, `/acl/${id}`, { source: id }, { secret: SECRET });
      assert.equal(posted.status, 202, posted.text);
      ev[id] = posted.body.id;
    }
    for (const scope of ['read', 'send', 'admin']) {
      const k = await request(h.url, ann.token, 'POST', '/v1/keys', { name: scope, scopes: [scope] });
      assert.equal(k.status, 201, k.text);
      keys[scope] = k.body.key;
    }
    const other = await request(h.url, users.carol!.token, 'POST', '/v1/keys', { name: 'b-read', scopes: ['read'] });
    assert.equal(other.status, 201, other.text);
    keys.otherRead = other.body.key;
  });
  after(() => h?.stop());

  const matrix: [string, () => string, string[]][] = [
    ['owner (ann, owner role)', () => users.ann!.token, ['org', 'private', 'public']],
    ['member (bob) who owns a private source', () => users.bob!.token, ['org', 'public', 'bobs']],
    ['viewer (vic)', () => users.vic!.token, ['org', 'public']],
    ['admin (adam): private sources stay their owner\'s', () => users.adam!.token, ['org', 'public']],
    ['member of another organization (carol): public only', () => users.carol!.token, ['public']],
    ['API key with read', () => keys.read!, ['org', 'private', 'public', 'bobs']],
    ['API key with admin', () => keys.admin!, ['org', 'private', 'public', 'bobs']],
    ['API key with send only', () => keys.send!, []],
    ["another organization's read key", () => keys.otherRead!, []],
  ];

  for (const [who, cred, readable] of matrix) {
    it(`${who} reads ${readable.length ? readable.join(', ') : 'nothing'}`, async () => {
      for (const id of Object.keys(ev)) {
        const r = await request(h.url, cred(), 'GET', `/v1/events/${ev[id]}`);
        assert.equal(r.status, readable.includes(id) ? 200 : 404, `${id}: ${r.text.slice(0, 200)}`);
      }
      const list = await request(h.url, cred(), 'GET', '/v1/events?limit=200');
      if (who === 'API key with send only') {
        assert.equal(list.status, 403);
        return;
      }
      assert.equal(list.status, 200, list.text);
      const seen = new Set(list.body.data.map((e: { id: string }) => e.id));
      assert.deepEqual(Object.keys(ev).filter((id) => seen.has(ev[id])).sort(), [...readable].sort());
    });
  }

  it('sources are admin-only; a source of another organization is 404', async () => {
    assert.equal((await request(h.url, users.bob!.token, 'GET', '/v1/sources/org')).status, 404, "bob's session acts in his own organization");
    assert.equal((await request(h.url, keys.read!, 'GET', '/v1/sources/org')).status, 403);
    assert.equal((await request(h.url, keys.admin!, 'GET', '/v1/sources/org')).status, 200);
    assert.equal((await request(h.url, users.carol!.token, 'DELETE', '/v1/sources/org')).status, 404);
    assert.equal((await request(h.url, users.ann!.token, 'GET', '/v1/sources/org')).status, 200);
  });

  it("a consumer made with a read key hands out every event of its organization; a user's, the ones that user may read", async () => {
    const c = await request(h.url, keys.read!, 'PUT', '/v1/consumers/all', { filter: { path: '/acl/*' }, start: 'earliest' });
    assert.equal(c.status, 201, c.text);
    const all = await request(h.url, keys.read!, 'GET', '/v1/consumers/all/events?limit=50');
    assert.deepEqual(all.body.data.map((e: { id: string }) => e.id).sort(), Object.values(ev).sort());
    // bob acts in ann's organization (switch), and his consumer there skips ann's private source.
    const sw = await request(h.url, users.bob!.token, 'POST', '/v1/auth/switch', { org: users.ann!.org });
    assert.equal(sw.status, 200, sw.text);
    const bobIn = sw.body.access_token as string;
    assert.equal((await request(h.url, bobIn, 'PUT', '/v1/consumers/bobs', { filter: { path: '/acl/**' }, start: 'earliest' })).status, 201);
    const his = await request(h.url, bobIn, 'GET', '/v1/consumers/bobs/events?limit=50');
    assert.deepEqual(his.body.data.map((e: { id: string }) => e.id).sort(), [ev.org, ev.public, ev.bobs].sort());
  });
});
