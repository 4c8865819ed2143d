// Invitations on both stores, with a real SMTP server reading the emailed links: an admin invites
// (owners only by an owner), lists and revokes; the link registers a new user (HERALD_SIGNUP=invite)
// or adds a signed-in user of the invited address; it works once, not after revocation or for
// another address; the token is stored hashed.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describeOnStores, request, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startSmtp, type SmtpSink } from '../helpers/smtp.ts';
import { mailContent } from '../helpers/mime.ts';

const OWNER = { email: 'owner@example.com', password: 'correct horse battery staple' };
const PASSWORD = 'another long passphrase';

/** The invitation token of the newest email to `to` (waits for it). */
async function invitationTo(smtp: SmtpSink, to: string, after = 0): Promise<{ token: string; subject: string; text: string }> {
  const mail = await waitFor(() => smtp.messages.slice(after).find((m) => m.to.some((t) => t.toLowerCase() === to.toLowerCase())), 15_000, `an email to ${to}`);
  const { subject, text } = mailContent(mail.raw);
  const token = /\bhi_[A-Za-z0-9_-]{43}\b/.exec(text)?.[0];
  assert.ok(token, text);
  return { token, subject, text };
}

describeOnStores('invitations', (store) => {
  let h: TestHerald;
  let smtp: SmtpSink;
  let owner: string;
  const as = (token: string | undefined) => (method: string, path: string, body?: unknown) => request(h.url, token, method, path, body);
  const login = async (email: string, password: string) => {
    const r = await request(h.url, undefined, 'POST', '/v1/auth/login', { email, password });
    assert.equal(r.status, 200, r.text);
    return r.body.access_token as string;
  };

  before(async () => {
    smtp = await startSmtp();
    h = await startHeraldOn(store, { HERALD_SMTP_URL: smtp.url, HERALD_ADMIN_EMAIL: OWNER.email, HERALD_ADMIN_PASSWORD: OWNER.password, HERALD_PUBLIC_URL: 'https://herald.example.com' });
    owner = await login(OWNER.email, OWNER.password);
  });
  after(async () => {
    await h?.stop();
    await smtp?.close();
  });

  it('without an invitation nobody registers; the emailed link registers the invited address once, as a member with the role', async () => {
    const plain = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'new@example.com', password: PASSWORD, name: 'New' });
    assert.equal(plain.status, 403);
    assert.equal(plain.body.code, 'invitation_required');
    const n = smtp.messages.length;
    const made = await as(owner)('POST', '/v1/orgs/ws_default/invitations', { email: 'New@Example.com', role: 'member' });
    assert.equal(made.status, 201, made.text);
    assert.equal(made.body.status, 'pending');
    assert.equal(made.body.role, 'member');
    const days = (Date.parse(made.body.expires_at) - Date.parse(made.body.created_at)) / 86_400_000;
    assert.equal(days, 7);
    const mail = await invitationTo(smtp, 'New@Example.com', n);
    assert.match(mail.subject, /invited/);
    assert.ok(mail.text.includes(`https://herald.example.com/#/invitation/${mail.token}`), mail.text);
    // Stored only as its hash.
    const row = await h.herald.services.store.db.selectFrom('invitations').selectAll().where('id', '=', made.body.id).executeTakeFirstOrThrow();
    assert.equal(row.hash, createHash('sha256').update(mail.token).digest('hex'));
    assert.ok(!JSON.stringify(row).includes(mail.token));
    // Registering under another address with the token is refused; the invited one works.
    const wrong = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'else@example.com', password: PASSWORD, name: 'Else', invitation: mail.token });
    assert.equal(wrong.status, 403, wrong.text);
    assert.equal(wrong.body.code, 'invitation_email_mismatch');
    const weak = await request(h.url, undefined, 'POST', `/v1/invitations/${mail.token}/accept`, { name: 'New', password: 'short' });
    assert.equal(weak.status, 422, weak.text);
    const reg = await request(h.url, undefined, 'POST', `/v1/invitations/${mail.token}/accept`, { name: 'New', password: PASSWORD });
    assert.equal(reg.status, 201, reg.text);
    assert.deepEqual(reg.body.organization, { id: 'ws_default', name: reg.body.organization.name, role: 'member' });
    const again = await request(h.url, undefined, 'POST', `/v1/invitations/${mail.token}/accept`, { name: 'Copy', password: PASSWORD });
    assert.equal(again.status, 400, again.text);
    assert.equal(again.body.code, 'invalid_token');
    const token = await login('new@example.com', PASSWORD);
    const me = await as(token)('GET', '/v1/auth/me');
    assert.deepEqual(me.body.organization, { id: 'ws_default', role: 'member' });
    assert.equal((await as(token)('GET', '/v1/recipients')).status, 200);
    const list = await as(owner)('GET', '/v1/orgs/ws_default/invitations');
    const listed = list.body.data.find((i: { id: string }) => i.id === made.body.id);
    assert.equal(listed.status, 'accepted');
    assert.equal(listed.accepted_by, reg.body.user.id);
    const audit = await h.api('GET', `/v1/audit?target=${made.body.id}`);
    assert.deepEqual(audit.body.data.map((e: { action: string }) => e.action), ['invitation.accept', 'invitation.create']);
  });

  it('a signed-in user of the invited address joins another organization; another user cannot use the link; register with the token works too', async () => {
    const other = await as(owner)('POST', '/v1/orgs', { name: 'Second' });
    const org = other.body.id;
    // A user in the default organization, made through an invitation as well.
    let n = smtp.messages.length;
    await as(owner)('POST', '/v1/orgs/ws_default/invitations', { email: 'joiner@example.com', role: 'viewer' });
    const first = await invitationTo(smtp, 'joiner@example.com', n);
    const reg = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: 'joiner@example.com', password: PASSWORD, name: 'Joiner', invitation: first.token });
    assert.equal(reg.status, 201, reg.text);
    assert.equal(reg.body.organization.role, 'viewer');
    const joiner = await login('joiner@example.com', PASSWORD);
    n = smtp.messages.length;
    assert.equal((await as(owner)('POST', `/v1/orgs/${org}/invitations`, { email: 'joiner@example.com', role: 'admin' })).status, 201);
    const second = await invitationTo(smtp, 'joiner@example.com', n);
    const newUser = await login('new@example.com', PASSWORD);
    const stranger = await as(newUser)('POST', `/v1/invitations/${second.token}/accept`, {});
    assert.equal(stranger.status, 403, stranger.text);
    assert.equal(stranger.body.code, 'invitation_email_mismatch');
    const taken = await request(h.url, undefined, 'POST', `/v1/invitations/${second.token}/accept`, { name: 'J', password: PASSWORD });
    assert.equal(taken.status, 409, 'the address has a user: sign in instead');
    assert.equal(taken.body.code, 'email_taken');
    const ok = await as(joiner)('POST', `/v1/invitations/${second.token}/accept`, {});
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body.organization, { id: org, name: 'Second', role: 'admin' });
    const orgs = await as(joiner)('GET', '/v1/orgs');
    assert.deepEqual(orgs.body.data.map((o: { id: string; role: string }) => [o.id, o.role]).sort(), [[org, 'admin'], ['ws_default', 'viewer']].sort());
  });

  it('admins invite below owner, owners any role; a viewer cannot invite; revoked and other organizations are refused', async () => {
    const n = smtp.messages.length;
    await as(owner)('POST', '/v1/orgs/ws_default/invitations', { email: 'adm@example.com', role: 'admin' });
    const adm = await invitationTo(smtp, 'adm@example.com', n);
    assert.equal((await request(h.url, undefined, 'POST', `/v1/invitations/${adm.token}/accept`, { name: 'Adm', password: PASSWORD })).status, 201);
    const admin = await login('adm@example.com', PASSWORD);
    const asOwner = await as(admin)('POST', '/v1/orgs/ws_default/invitations', { email: 'boss@example.com', role: 'owner' });
    assert.equal(asOwner.status, 403, asOwner.text);
    const pending = await as(admin)('POST', '/v1/orgs/ws_default/invitations', { email: 'later@example.com', role: 'viewer' });
    assert.equal(pending.status, 201, pending.text);
    const later = await invitationTo(smtp, 'later@example.com', n);
    const viewer = await login('joiner@example.com', PASSWORD);
    assert.equal((await as(viewer)('POST', '/v1/orgs/ws_default/invitations', { email: 'x@example.com', role: 'viewer' })).status, 403);
    assert.equal((await as(viewer)('GET', '/v1/orgs/ws_default/invitations')).status, 403);
    assert.equal((await as(viewer)('DELETE', `/v1/orgs/ws_default/invitations/${pending.body.id}`)).status, 403);
    // Another organization's user sees it as missing.
    const outsider = await request(h.url, undefined, 'POST', '/v1/orgs', {});
    assert.equal(outsider.status, 401);
    const second = (await as(admin)('GET', '/v1/orgs')).body.data;
    assert.equal(second.length, 1);
    const foreign = (await as(owner)('POST', '/v1/orgs', { name: 'Foreign' })).body.id;
    assert.equal((await as(admin)('GET', `/v1/orgs/${foreign}/invitations`)).status, 404);
    assert.equal((await as(admin)('POST', `/v1/orgs/${foreign}/invitations`, { email: 'y@example.com', role: 'viewer' })).status, 404);
    assert.equal((await as(admin)('DELETE', `/v1/orgs/${foreign}/invitations/${pending.body.id}`)).status, 404, 'not an invitation of that organization');
    assert.equal((await h.api('GET', '/v1/orgs/ws_default/invitations')).status, 403, 'API keys do not manage invitations');
    // Revoked: the link stops working.
    assert.equal((await as(admin)('DELETE', `/v1/orgs/ws_default/invitations/${pending.body.id}`)).status, 204);
    assert.equal((await as(admin)('DELETE', `/v1/orgs/ws_default/invitations/${pending.body.id}`)).status, 404);
    const revoked = await request(h.url, undefined, 'POST', `/v1/invitations/${later.token}/accept`, { name: 'L', password: PASSWORD });
    assert.equal(revoked.status, 400);
    assert.equal(revoked.body.code, 'invalid_token');
    assert.equal((await request(h.url, undefined, 'POST', '/v1/invitations/hi_nonsense/accept', { name: 'L', password: PASSWORD })).body.code, 'invalid_token');
    const missing = await request(h.url, undefined, 'POST', `/v1/invitations/${later.token}/accept`, {});
    assert.equal(missing.status, 422, 'neither signed in nor registering');
  });

  it('an expired invitation is refused', async () => {
    const n = smtp.messages.length;
    const made = await as(owner)('POST', '/v1/orgs/ws_default/invitations', { email: 'slow@example.com', role: 'viewer' });
    const mail = await invitationTo(smtp, 'slow@example.com', n);
    await h.herald.services.store.db.updateTable('invitations').set({ expires_at: Date.now() - 1 }).where('id', '=', made.body.id).execute();
    const r = await request(h.url, undefined, 'POST', `/v1/invitations/${mail.token}/accept`, { name: 'Slow', password: PASSWORD });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.code, 'invalid_token');
    const listed = (await as(owner)('GET', '/v1/orgs/ws_default/invitations')).body.data.find((i: { id: string }) => i.id === made.body.id);
    assert.equal(listed.status, 'expired');
  });
});

describeOnStores('invitations without an SMTP server', (store) => {
  let h: TestHerald;
  before(async () => (h = await startHeraldOn(store, { HERALD_ADMIN_EMAIL: OWNER.email, HERALD_ADMIN_PASSWORD: OWNER.password })));
  after(async () => h?.stop());

  it('are refused with email_not_configured and leave nothing behind', async () => {
    const token = (await request(h.url, undefined, 'POST', '/v1/auth/login', OWNER)).body.access_token;
    const r = await request(h.url, token, 'POST', '/v1/orgs/ws_default/invitations', { email: 'a@example.com', role: 'viewer' });
    assert.equal(r.status, 409, r.text);
    assert.equal(r.body.code, 'email_not_configured');
    assert.deepEqual((await request(h.url, token, 'GET', '/v1/orgs/ws_default/invitations')).body.data, []);
  });
});
