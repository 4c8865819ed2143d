// Accounts end to end, on SQLite and on PostgreSQL + Redis: registering per HERALD_SIGNUP and the
// password policy, the bootstrap owner, sign-in answers and throttling, refresh rotation with reuse
// detection, logout, me, switching organizations, roles on representative routes, cookies and CSRF.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describeOnStores, request, startHeraldOn, type TestHerald } from '../helpers/herald.ts';
import { hashPassword } from '../../src/auth/passwords.ts';
import { createOrganization, insertUser, putMembership } from '../../src/auth/store.ts';

const ADMIN = { email: 'Owner@Example.com', password: 'correct horse battery staple' };

interface Session {
  access: string;
  refresh: string;
  cookies: Map<string, string>;
  setCookie: string[];
}

async function login(h: TestHerald, email: string, password: string): Promise<Session> {
  const r = await request(h.url, undefined, 'POST', '/v1/auth/login', { email, password });
  assert.equal(r.status, 200, r.text);
  const setCookie = r.headers.getSetCookie();
  const cookies = new Map(setCookie.map((c) => c.split(';')[0]!.split('=') as [string, string]));
  return { access: r.body.access_token, refresh: r.body.refresh_token, cookies, setCookie };
}

const as = (h: TestHerald, token: string | undefined) => (method: string, path: string, body?: unknown, headers?: Record<string, string>) => request(h.url, token, method, path, body, headers);

/** A user with `role` in `org`, made in the store. */
async function userWithRole(h: TestHerald, email: string, role: string, org = 'ws_default'): Promise<void> {
  const now = Date.now();
  const id = `usr_${email.split('@')[0]}`;
  assert.ok(await insertUser(h.herald.services.store.db, { id, email, email_key: email.toLowerCase(), name: email, password_hash: await hashPassword(ADMIN.password), created_at: now, updated_at: now }));
  await putMembership(h.herald.services.store.db, { user_id: id, workspace_id: org, role }, now);
}

