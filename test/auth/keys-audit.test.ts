// API keys record their creator and may expire; the audit log's filters (actor, action, target,
// from, to) and its retention purge (HERALD_AUDIT_RETENTION, on the lease queue). Both stores.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, request, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';

const OWNER = { email: 'owner@example.com', password: 'correct horse battery staple' };

describeOnStores('API key creators and expiry, audit filters and retention', (store) => {
  let h: TestHerald;
  let token: string;
  let userId: string;

  before(async () => {
    h = await startHeraldOn(store, { HERALD_ADMIN_EMAIL: OWNER.email, HERALD_ADMIN_PASSWORD: OWNER.password, HERALD_SIGNUP: 'open' });
    const r = await request(h.url, undefined, 'POST', '/v1/auth/login', OWNER);
    assert.equal(r.status, 200, r.text);
    token = r.body.access_token;
    userId = (await request(h.url, token, 'GET', '/v1/auth/me')).body.user.id;
  });
  after(async () => h?.stop());

  it('a key records who created it, a user or a key, and the list shows it', async () => {
    const byUser = await request(h.url, token, 'POST', '/v1/keys', { name: 'by user', scopes: ['read'] });
    assert.equal(byUser.status, 201, byUser.text);
    assert.equal(byUser.body.created_by, `user:${userId}`);
    assert.equal(byUser.body.expires_at, null);
    const byKey = await h.api('POST', '/v1/keys', { name: 'by key', scopes: ['send'] });
    assert.equal(byKey.status, 201, byKey.text);
    // A key created by the key just created by the user, to name a key creator that is not the admin key.
    const third = await request(h.url, byKey.body.key, 'POST', '/v1/keys', { name: 'x', scopes: ['read'] });
    assert.equal(third.status, 403, 'a send key cannot create keys');
    const list = await h.api('GET', '/v1/keys');
    const find = (id: string) => list.body.data.find((k: { id: string }) => k.id === id);
    assert.equal(find(byUser.body.id).created_by, `user:${userId}`);
    assert.match(find(byKey.body.id).created_by, /^key:key_/);
    assert.equal(find(byKey.body.id).expires_at, null);
    const admin = list.body.data.find((k: { name: string }) => k.name === 'HERALD_ADMIN_KEY');
    assert.equal(admin.created_by, null, 'the configured admin key has no creator');
    assert.equal(find(byKey.body.id).created_by, `key:${admin.id}`);
  });

  it('an expiry in the past is refused; a key works until it expires, then is 401 and listed with its expiry', async () => {
    const past = await h.api('POST', '/v1/keys', { name: 'old', scopes: ['read'], expires_at: new Date(Date.now() - 1000).toISOString() });
    assert.equal(past.status, 422, past.text);
    assert.equal(past.body.errors[0].path, 'body.expires_at');
    assert.equal((await h.api('POST', '/v1/keys', { name: 'bad', scopes: ['read'], expires_at: 'tomorrow' })).status, 422);
    const expiresAt = new Date(Date.now() + 3000);
    const k = await h.api('POST', '/v1/keys', { name: 'short', scopes: ['read'], expires_at: expiresAt.toISOString() });
    assert.equal(k.status, 201, k.text);
    assert.equal(k.body.expires_at, expiresAt.toISOString());
    assert.equal((await request(h.url, k.body.key, 'GET', '/v1/recipients')).status, 200, 'valid before its expiry');
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt.getTime() - Date.now()) + 50));
    const late = await request(h.url, k.body.key, 'GET', '/v1/recipients');
    assert.equal(late.status, 401, late.text);
    assert.equal(late.body.code, 'unauthorized');
    const listed = (await h.api('GET', '/v1/keys')).body.data.find((x: { id: string }) => x.id === k.body.id);
    assert.equal(listed.expires_at, expiresAt.toISOString());
  });

  it('the audit log filters by actor, action, target and time, and another organization sees none of it', async () => {
    const start = new Date().toISOString();
    const made = await request(h.url, token, 'POST', '/v1/keys', { name: 'audited', scopes: ['read'] });
    await h.api('DELETE', `/v1/keys/${made.body.id}`);
    const byTarget = await h.api('GET', `/v1/audit?target=${made.body.id}`);
    assert.equal(byTarget.status, 200, byTarget.text);
    assert.deepEqual(byTarget.body.data.map((e: { action: string }) => e.action), ['key.revoke', 'key.create']);
    const byActor = await h.api('GET', `/v1/audit?actor=${encodeURIComponent(`user:${userId}`)}&action=key.create&from=${start}`);
    assert.deepEqual(byActor.body.data.map((e: { target: string }) => e.target), [made.body.id]);
    const keyActor = await h.api('GET', `/v1/audit?target=${made.body.id}&actor=${encodeURIComponent(`user:${userId}`)}`);
    assert.deepEqual(keyActor.body.data.map((e: { action: string }) => e.action), ['key.create'], 'the revoke was by the admin key');
    const before = await h.api('GET', `/v1/audit?target=${made.body.id}&to=${start}`);
    assert.deepEqual(before.body.data, []);
    const paged = await h.api('GET', `/v1/audit?target=${made.body.id}&limit=1`);
    assert.equal(paged.body.data.length, 1);
    const next = await h.api('GET', `/v1/audit?target=${made.body.id}&limit=1&cursor=${paged.body.next_cursor}`);
    assert.equal(next.body.data[0].action, 'key.create');
    assert.equal((await h.api('GET', '/v1/audit?from=yesterday')).status, 422);
    // Another organization: its owner sees its own entries only.
    const reg = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'other@example.com', password: OWNER.password, name: 'Other' });
    assert.equal(reg.status, 201, reg.text);
    const other = (await request(h.url, undefined, 'POST', '/v1/auth/login', { email: 'other@example.com', password: OWNER.password })).body.access_token;
    const theirs = await request(h.url, other, 'GET', `/v1/audit?target=${made.body.id}`);
    assert.equal(theirs.status, 200, theirs.text);
    assert.deepEqual(theirs.body.data, []);
    // No route changes or deletes entries.
    const id = byTarget.body.data[0].id;
    for (const method of ['DELETE', 'PATCH', 'PUT']) assert.ok([404, 405].includes((await h.api(method, `/v1/audit/${id}`, method === 'DELETE' ? undefined : {})).status), method);
    assert.equal((await h.api('DELETE', '/v1/audit')).status, 405);
  });

  it('HERALD_AUDIT_RETENTION purges older entries in the background and keeps newer ones', async () => {
    const db = h.herald.services.store.db;
    const now = Date.now();
    await db
      .insertInto('audit_log')
      .values([
        { id: 'aud_00OLD0000000000000000000A', workspace_id: 'ws_default', actor: 'system', action: 'test.old', target: 'old', reason: null, details: null, created_at: now - 3 * 86_400_000 },
        { id: 'aud_00OLD0000000000000000000B', workspace_id: 'ws_default', actor: 'system', action: 'test.recent', target: 'recent', reason: null, details: null, created_at: now - 3_600_000 },
      ])
      .execute();
    assert.equal((await h.api('GET', '/v1/audit?action=test.old')).body.data.length, 1, 'kept while no retention is configured');
    h = await h.restart({ HERALD_AUDIT_RETENTION: '1d' });
    await waitFor(async () => (await h.api('GET', '/v1/audit?action=test.old')).body.data.length === 0, 30_000, 'the old entry purged');
    assert.equal((await h.api('GET', '/v1/audit?action=test.recent')).body.data.length, 1, 'a newer entry stays');
    const lease = await h.herald.services.store.db.selectFrom('lease_queue').selectAll().where('kind', '=', 'audit_purge').executeTakeFirstOrThrow();
    assert.equal(lease.owner, null, 'the purge freed its lease');
    assert.ok(lease.due_at > Date.now() + 30 * 60_000, 'next purge in about an hour');
  });
});
