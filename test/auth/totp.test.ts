// The TOTP second factor end to end on both stores, with codes computed here independently of
// Herald's implementation (RFC 6238 in a few lines of node:crypto): enrol, confirm, sign-in asks
// for a code only after the password is right, each code works once, recovery codes work once,
// disabling; an organization that requires TOTP of its members.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describeOnStores, request, startHeraldOn, type TestHerald } from '../helpers/herald.ts';

const OWNER = { email: 'owner@example.com', password: 'correct horse battery staple' };
const PASSWORD = 'a long enough passphrase';

function fromBase32(s: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of s.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** RFC 6238 with SHA-1, 6 digits, 30 s steps: the code of time step `step`. */
function code(secret: string, step: number): string {
  const counter = Buffer.alloc(8);
  counter.writeUInt32BE(Math.floor(step / 2 ** 32), 0);
  counter.writeUInt32BE(step % 2 ** 32, 4);
  const mac = createHmac('sha1', fromBase32(secret)).update(counter).digest();
  const o = mac[19]! & 15;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}
const stepNow = () => Math.floor(Date.now() / 30_000);

describeOnStores('TOTP second factor', (store) => {
  let h: TestHerald;
  const as = (token: string | undefined) => (method: string, path: string, body?: unknown) => request(h.url, token, method, path, body);
  const login = (email: string, password: string, totp?: string) => request(h.url, undefined, 'POST', '/v1/auth/login', { email, password, ...(totp !== undefined && { totp }) });

  before(async () => {
    h = await startHeraldOn(store, { HERALD_ADMIN_EMAIL: OWNER.email, HERALD_ADMIN_PASSWORD: OWNER.password, HERALD_SIGNUP: 'open' });
  });
  after(async () => h?.stop());

  it('enrol, confirm, then sign-in needs a code after the password; each code and recovery code works once; disable', async () => {
    const reg = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'ann@example.com', password: PASSWORD, name: 'Ann' });
    assert.equal(reg.status, 201, reg.text);
    const token = (await login('ann@example.com', PASSWORD)).body.access_token;
    assert.deepEqual((await as(token)('GET', '/v1/auth/totp')).body, { enabled: false, pending: false, recovery_codes_left: 0 });
    const enrol = await as(token)('POST', '/v1/auth/totp');
    assert.equal(enrol.status, 201, enrol.text);
    const secret: string = enrol.body.secret;
    assert.match(secret, /^[A-Z2-7]{32}$/);
    const uri = new URL(enrol.body.otpauth_uri);
    assert.equal(uri.searchParams.get('secret'), secret);
    assert.equal(decodeURIComponent(uri.pathname), '/Herald:ann@example.com');
    // Pending: sign-in does not ask yet; a wrong code does not confirm.
    assert.equal((await login('ann@example.com', PASSWORD)).status, 200);
    const step = stepNow();
    const wrong = await as(token)('POST', '/v1/auth/totp/confirm', { code: code(secret, step + 5) });
    assert.equal(wrong.status, 401, wrong.text);
    assert.equal(wrong.body.code, 'invalid_totp');
    const confirmed = await as(token)('POST', '/v1/auth/totp/confirm', { code: code(secret, step) });
    assert.equal(confirmed.status, 200, confirmed.text);
    const recovery: string[] = confirmed.body.recovery_codes;
    assert.equal(recovery.length, 10);
    assert.equal(new Set(recovery).size, 10);
    const stored = await h.herald.services.store.db.selectFrom('recovery_codes').select('hash').where('user_id', '=', reg.body.user.id).execute();
    assert.equal(stored.length, 10);
    assert.ok(stored.every((r) => !recovery.includes(r.hash) && /^[0-9a-f]{64}$/.test(r.hash)), 'stored hashed');
    assert.deepEqual((await as(token)('GET', '/v1/auth/totp')).body, { enabled: true, pending: false, recovery_codes_left: 10 });
    assert.equal((await as(token)('POST', '/v1/auth/totp')).status, 409, 'no second enrolment while on');

    // A wrong password is invalid_credentials, with or without a code: totp_required only after the password is right.
    const badPw = await login('ann@example.com', 'not the password at all');
    assert.equal(badPw.status, 401);
    assert.equal(badPw.body.code, 'invalid_credentials');
    assert.equal((await login('ann@example.com', 'not the password at all', code(secret, step + 1))).body.code, 'invalid_credentials');
    const noCode = await login('ann@example.com', PASSWORD);
    assert.equal(noCode.status, 401, noCode.text);
    assert.equal(noCode.body.code, 'totp_required');
    const replay = await login('ann@example.com', PASSWORD, code(secret, step));
    assert.equal(replay.status, 401, 'the confirming code is used up');
    assert.equal(replay.body.code, 'invalid_totp');
    const ok = await login('ann@example.com', PASSWORD, code(secret, step + 1));
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await login('ann@example.com', PASSWORD, code(secret, step + 1))).body.code, 'invalid_totp', 'a code works once');
    // Recovery codes: once each, written as shown or without the dash and in capitals.
    const rc = await login('ann@example.com', PASSWORD, recovery[0]!.toUpperCase().replace('-', ''));
    assert.equal(rc.status, 200, rc.text);
    assert.equal((await login('ann@example.com', PASSWORD, recovery[0]!)).body.code, 'invalid_totp');
    assert.equal((await as(rc.body.access_token)('GET', '/v1/auth/totp')).body.recovery_codes_left, 9);
    const audit = await request(h.url, rc.body.access_token, 'GET', `/v1/audit?action=auth.login&actor=user:${reg.body.user.id}`);
    assert.equal(audit.body.data[0].details.second_factor, 'recovery_code');
    // Disable: a wrong password is refused; a recovery code works.
    const t2 = rc.body.access_token;
    assert.equal((await as(t2)('POST', '/v1/auth/totp/disable', { password: 'wrong password here' })).status, 401);
    assert.equal((await as(t2)('POST', '/v1/auth/totp/disable', {})).status, 422);
    assert.equal((await as(t2)('POST', '/v1/auth/totp/disable', { code: recovery[1] })).status, 204);
    assert.deepEqual((await as(t2)('GET', '/v1/auth/totp')).body, { enabled: false, pending: false, recovery_codes_left: 0 });
    // Off: secret and codes gone (sign-in by password alone is not tried here: the failures above
    // used up the account's throttle bucket).
    const row = await h.herald.services.store.db.selectFrom('users').select(['totp_secret', 'totp_enabled_at']).where('id', '=', reg.body.user.id).executeTakeFirstOrThrow();
    assert.deepEqual(row, { totp_secret: null, totp_enabled_at: null });
    assert.equal((await h.herald.services.store.db.selectFrom('recovery_codes').select('hash').where('user_id', '=', reg.body.user.id).execute()).length, 0);
  });

  it('an organization that requires TOTP admits members without it only to enrol; the requirement needs TOTP of who sets it', async () => {
    const owner = (await login(OWNER.email, OWNER.password)).body.access_token;
    const refused = await as(owner)('PATCH', '/v1/orgs/ws_default', { require_totp: true });
    assert.equal(refused.status, 409, refused.text);
    const secret = (await as(owner)('POST', '/v1/auth/totp')).body.secret;
    const step = stepNow();
    assert.equal((await as(owner)('POST', '/v1/auth/totp/confirm', { code: code(secret, step) })).status, 200);
    const set = await as(owner)('PATCH', '/v1/orgs/ws_default', { require_totp: true });
    assert.equal(set.status, 200, set.text);
    assert.equal(set.body.require_totp, true);
    assert.equal((await as(owner)('GET', '/v1/recipients')).status, 200, 'the owner has TOTP on');

    const reg = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'bob@example.com', password: PASSWORD, name: 'Bob' });
    assert.equal((await as(owner)('PUT', `/v1/orgs/ws_default/members/${reg.body.user.id}`, { role: 'member' })).status, 201);
    const bob = (await login('bob@example.com', PASSWORD)).body.access_token;
    const sw = await as(bob)('POST', '/v1/auth/switch', { org: 'ws_default' });
    assert.equal(sw.status, 200, sw.text);
    const inDefault = sw.body.access_token;
    const blocked = await as(inDefault)('GET', '/v1/recipients');
    assert.equal(blocked.status, 403, blocked.text);
    assert.equal(blocked.body.code, 'totp_enrolment_required');
    assert.equal((await as(inDefault)('POST', '/v1/notifications', { to: 'x', title: 'x' })).body.code, 'totp_enrolment_required');
    assert.equal((await as(inDefault)('GET', '/v1/auth/me')).status, 200, 'the session itself works');
    const bobSecret = (await as(inDefault)('POST', '/v1/auth/totp')).body.secret;
    assert.equal((await as(inDefault)('POST', '/v1/auth/totp/confirm', { code: code(bobSecret, stepNow()) })).status, 200);
    assert.equal((await as(inDefault)('GET', '/v1/recipients')).status, 200, 'enabled: admitted at the next request');
    // Bob's own organization does not require it: switching back works for anything.
    const own = await as(inDefault)('POST', '/v1/auth/switch', { org: reg.body.organization.id });
    assert.equal((await as(own.body.access_token)('GET', '/v1/recipients')).status, 200);
    const off = await as(owner)('PATCH', '/v1/orgs/ws_default', { require_totp: false });
    assert.equal(off.body.require_totp, false);
  });
});