describeOnStores('accounts', (store) => {
  let h: TestHerald;
  before(async () => {
    h = await startHeraldOn(store, { HERALD_ADMIN_EMAIL: ADMIN.email, HERALD_ADMIN_PASSWORD: ADMIN.password, HERALD_SIGNUP: 'open' });
  });
  after(async () => h?.stop());

  it('bootstraps HERALD_ADMIN_EMAIL as owner of the default organization; me lists it', async () => {
    const s = await login(h, 'owner@example.COM', ADMIN.password);
    const me = await as(h, s.access)('GET', '/v1/auth/me');
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.user.email, ADMIN.email);
    assert.deepEqual(me.body.organization, { id: 'ws_default', role: 'owner' });
    assert.deepEqual(me.body.organizations, [{ id: 'ws_default', name: 'Default', role: 'owner' }]);
    // The access token: a JWT with a kid, naming the user, the organization and the session, 15 minutes.
    const header = decodeProtectedHeader(s.access);
    assert.equal(header.alg, 'ES256');
    assert.ok(header.kid);
    const claims = decodeJwt(s.access);
    assert.equal(claims.sub, me.body.user.id);
    assert.equal(claims.org, 'ws_default');
    assert.match(String(claims.sid), /^ses_/);
    assert.equal(claims.exp! - claims.iat!, 900);
  });

  it('registers with HERALD_SIGNUP=open: the user owns a new organization; the address is unique case-insensitively', async () => {
    const r = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'Newbie@example.com', password: 'a long enough passphrase', name: 'Newbie' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.organization.role, 'owner');
    assert.notEqual(r.body.organization.id, 'ws_default');
    const again = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'NEWBIE@example.com', password: 'another long passphrase', name: 'N' });
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'email_taken');
    const s = await login(h, 'newbie@example.com', 'a long enough passphrase');
    const me = await as(h, s.access)('GET', '/v1/auth/me');
    assert.deepEqual(me.body.organization, { id: r.body.organization.id, role: 'owner' });
  });

  it('refuses short and common passwords with weak_password naming body.password', async () => {
    for (const [password, why] of [['short1234', /at least 10/], ['Password123', /commonly used/], ['qwertyuiop', /commonly used/]] as const) {
      const r = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: `weak-${password}@example.com`, password, name: 'W' });
      assert.equal(r.status, 422, r.text);
      assert.equal(r.body.code, 'weak_password');
      assert.equal(r.body.errors[0].path, 'body.password');
      assert.match(r.body.errors[0].message, why);
    }
  });

  it('answers a wrong password and an unknown address identically, and audits both', async () => {
    const wrong = await request(h.url, undefined, 'POST', '/v1/auth/login', { email: ADMIN.email, password: 'not the password at all' });
    const unknown = await request(h.url, undefined, 'POST', '/v1/auth/login', { email: 'nobody@example.com', password: 'not the password at all' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.text, unknown.text);
    assert.equal(wrong.body.code, 'invalid_credentials');
    const audit = await h.api('GET', '/v1/audit?action=auth.login_failed');
    const emails = audit.body.data.map((e: { details: { email: string } }) => e.details.email);
    assert.ok(emails.includes(ADMIN.email) && emails.includes('nobody@example.com'), audit.text);
    const ok = await h.api('GET', '/v1/audit?action=auth.login');
    assert.ok(ok.body.data.length >= 1 && ok.body.data[0].actor.startsWith('user:'), ok.text);
  });

  it('slows failed sign-ins to an account with a growing delay, then answers 429 with Retry-After', async () => {
    const email = 'target@example.com'; // no such user: throttling does not depend on one existing
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const r = await request(h.url, undefined, 'POST', '/v1/auth/login', { email, password: `guess number ${i}` });
      times.push(Date.now() - t0);
      assert.equal(r.status, 401, r.text);
    }
    // Lower bounds only: the delay comes on top of the scrypt work, whose time varies with the
    // machine's load (so one answer's time says nothing about another's).
    for (const [i, delay] of [[1, 100], [2, 200], [3, 400], [4, 800]] as const) {
      assert.ok(times[i]! >= delay, `failure ${i + 1} waits at least ${delay} ms (took ${times.join(', ')} ms)`);
    }
    const refused = await request(h.url, undefined, 'POST', '/v1/auth/login', { email: 'TARGET@example.com', password: 'guess number 6' });
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.body.code, 'rate_limited');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    // Another account from the same address is not refused.
    assert.equal((await request(h.url, undefined, 'POST', '/v1/auth/login', { email: ADMIN.email, password: ADMIN.password })).status, 200);
  });

  it('rotates refresh tokens; presenting a rotated one revokes the whole session', async () => {
    const s = await login(h, ADMIN.email, ADMIN.password);
    const r1 = await request(h.url, undefined, 'POST', '/v1/auth/refresh', { refresh_token: s.refresh });
    assert.equal(r1.status, 200, r1.text);
    assert.notEqual(r1.body.refresh_token, s.refresh);
    assert.equal((await as(h, r1.body.access_token)('GET', '/v1/auth/me')).status, 200);
    const r2 = await request(h.url, undefined, 'POST', '/v1/auth/refresh', { refresh_token: r1.body.refresh_token });
    assert.equal(r2.status, 200, r2.text);
    // The first token again: reuse.
    const reuse = await request(h.url, undefined, 'POST', '/v1/auth/refresh', { refresh_token: s.refresh });
    assert.equal(reuse.status, 401);
    assert.equal(reuse.body.code, 'invalid_refresh_token');
    // The family is gone: its newest refresh token and its access tokens no longer work.
    assert.equal((await request(h.url, undefined, 'POST', '/v1/auth/refresh', { refresh_token: r2.body.refresh_token })).status, 401);
    assert.equal((await as(h, r2.body.access_token)('GET', '/v1/auth/me')).status, 401);
    const audit = await h.api('GET', '/v1/audit?action=auth.refresh_reuse');
    assert.equal(audit.body.data.length, 1, audit.text);
    // Unknown refresh tokens are refused.
    assert.equal((await request(h.url, undefined, 'POST', '/v1/auth/refresh', { refresh_token: 'hr_nonsense' })).status, 401);
  });

  it('logout ends this session; logout-all ends every session of the user', async () => {
    const a = await login(h, ADMIN.email, ADMIN.password);
    const b = await login(h, ADMIN.email, ADMIN.password);
    const c = await login(h, ADMIN.email, ADMIN.password);
    assert.equal((await as(h, a.access)('POST', '/v1/auth/logout')).status, 204);
    assert.equal((await as(h, a.access)('GET', '/v1/auth/me')).status, 401);
    assert.equal((await request(h.url, undefined, 'POST', '/v1/auth/refresh', { refresh_token: a.refresh })).status, 401);
    assert.equal((await as(h, b.access)('GET', '/v1/auth/me')).status, 200, 'other sessions live on');
    const all = await as(h, b.access)('POST', '/v1/auth/logout-all');
    assert.equal(all.status, 200, all.text);
    assert.ok(all.body.sessions_ended >= 2);
    for (const s of [b, c]) {
      assert.equal((await as(h, s.access)('GET', '/v1/auth/me')).status, 401);
      assert.equal((await request(h.url, undefined, 'POST', '/v1/auth/refresh', { refresh_token: s.refresh })).status, 401);
    }
  });

  it("switches to another of the user's organizations (and only to one of them)", async () => {
    const db = h.herald.services.store.db;
    await createOrganization(db, { id: 'ws_second', name: 'Second' }, Date.now());
    await createOrganization(db, { id: 'ws_foreign', name: 'Foreign' }, Date.now());
    await userWithRole(h, 'switcher@example.com', 'viewer');
    await putMembership(db, { user_id: 'usr_switcher', workspace_id: 'ws_second', role: 'admin' }, Date.now());
    const s = await login(h, 'switcher@example.com', ADMIN.password);
    const me = await as(h, s.access)('GET', '/v1/auth/me');
    assert.deepEqual(me.body.organization, { id: 'ws_default', role: 'viewer' });
    assert.deepEqual(me.body.organizations.map((o: { id: string; role: string }) => [o.id, o.role]).sort(), [['ws_default', 'viewer'], ['ws_second', 'admin']]);
    const sw = await as(h, s.access)('POST', '/v1/auth/switch', { org: 'ws_second' });
    assert.equal(sw.status, 200, sw.text);
    assert.equal(sw.body.organization, 'ws_second');
    assert.equal(decodeJwt(sw.body.access_token).org, 'ws_second');
    const after = await as(h, sw.body.access_token)('GET', '/v1/auth/me');
    assert.deepEqual(after.body.organization, { id: 'ws_second', role: 'admin' });
    // Admin in the second organization: may list its keys (none there).
    const keys = await as(h, sw.body.access_token)('GET', '/v1/keys');
    assert.equal(keys.status, 200, keys.text);
    assert.deepEqual(keys.body.data, []);
    // The token acting in the first organization stopped working with the switch.
    assert.equal((await as(h, s.access)('GET', '/v1/auth/me')).status, 401);
    const foreign = await as(h, sw.body.access_token)('POST', '/v1/auth/switch', { org: 'ws_foreign' });
    assert.equal(foreign.status, 404, foreign.text);
  });

  it('roles decide: a viewer reads but cannot send, a member sends but cannot manage keys, an admin manages keys', async () => {
    assert.equal((await h.api('PUT', '/v1/recipients/rolf', { email: 'rolf@example.com' })).status, 201);
    await userWithRole(h, 'viewer@example.com', 'viewer');
    await userWithRole(h, 'member@example.com', 'member');
    await userWithRole(h, 'admin@example.com', 'admin');
    const viewer = as(h, (await login(h, 'viewer@example.com', ADMIN.password)).access);
    const member = as(h, (await login(h, 'member@example.com', ADMIN.password)).access);
    const admin = as(h, (await login(h, 'admin@example.com', ADMIN.password)).access);
    const send = { to: 'rolf', title: 'hello', channels: ['webhook'] };

    assert.equal((await viewer('GET', '/v1/recipients/rolf')).status, 200);
    const refused = await viewer('POST', '/v1/notifications', send);
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.body.code, 'forbidden');
    assert.match(refused.body.detail, /viewer/);
    assert.equal((await viewer('PUT', '/v1/recipients/vic', { email: 'v@example.com' })).status, 403);

    const sent = await member('POST', '/v1/notifications', send);
    assert.notEqual(sent.status, 403, sent.text);
    assert.equal(sent.status < 500, true);
    assert.equal((await member('PUT', '/v1/recipients/mia', { email: 'm@example.com' })).status, 201);
    assert.equal((await member('POST', '/v1/keys', { name: 'm', scopes: ['read'] })).status, 403);
    assert.equal((await member('GET', '/v1/dlq')).status, 403);

    const created = await admin('POST', '/v1/keys', { name: 'by admin user', scopes: ['read'] });
    assert.equal(created.status, 201, created.text);
    const audit = await h.api('GET', '/v1/audit?action=key.create');
    assert.equal(audit.body.data[0].actor, 'user:usr_admin', 'the user is the actor in the audit log');
  });

  it('API keys have no session: /v1/auth/me with a key is 403', async () => {
    const r = await h.api('GET', '/v1/auth/me');
    assert.equal(r.status, 403, r.text);
  });

  it('browsers: HttpOnly SameSite=Lax cookies; cookie requests with an unsafe method need Origin and X-CSRF-Token', async () => {
    const s = await login(h, ADMIN.email, ADMIN.password);
    const access = s.setCookie.find((c) => c.startsWith('herald_access='))!;
    assert.match(access, /HttpOnly/);
    assert.match(access, /SameSite=Lax/);
    assert.doesNotMatch(access, /Secure/, 'plain http without an https HERALD_PUBLIC_URL');
    assert.match(s.setCookie.find((c) => c.startsWith('herald_refresh='))!, /Path=\/v1\/auth;.*HttpOnly/);
    assert.doesNotMatch(s.setCookie.find((c) => c.startsWith('herald_csrf='))!, /HttpOnly/);
    const cookie = [...s.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const origin = h.url;
    const csrf = s.cookies.get('herald_csrf')!;
    const plain = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => request(h.url, undefined, method, path, body, { cookie, ...headers });

    // Safe methods need no token.
    assert.equal((await plain('GET', '/v1/auth/me')).status, 200);
    const key = { name: 'via cookie', scopes: ['read'] };
    const noToken = await plain('POST', '/v1/keys', key, { origin });
    assert.equal(noToken.status, 403, noToken.text);
    assert.equal(noToken.body.code, 'csrf_failed');
    const noOrigin = await plain('POST', '/v1/keys', key, { 'x-csrf-token': csrf });
    assert.equal(noOrigin.body.code, 'csrf_failed');
    const otherSite = await plain('POST', '/v1/keys', key, { origin: 'https://evil.example', 'x-csrf-token': csrf });
    assert.equal(otherSite.body.code, 'csrf_failed');
    const wrongToken = await plain('POST', '/v1/keys', key, { origin, 'x-csrf-token': csrf + 'x' });
    assert.equal(wrongToken.body.code, 'csrf_failed');
    const ok = await plain('POST', '/v1/keys', key, { origin, 'x-csrf-token': csrf });
    assert.equal(ok.status, 201, ok.text);
    // Refresh by cookie follows the same rule.
    assert.equal((await plain('POST', '/v1/auth/refresh', {}, { origin })).body.code, 'csrf_failed');
    const refreshed = await plain('POST', '/v1/auth/refresh', {}, { origin, 'x-csrf-token': csrf });
    assert.equal(refreshed.status, 200, refreshed.text);
    // A bearer token needs no CSRF token.
    assert.equal((await as(h, refreshed.body.access_token)('POST', '/v1/keys', key)).status, 201);
  });
});

