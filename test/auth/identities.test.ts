// Listing and unlinking a user's external identities on both stores: the list shows what is
// linked; unlinking removes a provider's identities, 404 when none; the last way to sign in (no
// password, no other provider) is never unlinked. Identities are written with the OAuth store's own
// insert (sign-in that links them is tested in oauth.test.ts).

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, request, startHeraldOn, type TestHerald } from '../helpers/herald.ts';
import { insertIdentity } from '../../src/auth/oauth/store.ts';

const PASSWORD = 'a long enough passphrase';

describeOnStores('external identities of a user', (store) => {
  let h: TestHerald;
  let user: { id: string; token: string };
  const link = (provider: string, subject: string) =>
    insertIdentity(h.herald.services.store.db, { provider, subject, user_id: user.id, email: 'ann@example.com', login: provider === 'github' ? 'ann' : null, token: null, created_at: Date.now(), updated_at: Date.now() });
  const me = (method: string, path: string) => request(h.url, user.token, method, path);

  before(async () => {
    h = await startHeraldOn(store, { HERALD_SIGNUP: 'open' });
    const reg = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'ann@example.com', password: PASSWORD, name: 'Ann' });
    user = { id: reg.body.user.id, token: (await request(h.url, undefined, 'POST', '/v1/auth/login', { email: 'ann@example.com', password: PASSWORD })).body.access_token };
  });
  after(async () => h?.stop());

  it('lists and unlinks; never the last way to sign in', async () => {
    assert.deepEqual((await me('GET', '/v1/auth/identities')).body, { data: [] });
    assert.ok(await link('github', '1001'));
    assert.ok(await link('google', 'g-42'));
    const list = await me('GET', '/v1/auth/identities');
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.body.data.map((i: { provider: string; subject: string; login: string | null }) => [i.provider, i.subject, i.login]).sort(), [['github', '1001', 'ann'], ['google', 'g-42', null]]);
    assert.equal((await me('DELETE', '/v1/auth/identities/keycloak')).status, 404);
    assert.equal((await me('DELETE', '/v1/auth/identities/github')).status, 204);
    assert.deepEqual((await me('GET', '/v1/auth/identities')).body.data.map((i: { provider: string }) => i.provider), ['google']);

    // Without a password, google is now the only way in: refused; with github linked again, allowed.
    await h.herald.services.store.db.updateTable('users').set({ password_hash: null }).where('id', '=', user.id).execute();
    const last = await me('DELETE', '/v1/auth/identities/google');
    assert.equal(last.status, 409, last.text);
    assert.equal(last.body.code, 'conflict');
    assert.ok(await link('github', '1001'));
    assert.equal((await me('DELETE', '/v1/auth/identities/google')).status, 204);
    const lastGithub = await me('DELETE', '/v1/auth/identities/github');
    assert.equal(lastGithub.status, 409, 'github is the last way now');
    assert.equal((await h.api('GET', '/v1/auth/identities')).status, 403, 'an API key has no identities');
    const audit = await me('GET', `/v1/audit?action=auth.identity_unlink&target=${user.id}`);
    assert.equal(audit.body.data.length, 2, audit.text);
  });
});
