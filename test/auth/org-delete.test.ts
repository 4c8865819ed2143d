// DELETE /v1/orgs/{org} on both stores: only an owner deletes; the default organization stays; the
// organization's keys stop working at once, sessions acting in it end, memberships, invitations and
// every row of its data are gone, its audit entries stay; other organizations are untouched. And
// the list of organization-scoped tables covers every table of the schema with a workspace_id.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, request, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startSmtp, type SmtpSink } from '../helpers/smtp.ts';
import { WORKSPACE_TABLES } from '../../src/store/workspaces.ts';

const PASSWORD = 'a long enough passphrase';
const OWNER = { email: 'owner@example.com', password: PASSWORD };

describeOnStores('deleting an organization', (store) => {
  let h: TestHerald;
  let smtp: SmtpSink;
  const users: Record<string, { id: string; token: string }> = {};
  const as = (who: string) => (method: string, path: string, body?: unknown) => request(h.url, users[who]!.token, method, path, body);

  before(async () => {
    smtp = await startSmtp();
    h = await startHeraldOn(store, { HERALD_SIGNUP: 'open', HERALD_SMTP_URL: smtp.url, HERALD_ADMIN_EMAIL: OWNER.email, HERALD_ADMIN_PASSWORD: OWNER.password });
    for (const name of ['ann', 'bob', 'cat']) {
      const reg = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: `${name}@example.com`, password: PASSWORD, name });
      assert.equal(reg.status, 201, reg.text);
      users[name] = { id: reg.body.user.id, token: (await request(h.url, undefined, 'POST', '/v1/auth/login', { email: `${name}@example.com`, password: PASSWORD })).body.access_token };
    }
    users.owner = { id: '', token: (await request(h.url, undefined, 'POST', '/v1/auth/login', OWNER)).body.access_token };
  });
  after(async () => {
    await h?.stop();
    await smtp?.close();
  });

  it('only an owner deletes; keys, sessions, members, invitations and data go; audit and other organizations stay', async () => {
    const org = (await as('ann')('POST', '/v1/orgs', { name: 'Doomed' })).body.id as string;
    assert.equal((await as('ann')('PUT', `/v1/orgs/${org}/members/${users.bob!.id}`, { role: 'admin' })).status, 201);
    const annIn = (await as('ann')('POST', '/v1/auth/switch', { org })).body.access_token as string;
    const bobIn = (await as('bob')('POST', '/v1/auth/switch', { org })).body.access_token as string;
    // A switch moves the session: sign in again for sessions acting in the users' own organizations.
    for (const name of ['ann', 'bob']) users[name]!.token = (await request(h.url, undefined, 'POST', '/v1/auth/login', { email: `${name}@example.com`, password: PASSWORD })).body.access_token;
    const key = (await request(h.url, annIn, 'POST', '/v1/keys', { name: 'doomed', scopes: ['admin'] })).body.key as string;
    // Data of every kind the organization can hold.
    for (const [method, path, body] of [
      ['PUT', '/v1/recipients/r1', { name: 'R', webhook: { url: 'http://127.0.0.1:9/x' } }],
      ['PUT', '/v1/templates/t1', { variants: [{ locale: 'en', title: 'T', body: 'B' }] }],
      ['PUT', '/v1/topics/top1', { name: 'Top' }],
      ['POST', '/v1/topics/top1/members', { add: ['r1'] }],
      ['PUT', '/v1/sources/s1', { path: '/doomed/in', provider: 'none', unsigned: true }],
      ['PUT', '/v1/consumers/c1', { filter: { path: '/doomed/*' }, start: 'earliest' }],
      ['POST', '/v1/notifications', { to: 'r1', title: 'Hello' }],
      ['POST', `/v1/orgs/${org}/invitations`, { email: 'new@example.com', role: 'viewer' }],
    ] as const) {
      const r = await request(h.url, path.startsWith('/v1/orgs') ? annIn : key, method, path, body);
      assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
    }
    assert.equal((await request(h.url, undefined, 'POST', '/hooks/doomed/in', { a: 1 })).status, 202);
    const db = h.herald.services.store.db;
    await waitFor(async () => (await db.selectFrom('deliveries').select('id').where('workspace_id', '=', org).execute()).length > 0, 10_000, 'a delivery');
    // Another organization's data, which must stay.
    assert.equal((await as('ann')('PUT', '/v1/recipients/r1', { name: 'Mine' })).status, 201);

    const bob = await request(h.url, bobIn, 'DELETE', `/v1/orgs/${org}`);
    assert.equal(bob.status, 403, `an admin cannot: ${bob.text}`);
    assert.equal((await as('cat')('DELETE', `/v1/orgs/${org}`)).status, 404, 'not a member: 404');
    assert.equal((await request(h.url, key, 'DELETE', `/v1/orgs/${org}`)).status, 403, 'an API key cannot');
    const dflt = await as('owner')('DELETE', '/v1/orgs/ws_default');
    assert.equal(dflt.status, 409, dflt.text);

    const done = await as('ann')('DELETE', `/v1/orgs/${org}`);
    assert.equal(done.status, 204, done.text);
    assert.equal((await request(h.url, key, 'GET', '/v1/recipients')).status, 401, "the organization's key stops at once");
    assert.equal((await request(h.url, annIn, 'GET', '/v1/recipients')).status, 401, 'sessions acting in it end');
    assert.equal((await request(h.url, bobIn, 'GET', '/v1/auth/me')).status, 401);
    assert.equal((await as('ann')('GET', `/v1/orgs/${org}`)).status, 404);
    assert.equal((await as('ann')('DELETE', `/v1/orgs/${org}`)).status, 404, 'deleted once');
    assert.ok(!(await as('bob')('GET', '/v1/orgs')).body.data.some((o: { id: string }) => o.id === org));
    for (const table of WORKSPACE_TABLES) {
      const left = await db.selectFrom(table).select('workspace_id').where('workspace_id', '=', org).execute();
      assert.equal(left.length, 0, `${table} still holds rows of the deleted organization`);
    }
    assert.equal((await db.selectFrom('sessions').select('id').where('workspace_id', '=', org).execute()).length, 0);
    assert.equal((await db.selectFrom('workspaces').select('id').where('id', '=', org).execute()).length, 0);
    const audit = await db.selectFrom('audit_log').select(['action', 'actor']).where('workspace_id', '=', org).where('action', '=', 'org.delete').execute();
    assert.deepEqual(audit, [{ action: 'org.delete', actor: `user:${users.ann!.id}` }], 'the audit entries stay, org.delete last');
    // The users stay; ann's own organization keeps its data; the hook path is free again.
    assert.equal((await as('ann')('GET', '/v1/recipients/r1')).body.name, 'Mine');
    assert.equal((await as('bob')('GET', '/v1/auth/me')).status, 200);
    // The ingest path reads sources by path from a cache of at most 1 s (inbound/service.ts).
    await waitFor(async () => (await request(h.url, undefined, 'POST', '/hooks/doomed/in', { a: 1 })).status === 404, 10_000, 'the hook path to be free');
    assert.equal((await h.api('GET', '/healthz/ready')).status, 200);
  });

  it('every table with a workspace_id column is deleted with the organization (or is the audit log or sessions)', async () => {
    const tables = await h.herald.services.store.db.introspection.getTables();
    const scoped = tables.filter((t) => !t.isView && t.columns.some((c) => c.name === 'workspace_id')).map((t) => t.name).sort();
    const covered = [...WORKSPACE_TABLES, 'audit_log', 'sessions'].sort();
    assert.deepEqual(scoped.filter((t) => !covered.includes(t as never)), [], 'tables missing from WORKSPACE_TABLES');
  });
});