describeOnStores('accounts: behind a path prefix', (store) => {
  // A proxy serving Herald under /herald/ strips the prefix; the browser sees /herald/v1/auth/…, so
  // the refresh cookie must name that path or the browser never sends it back.
  it('the refresh cookie is scoped to HERALD_PUBLIC_URL\'s path, and sign-out clears it there', async () => {
    const h = await startHeraldOn(store, { HERALD_ADMIN_EMAIL: ADMIN.email, HERALD_ADMIN_PASSWORD: ADMIN.password, HERALD_PUBLIC_URL: 'http://herald.test/herald/' });
    try {
      const s = await login(h, ADMIN.email, ADMIN.password);
      assert.match(s.setCookie.find((c) => c.startsWith('herald_refresh='))!, /Path=\/herald\/v1\/auth;/);
      assert.match(s.setCookie.find((c) => c.startsWith('herald_access='))!, /Path=\/;/);
      const out = await request(h.url, undefined, 'POST', '/v1/auth/logout', {}, {
        cookie: [...s.cookies].map(([k, v]) => `${k}=${v}`).join('; '), origin: 'http://herald.test', 'x-csrf-token': s.cookies.get('herald_csrf')!,
      });
      assert.equal(out.status < 300, true, out.text);
      const cleared = out.headers.getSetCookie();
      assert.match(cleared.find((c) => c.startsWith('herald_refresh='))!, /Path=\/herald\/v1\/auth;.*Max-Age=0/);
    } finally {
      await h.stop();
    }
  });
});

