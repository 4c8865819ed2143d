// Organizations and members on both stores: create (creator owns it), list, get, rename by role,
// another organization is 404, members with roles, the last owner can neither leave nor be demoted.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, request, startHeraldOn, type TestHerald } from '../helpers/herald.ts';

const PASSWORD = 'a long enough passphrase';

describeOnStores('organizations and members', (store) => {
  let h: TestHerald;
  const users: Record<string, { id: string; token: string }> = {};
  const call = (who: string) => (method: string, path: string, body?: unknown) => request(h.url, users[who]!.token, method, path, body);

  before(async () => {
    h = await startHeraldOn(store, { HERALD_SIGNUP: 'open' });
    for (const name of ['ann', 'bob', 'cat']) {
      const reg = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: `${name}@example.com`, password: PASSWORD, name });
      assert.equal(reg.status, 201, reg.text);
      const login = await request(h.url, undefined, 'POST', '/v1/auth/login', { email: `${name}@example.com`, password: PASSWORD });
      users[name] = { id: reg.body.user.id, token: login.body.access_token };
    }
  });
  after(async () => h?.stop());

  it('the creator owns a new organization; it is listed, readable, and 404 to others', async () => {
    const made = await call('ann')('POST', '/v1/orgs', { name: 'Acme' });
    assert.equal(made.status, 201, made.text);
    assert.equal(made.body.role, 'owner');
    const org = made.body.id;
    const list = await call('ann')('GET', '/v1/orgs');
    assert.ok(list.body.data.some((o: { id: string; role: string }) => o.id === org && o.role === 'owner'), list.text);
    assert.equal((await call('ann')('GET', `/v1/orgs/${org}`)).body.name, 'Acme');
    for (const path of [`/v1/orgs/${org}`, `/v1/orgs/${org}/members`, '/v1/orgs/ws_nonexistent']) {
      const r = await call('bob')('GET', path);
      assert.equal(r.status, 404, `${path}: ${r.text}`);
    }
    assert.equal((await call('bob')('PATCH', `/v1/orgs/${org}`, { name: 'Mine now' })).status, 404);
    assert.equal((await call('bob')('PUT', `/v1/orgs/${org}/members/${users.bob!.id}`, { role: 'owner' })).status, 404);
    assert.equal((await h.api('GET', '/v1/orgs')).status, 403, 'API keys do not manage organizations');
  });

  it('members by role: an admin adds and changes members below owner; a viewer only reads; owners manage owners', async () => {
    const org = (await call('ann')('POST', '/v1/orgs', { name: 'Team' })).body.id;
    const bob = users.bob!.id;
    const cat = users.cat!.id;
    assert.equal((await call('ann')('PUT', `/v1/orgs/${org}/members/${bob}`, { role: 'admin' })).status, 201);
    assert.equal((await call('ann')('PUT', `/v1/orgs/${org}/members/${bob}`, { role: 'admin' })).status, 200);
    assert.equal((await call('bob')('PUT', `/v1/orgs/${org}/members/${cat}`, { role: 'viewer' })).status, 201, 'an admin adds a viewer');
    assert.equal((await call('bob')('PUT', `/v1/orgs/${org}/members/${cat}`, { role: 'owner' })).status, 403, 'an admin cannot make owners');
    assert.equal((await call('bob')('PUT', `/v1/orgs/${org}/members/${users.ann!.id}`, { role: 'member' })).status, 403, 'nor demote one');
    assert.equal((await call('bob')('PUT', `/v1/orgs/${org}/members/usr_nobody`, { role: 'viewer' })).status, 404);
    assert.equal((await call('bob')('PATCH', `/v1/orgs/${org}`, { name: 'Team B' })).status, 200);
    const members = await call('cat')('GET', `/v1/orgs/${org}/members`);
    assert.equal(members.status, 200, members.text);
    assert.deepEqual(members.body.data.map((m: { user: string; role: string }) => [m.user, m.role]), [[users.ann!.id, 'owner'], [bob, 'admin'], [cat, 'viewer']]);
    assert.equal((await call('cat')('PATCH', `/v1/orgs/${org}`, { name: 'Viewer was here' })).status, 403);
    assert.equal((await call('cat')('DELETE', `/v1/orgs/${org}/members/${bob}`)).status, 403);
    // The viewer switches into the organization and acts with their role there.
    const sw = await request(h.url, users.cat!.token, 'POST', '/v1/auth/switch', { org });
    assert.equal(sw.status, 200, sw.text);
    assert.equal((await request(h.url, sw.body.access_token, 'GET', '/v1/recipients')).status, 200);
    assert.equal((await request(h.url, sw.body.access_token, 'PUT', '/v1/recipients/x', { name: 'x' })).status, 403);
    assert.equal((await call('cat')('GET', '/v1/auth/me')).status, 401, 'the token from before the switch acts in the old organization: ended');
    // A viewer may leave; its session acting there ends with the membership.
    assert.equal((await request(h.url, sw.body.access_token, 'DELETE', `/v1/orgs/${org}/members/${cat}`)).status, 204);
    assert.equal((await request(h.url, sw.body.access_token, 'GET', '/v1/recipients')).status, 401);
    const again = await request(h.url, undefined, 'POST', '/v1/auth/login', { email: 'cat@example.com', password: PASSWORD });
    users.cat!.token = again.body.access_token;
    assert.equal((await call('cat')('GET', `/v1/orgs/${org}`)).status, 404);
    const audit = await h.api('GET', '/v1/audit?action=member.put');
    assert.equal(audit.status, 200);
  });

  it('the last owner can neither leave nor be demoted; with a second owner, they can', async () => {
    const org = (await call('ann')('POST', '/v1/orgs', { name: 'Solo' })).body.id;
    const ann = users.ann!.id;
    const left = await call('ann')('DELETE', `/v1/orgs/${org}/members/${ann}`);
    assert.equal(left.status, 409, left.text);
    assert.equal(left.body.code, 'conflict');
    assert.equal((await call('ann')('PUT', `/v1/orgs/${org}/members/${ann}`, { role: 'admin' })).status, 409);
    assert.equal((await call('ann')('PUT', `/v1/orgs/${org}/members/${users.bob!.id}`, { role: 'owner' })).status, 201);
    assert.equal((await call('ann')('PUT', `/v1/orgs/${org}/members/${ann}`, { role: 'admin' })).status, 200, 'demoted, another owner remains');
    assert.equal((await call('bob')('DELETE', `/v1/orgs/${org}/members/${users.bob!.id}`)).status, 409, 'bob is now the last owner');
    assert.equal((await call('ann')('DELETE', `/v1/orgs/${org}/members/${ann}`)).status, 204);
  });
});
