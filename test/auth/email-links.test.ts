// Email verification and password reset by emailed single-use links, through a real SMTP server,
// on both stores: the link works once and for an hour; a reset sets the password, ends every
// session and uses up the other reset links; asking for a reset answers the same for an address
// nobody has, and is limited per address.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describeOnStores, request, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startSmtp, type SmtpSink } from '../helpers/smtp.ts';
import { mailContent } from '../helpers/mime.ts';
import { RESET_LIMIT } from '../../src/auth/email-links.ts';

const PASSWORD = 'a long enough passphrase';

/** The link code (prefix `hv_` or `hp_`) of the first email to `to` after message `after`. */
async function linkTo(smtp: SmtpSink, to: string, prefix: 'hv_' | 'hp_', after: number): Promise<{ token: string; subject: string; text: string }> {
  const mail = await waitFor(() => smtp.messages.slice(after).find((m) => m.to.includes(to)), 15_000, `an email to ${to}`);
  const { subject, text } = mailContent(mail.raw);
  const token = new RegExp(`\\b${prefix}[A-Za-z0-9_-]{43}\\b`).exec(text)?.[0];
  assert.ok(token, text);
  return { token, subject, text };
}

describeOnStores('emailed links: email verification and password reset', (store) => {
  let h: TestHerald;
  let smtp: SmtpSink;
  const login = (email: string, password = PASSWORD) => request(h.url, undefined, 'POST', '/v1/auth/login', { email, password });
  const register = async (email: string) => {
    const r = await request(h.url, undefined, 'POST', '/v1/auth/register', { email, password: PASSWORD, name: email.split('@')[0] });
    assert.equal(r.status, 201, r.text);
    return { id: r.body.user.id as string, token: (await login(email)).body.access_token as string };
  };

  before(async () => {
    smtp = await startSmtp();
    h = await startHeraldOn(store, { HERALD_SMTP_URL: smtp.url, HERALD_SIGNUP: 'open', HERALD_PUBLIC_URL: 'https://herald.example.com' });
  });
  after(async () => {
    await h?.stop();
    await smtp?.close();
  });

  it('verifies the address once with the emailed link; the link is stored only hashed', async () => {
    const ann = await register('ann@example.com');
    assert.equal((await request(h.url, ann.token, 'GET', '/v1/auth/me')).body.user.email_verified, false);
    const n = smtp.messages.length;
    const sent = await request(h.url, ann.token, 'POST', '/v1/auth/verify-email');
    assert.equal(sent.status, 202, sent.text);
    const mail = await linkTo(smtp, 'ann@example.com', 'hv_', n);
    assert.ok(mail.text.includes(`https://herald.example.com/#/verify-email/${mail.token}`), mail.text);
    const rows = await h.herald.services.store.db.selectFrom('user_tokens').selectAll().where('user_id', '=', ann.id).execute();
    assert.deepEqual(rows.map((r) => [r.kind, r.hash]), [['verify_email', createHash('sha256').update(mail.token).digest('hex')]]);
    assert.ok(rows[0]!.expires_at - rows[0]!.created_at === 3_600_000, 'valid one hour');

    const ok = await request(h.url, undefined, 'POST', '/v1/auth/verify-email/confirm', { token: mail.token });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body, { user: ann.id, email: 'ann@example.com', email_verified: true });
    assert.equal((await request(h.url, ann.token, 'GET', '/v1/auth/me')).body.user.email_verified, true);
    const again = await request(h.url, undefined, 'POST', '/v1/auth/verify-email/confirm', { token: mail.token });
    assert.equal(again.status, 400);
    assert.equal(again.body.code, 'invalid_token');
    const twice = await request(h.url, ann.token, 'POST', '/v1/auth/verify-email');
    assert.equal(twice.status, 409, 'a verified address is not verified again');
    assert.equal((await h.api('POST', '/v1/auth/verify-email')).status, 403, 'an API key has no address');
    const audit = await request(h.url, ann.token, 'GET', `/v1/audit?action=auth.email_verified&target=${ann.id}`);
    assert.equal(audit.body.data.length, 1, audit.text);
  });

  it('a verification link is refused after its hour, and a reset code is not a verification code', async () => {
    const bob = await register('bob@example.com');
    const n = smtp.messages.length;
    assert.equal((await request(h.url, bob.token, 'POST', '/v1/auth/verify-email')).status, 202);
    const mail = await linkTo(smtp, 'bob@example.com', 'hv_', n);
    await h.herald.services.store.db.updateTable('user_tokens').set({ expires_at: Date.now() - 1 }).where('user_id', '=', bob.id).execute();
    const late = await request(h.url, undefined, 'POST', '/v1/auth/verify-email/confirm', { token: mail.token });
    assert.equal(late.status, 400, late.text);
    assert.equal((await request(h.url, bob.token, 'GET', '/v1/auth/me')).body.user.email_verified, false);
    // The same code at the reset route: another kind of link.
    const wrongKind = await request(h.url, undefined, 'POST', '/v1/auth/password-reset/confirm', { token: mail.token, password: 'another long passphrase' });
    assert.equal(wrongKind.status, 400);
  });

  it('a reset sets the password once, ends every session and the other reset links, and proves the address', async () => {
    const cat = await register('cat@example.com');
    const second = (await login('cat@example.com')).body;
    let n = smtp.messages.length;
    const asked = await request(h.url, undefined, 'POST', '/v1/auth/password-reset', { email: 'Cat@Example.com' });
    assert.equal(asked.status, 202, asked.text);
    const first = await linkTo(smtp, 'cat@example.com', 'hp_', n);
    assert.ok(first.text.includes(`https://herald.example.com/#/reset-password/${first.token}`), first.text);
    n = smtp.messages.length;
    assert.equal((await request(h.url, undefined, 'POST', '/v1/auth/password-reset', { email: 'cat@example.com' })).status, 202);
    const other = await linkTo(smtp, 'cat@example.com', 'hp_', n);

    const weak = await request(h.url, undefined, 'POST', '/v1/auth/password-reset/confirm', { token: first.token, password: 'short' });
    assert.equal(weak.status, 422);
    assert.equal(weak.body.code, 'weak_password', 'the policy is checked before the link is used up');
    const done = await request(h.url, undefined, 'POST', '/v1/auth/password-reset/confirm', { token: first.token, password: 'the new long passphrase' });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.sessions_ended, 2);
    assert.equal((await request(h.url, cat.token, 'GET', '/v1/auth/me')).status, 401, 'sessions from before the reset end');
    assert.equal((await request(h.url, undefined, 'POST', '/v1/auth/refresh', { refresh_token: second.refresh_token })).status, 401);
    assert.equal((await login('cat@example.com')).status, 401, 'the old password no longer works');
    const fresh = await login('cat@example.com', 'the new long passphrase');
    assert.equal(fresh.status, 200);
    assert.equal((await request(h.url, fresh.body.access_token, 'GET', '/v1/auth/me')).body.user.email_verified, true);
    for (const token of [first.token, other.token]) {
      const r = await request(h.url, undefined, 'POST', '/v1/auth/password-reset/confirm', { token, password: 'yet another passphrase' });
      assert.equal(r.status, 400, `a used link, and the other link of the same user: ${r.text}`);
    }
    const audit = await request(h.url, fresh.body.access_token, 'GET', `/v1/audit?action=auth.password_reset&target=${cat.id}`);
    assert.equal(audit.body.data.length, 1, audit.text);
  });

  it('asking for a reset answers the same for an address nobody has, sends nothing there, and is limited per address', async () => {
    const n = smtp.messages.length;
    const nobody = await request(h.url, undefined, 'POST', '/v1/auth/password-reset', { email: 'nobody@example.com' });
    assert.equal(nobody.status, 202);
    await register('dan@example.com');
    const base = smtp.messages.length;
    for (let i = 0; i < RESET_LIMIT + 2; i++) {
      const r = await request(h.url, undefined, 'POST', '/v1/auth/password-reset', { email: 'dan@example.com' });
      assert.equal(r.status, 202, 'the same answer beyond the limit');
      assert.equal(r.text, nobody.text, 'the same answer as for an address nobody has');
    }
    await waitFor(() => smtp.messages.slice(base).filter((m) => m.to.includes('dan@example.com')).length >= RESET_LIMIT, 15_000, 'the reset emails');
    // A message to nobody@ would have been sent before dan's; any beyond the limit would too.
    const marker = smtp.messages.length;
    await register('eve@example.com');
    assert.equal((await request(h.url, undefined, 'POST', '/v1/auth/password-reset', { email: 'eve@example.com' })).status, 202);
    await linkTo(smtp, 'eve@example.com', 'hp_', marker);
    assert.equal(smtp.messages.slice(n).filter((m) => m.to.includes('nobody@example.com')).length, 0);
    assert.equal(smtp.messages.filter((m) => m.to.includes('dan@example.com')).length, RESET_LIMIT);
  });
});

describeOnStores('emailed links without HERALD_SMTP_URL', (store) => {
  let h: TestHerald;
  before(async () => (h = await startHeraldOn(store, { HERALD_SIGNUP: 'open' })));
  after(async () => h?.stop());

  it('are refused with email_not_configured, the same for any address', async () => {
    for (const email of ['nobody@example.com', 'someone@example.com']) {
      const r = await request(h.url, undefined, 'POST', '/v1/auth/password-reset', { email });
      assert.equal(r.status, 409);
      assert.equal(r.body.code, 'email_not_configured');
    }
  });
});