describeOnStores('accounts: signup modes', (store) => {
  for (const [mode, code] of [['invite', 'invitation_required'], ['closed', 'signup_closed']] as const) {
    it(`HERALD_SIGNUP=${mode}${mode === 'invite' ? ' (the default)' : ''} refuses registration with ${code}`, async () => {
      const h = await startHeraldOn(store, mode === 'invite' ? {} : { HERALD_SIGNUP: mode });
      try {
        const r = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'x@example.com', password: 'a long enough passphrase', name: 'X' });
        assert.equal(r.status, 403, r.text);
        assert.equal(r.body.code, code);
      } finally {
        await h.stop();
      }
    });
  }
});

describeOnStores('accounts: signing keys', (store) => {
  it('a configured HERALD_JWT_KEY (Ed25519) signs with its thumbprint as kid; tokens of the stored key stay valid', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { calculateJwkThumbprint } = await import('jose');
    let h = await startHeraldOn(store, { HERALD_ADMIN_EMAIL: ADMIN.email, HERALD_ADMIN_PASSWORD: ADMIN.password });
    try {
      const before = await login(h, ADMIN.email, ADMIN.password);
      assert.equal(decodeProtectedHeader(before.access).alg, 'ES256');
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
      h = await h.restart({ HERALD_JWT_KEY: pem });
      const after = await login(h, ADMIN.email, ADMIN.password);
      const header = decodeProtectedHeader(after.access);
      assert.equal(header.alg, 'EdDSA');
      assert.equal(header.kid, await calculateJwkThumbprint(publicKey.export({ format: 'jwk' }) as never));
      assert.equal((await as(h, after.access)('GET', '/v1/auth/me')).status, 200);
      assert.equal((await as(h, before.access)('GET', '/v1/auth/me')).status, 200, 'the stored key still verifies');
      // A token whose signature does not match its kid's key is refused.
      const [hd, body] = after.access.split('.');
      const [, , sig] = before.access.split('.');
      assert.equal((await as(h, `${hd}.${body}.${sig}`)('GET', '/v1/auth/me')).status, 401);
    } finally {
      await h.stop();
    }
  });
});
