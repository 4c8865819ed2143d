// A user's own account on both stores: changing the password ends the other sessions (not this
// one); erasing the account deletes the user and their personal data, keeps audit entries under the
// pseudonymous id without the address, and is refused for the last owner of an organization.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, request, startHeraldOn, type TestHerald } from '../helpers/herald.ts';

const PASSWORD = 'a long enough passphrase';
const NEW_PASSWORD = 'quite another passphrase';

describeOnStores('own account: password change and erasure', (store) => {
  let h: TestHerald;
  const login = async (email: string, password: string) => {
    const r = await request(h.url, undefined, 'POST', '/v1/auth/login', { email, password });
    assert.equal(r.status, 200, r.text);
    return r.body.access_token as string;
  };
  before(async () => (h = await startHeraldOn(store, { HERALD_SIGNUP: 'open' })));
  after(async () => h?.stop());

  it('changing the password needs the current one, ends the other sessions and keeps this one', async () => {
    assert.equal((await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'pat@example.com', password: PASSWORD, name: 'Pat' })).status, 201);
    const a = await login('pat@example.com', PASSWORD);
    const b = await login('pat@example.com', PASSWORD);
    const wrong = await request(h.url, a, 'POST', '/v1/auth/password', { current_password: 'not my password!', new_password: NEW_PASSWORD });
    assert.equal(wrong.status, 401, wrong.text);
    const weak = await request(h.url, a, 'POST', '/v1/auth/password', { current_password: PASSWORD, new_password: 'short' });
    assert.equal(weak.status, 422, weak.text);
    assert.equal(weak.body.errors[0].path, 'body.new_password');
    const ok = await request(h.url, a, 'POST', '/v1/auth/password', { current_password: PASSWORD, new_password: NEW_PASSWORD });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.sessions_ended, 1);
    assert.equal((await request(h.url, b, 'GET', '/v1/auth/me')).status, 401, 'the other session ended');
    assert.equal((await request(h.url, a, 'GET', '/v1/auth/me')).status, 200, 'this one goes on');
    assert.equal((await request(h.url, undefined, 'POST', '/v1/auth/login', { email: 'pat@example.com', password: PASSWORD })).status, 401);
    await login('pat@example.com', NEW_PASSWORD);
  });

  it('erasing: refused while the only owner; then the user and their data go, audit entries stay pseudonymous', async () => {
    const reg = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'erin@example.com', password: PASSWORD, name: 'Erin' });
    const id = reg.body.user.id;
    const own = reg.body.organization.id;
    const erin = await login('erin@example.com', PASSWORD);
    const sole = await request(h.url, erin, 'DELETE', '/v1/auth/me', { password: PASSWORD });
    assert.equal(sole.status, 409, sole.text);
    assert.equal(sole.body.code, 'conflict');
    // Another owner takes over Erin's organization; then Erin may go.
    const sam = (await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'sam@example.com', password: PASSWORD, name: 'Sam' })).body.user.id;
    assert.equal((await request(h.url, erin, 'PUT', `/v1/orgs/${own}/members/${sam}`, { role: 'owner' })).status, 201);
    assert.equal((await request(h.url, erin, 'DELETE', '/v1/auth/me', { password: 'wrong password!!' })).status, 401);
    const gone = await request(h.url, erin, 'DELETE', '/v1/auth/me', { password: PASSWORD });
    assert.equal(gone.status, 204, gone.text);
    assert.equal((await request(h.url, erin, 'GET', '/v1/auth/me')).status, 401);
    assert.equal((await request(h.url, undefined, 'POST', '/v1/auth/login', { email: 'erin@example.com', password: PASSWORD })).status, 401);
    const db = h.herald.services.store.db;
    assert.equal(await db.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst(), undefined);
    assert.deepEqual(await db.selectFrom('memberships').select('user_id').where('user_id', '=', id).execute(), []);
    assert.deepEqual(await db.selectFrom('sessions').select('id').where('user_id', '=', id).execute(), []);
    const entries = await db.selectFrom('audit_log').selectAll().where((eb) => eb.or([eb('actor', '=', `user:${id}`), eb('target', '=', id)])).execute();
    assert.ok(entries.some((e) => e.action === 'auth.register'), 'entries stay');
    assert.ok(entries.some((e) => e.action === 'auth.erase'));
    for (const e of entries) assert.ok(!(e.details ?? '').includes('erin@example.com') && !(e.details ?? '').includes('127.0.0.1'), `${e.action}: ${e.details}`);
    // The address is free again.
    assert.equal((await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'erin@example.com', password: PASSWORD, name: 'Erin 2' })).status, 201);
  });
});
