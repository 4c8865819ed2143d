// The dashboard in a real browser (Debian's Chromium driven by playwright-core), on both stores,
// against a real Herald, a real SMTP server (invitation emails) and a local webhook receiver:
// sign in; send from the Send page and watch the delivery reach the receiver and turn `sent`;
// replay a dead letter from Dead letters and a bulk replay through its dry run; invite a viewer,
// who signs up through the emailed link and sees no admin actions; hostile titles, bodies and
// template sources stay text; axe-core finds no serious or critical violation on any page; no
// Content-Security-Policy violation anywhere. Screenshots of the main pages are taken on the SQLite
// run (see SHOTS). scripts/run-tests.ts installs /usr/bin/chromium when it is missing.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { describeOnStores, request, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { startSmtp, type SmtpSink } from '../helpers/smtp.ts';
import { mailContent } from '../helpers/mime.ts';

const CHROMIUM = '/usr/bin/chromium';
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const OWNER = { email: 'owner@example.com', password: 'correct horse battery staple' };
const VIEWER = { email: 'viewer@example.com', password: 'another long passphrase', name: 'Vera Viewer' };
// The screenshots of docs/dashboard.md are refreshed with HERALD_UPDATE_SCREENSHOTS=1; otherwise
// they go to a temporary directory, so a test run leaves the checkout as it was.
const SHOTS = process.env.HERALD_UPDATE_SCREENSHOTS === '1' ? new URL('../../docs/dashboard/', import.meta.url).pathname : mkdtempSync(join(tmpdir(), 'herald-dashboard-shots-'));
const XSS_TITLE = '<img src=x onerror="window.__xss=1">Hostile title';
const XSS_BODY = '<script>window.__xss=1</script><b>bold?</b>';
const XSS_TEMPLATE = '<svg onload="window.__xss=1"></svg>{{name}}';

let browser: Browser;
before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, chromiumSandbox: false, args: ['--no-proxy-server', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
});
after(async () => {
  await browser?.close();
});

/** Browser-side problems: console errors (CSP violations are reported there), page errors, failed requests. */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[134]/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (err) => problems.push(err.message));
  // ERR_ABORTED: a request cut short by leaving the page (a reload, a sign-out), not a failure.
  page.on('requestfailed', (r) => {
    if (r.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`${r.url()}: ${r.failure()?.errorText}`);
  });
  return problems;
}

/** axe-core's serious and critical violations on the page as it is now. */
async function axe(page: Page): Promise<string[]> {
  // page.evaluate runs outside the page's Content-Security-Policy, so axe needs no inline script.
  if (!(await page.evaluate<boolean>("'axe' in window"))) await page.evaluate(AXE);
  const result = await page.evaluate<{ id: string; impact: string; targets: string[] }[]>(
    `axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) })))`,
  );
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}): ${v.targets.join(', ')}`);
}

async function signIn(page: Page, base: string, who: { email: string; password: string }): Promise<void> {
  await page.goto(`${base}/`);
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).waitFor();
}

async function open(page: Page, link: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: link, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: link }).waitFor();
}

describeOnStores('the dashboard in Chromium', (store) => {
  let h: TestHerald;
  let smtp: SmtpSink;
  let receiver: Receiver;
  let ctx: BrowserContext;
  let page: Page;
  let problems: string[];
  let token: string;
  let failing = false;
  const api = (method: string, path: string, body?: unknown) => request(h.url, token, method, path, body);
  const shot = async (p: Page, name: string) => {
    if (store === 'sqlite') await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
  };

  before(async () => {
    smtp = await startSmtp();
    receiver = await startReceiver((r) => ({ status: failing && r.path.startsWith('/bob') ? 400 : 200, body: failing ? 'bad request: vendor says no' : 'ok' }));
    h = await startHeraldOn(store, { HERALD_SMTP_URL: smtp.url, HERALD_ADMIN_EMAIL: OWNER.email, HERALD_ADMIN_PASSWORD: OWNER.password });
    const login = await request(h.url, undefined, 'POST', '/v1/auth/login', OWNER);
    assert.equal(login.status, 200, login.text);
    token = login.body.access_token;
    for (const id of ['alice', 'bob']) {
      const r = await api('PUT', `/v1/recipients/${id}`, { name: id === 'alice' ? 'Alice' : 'Bob', webhook: { url: `${receiver.url}/${id}` } });
      assert.ok(r.status === 200 || r.status === 201, r.text);
    }
    ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await ctx.newPage();
    problems = watch(page);
  });
  after(async () => {
    await ctx?.close();
    await h?.stop();
    await receiver?.close();
    await smtp?.close();
  });

  it('serves the app with its policy, and signs in with email and password', async () => {
    const res = await page.goto(`${h.url}/`);
    assert.equal(res?.status(), 200);
    const headers = await res!.allHeaders();
    assert.match(headers['content-security-policy'] ?? '', /script-src 'self'(;|$)/);
    assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
    assert.equal(headers['cache-control'], 'no-cache');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.deepEqual(await axe(page), [], 'sign-in page');
    await shot(page, 'sign-in');
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Password').fill('wrong password entirely');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Wrong email or password' }).waitFor();
    await signIn(page, h.url, OWNER);
    const nav = page.getByRole('navigation', { name: 'Main' });
    for (const name of ['Overview', 'Notifications', 'Send', 'Recipients', 'Templates', 'Providers', 'Dead letters', 'Keys', 'Members', 'Audit log']) {
      await nav.getByRole('link', { name, exact: true }).waitFor();
    }
    const cookies = await ctx.cookies();
    assert.ok(cookies.find((c) => c.name === 'herald_access')?.httpOnly, 'the session is an HttpOnly cookie');
    assert.deepEqual(await page.evaluate(() => Object.keys(localStorage)), [], 'nothing in localStorage');
  });

  it('sends from the Send page; the delivery reaches the receiver and turns sent on its page', async () => {
    await open(page, 'Send');
    assert.deepEqual(await axe(page), [], 'send page');
    await page.getByLabel('Recipient', { exact: true }).fill('alice');
    await page.getByLabel('Title', { exact: true }).fill('Deploy finished');
    await page.getByLabel('Body', { exact: true }).fill('Version 2.4.1 is live.');
    await shot(page, 'send');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    const link = page.getByRole('status', { name: 'Sent' }).getByRole('link');
    await link.waitFor();
    const id = (await link.textContent())!;
    await link.click();
    await page.getByRole('heading', { level: 1, name: 'Deploy finished' }).waitFor();
    const got = await waitFor(() => receiver.received.find((r) => r.path === '/alice' && r.body.includes(id)), 20_000, 'the webhook at the receiver');
    assert.match(got.body, /Version 2\.4\.1 is live\./);
    // The page reads the notification again by itself until its deliveries settle.
    await page.locator('.delivery .badge', { hasText: /^sent$/ }).waitFor({ timeout: 20_000 });
    await page.getByRole('table', { name: 'Attempt log' }).getByText('200').first().waitFor();
    assert.deepEqual(await axe(page), [], 'notification page');
    await shot(page, 'notification');
  });

  it('replays a dead letter from Dead letters, then a bulk replay through its dry run', async () => {
    failing = true;
    const ids: string[] = [];
    for (const title of ['Invoice 1', 'Invoice 2', 'Invoice 3']) {
      const r = await api('POST', '/v1/notifications', { to: 'bob', title, body: 'due' });
      assert.equal(r.status, 202, r.text);
      ids.push(r.body.deliveries[0].id);
    }
    for (const d of ids) await waitFor(async () => (await api('GET', `/v1/dlq/${d}`)).status === 200, 20_000, `${d} in the DLQ`);
    failing = false;

    await open(page, 'Dead letters');
    const table = page.getByRole('table', { name: 'Dead letters' });
    await table.getByRole('row').filter({ hasText: ids[0] }).waitFor();
    assert.deepEqual(await axe(page), [], 'dead letters page');
    await shot(page, 'dead-letters');
    const before = receiver.received.filter((r) => r.path === '/bob').length;
    await table.getByRole('row').filter({ hasText: ids[0] }).getByRole('button', { name: 'Replay' }).click();
    await waitFor(() => receiver.received.filter((r) => r.path === '/bob').length > before, 20_000, 'the replayed delivery at the receiver');
    await waitFor(async () => (await api('GET', `/v1/dlq/${ids[0]}`)).status === 404, 20_000, 'the replayed delivery out of the DLQ');
    await table.getByRole('row').filter({ hasText: ids[0] }).waitFor({ state: 'detached' });

    await page.getByRole('button', { name: 'Replay all matching' }).click();
    const dry = page.getByRole('region', { name: 'Dry run' });
    await dry.getByText('2 deliveries match; nothing has changed yet.').waitFor();
    await dry.getByText(ids[1]!).waitFor();
    assert.equal((await api('GET', `/v1/dlq/${ids[1]}`)).status, 200, 'the dry run changed nothing');
    await shot(page, 'dead-letters-dry-run');
    await dry.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('region', { name: 'Bulk replay' }).getByText('Bulk replay completed: 2 of 2').waitFor({ timeout: 30_000 });
    for (const d of ids.slice(1)) await waitFor(async () => (await api('GET', `/v1/dlq/${d}`)).status === 404, 20_000, `${d} replayed`);
    await waitFor(() => receiver.received.filter((r) => r.path === '/bob').length >= before + 3, 20_000, 'the bulk-replayed deliveries at the receiver');
  });

  it('discards a dead letter with a reason, then a bulk discard through its dry run', async () => {
    failing = true;
    const ids: string[] = [];
    for (const title of ['Receipt 1', 'Receipt 2']) {
      const r = await api('POST', '/v1/notifications', { to: 'bob', title, body: 'x' });
      assert.equal(r.status, 202, r.text);
      ids.push(r.body.deliveries[0].id);
    }
    for (const d of ids) await waitFor(async () => (await api('GET', `/v1/dlq/${d}`)).status === 200, 20_000, `${d} in the DLQ`);
    failing = false;
    await open(page, 'Overview');
    await open(page, 'Dead letters');
    const row = page.getByRole('table', { name: 'Dead letters' }).getByRole('row').filter({ hasText: ids[0] });
    await row.getByRole('button', { name: 'Discard' }).click();
    await row.getByLabel('Discard reason').fill('customer closed the account');
    assert.deepEqual(await axe(page), [], 'dead letters with a discard form');
    await row.getByRole('button', { name: 'Confirm discard' }).click();
    await row.waitFor({ state: 'detached' });
    const one = await api('GET', `/v1/notifications/${(await api('GET', `/v1/notifications?recipient=bob&limit=2`)).body.data.find((n: any) => n.deliveries.some((d: any) => d.id === ids[0])).id}`);
    assert.equal(one.body.deliveries[0].status, 'discarded');

    await page.getByRole('button', { name: 'Discard all matching' }).click();
    await page.getByText('A discard needs a reason.').waitFor();
    await page.getByLabel('Reason', { exact: true }).fill('old invoices');
    await page.getByRole('button', { name: 'Discard all matching' }).click();
    const dry = page.getByRole('region', { name: 'Dry run of a bulk discard' });
    await dry.getByText('1 delivery matches; nothing has changed yet.').waitFor();
    await dry.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('region', { name: 'Bulk discard' }).getByText('Bulk discard completed: 1 of 1').waitFor({ timeout: 30_000 });
    await waitFor(async () => (await api('GET', `/v1/dlq/${ids[1]}`)).status === 404, 20_000, `${ids[1]} discarded`);
    const audit = await api('GET', '/v1/audit?action=dlq.discard');
    assert.ok(audit.body.data.some((a: any) => a.reason === 'customer closed the account'), audit.text);
  });

  it('hostile titles, bodies and template sources stay text', async () => {
    const sent = await api('POST', '/v1/notifications', { to: 'alice', title: XSS_TITLE, body: XSS_BODY, data: { html: XSS_BODY } });
    assert.equal(sent.status, 202, sent.text);
    const tpl = await api('PUT', '/v1/templates/hostile', { variants: [{ locale: 'en', title: XSS_TEMPLATE, body: XSS_TEMPLATE }] });
    assert.equal(tpl.status, 201, tpl.text);
    await open(page, 'Notifications');
    await page.getByRole('link', { name: XSS_TITLE }).click();
    await page.getByRole('heading', { level: 1, name: XSS_TITLE }).waitFor();
    await page.getByText(XSS_BODY, { exact: true }).waitFor();
    await open(page, 'Templates');
    await page.getByRole('button', { name: 'hostile' }).click();
    await page.getByText(XSS_TEMPLATE, { exact: true }).first().waitFor();
    assert.equal(await page.evaluate<unknown>('window.__xss'), undefined, 'no hostile markup ran');
    assert.equal(await page.locator('img[src="x"], svg[onload], b:text("bold?")').count(), 0, 'no hostile element exists');
  });

  it('every page of an admin passes axe-core, and the overview shows the counts', async () => {
    for (const name of ['Overview', 'Notifications', 'Recipients', 'Templates', 'Providers', 'Keys', 'Members', 'Audit log']) {
      await open(page, name);
      await page.waitForLoadState('networkidle');
      assert.deepEqual(await axe(page), [], `${name} page`);
    }
    await open(page, 'Overview');
    await page.locator('.tile', { hasText: 'notifications accepted' }).locator('.n', { hasText: /^[5-9]$/ }).waitFor({ timeout: 15_000 });
    await page.getByRole('figure').first().waitFor();
    await shot(page, 'overview');
    await open(page, 'Keys');
    await page.getByLabel('Key name').fill('ci');
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = await page.locator('.secret').textContent();
    assert.match(secret ?? '', /^hk_/);
    assert.equal((await request(h.url, secret!, 'GET', '/v1/notifications?limit=1')).status, 403, 'a send-scoped key works and cannot read');
    await page.getByRole('button', { name: 'Revoke ci' }).click();
    await page.getByRole('table', { name: 'Keys' }).getByText('revoked').waitFor();
    assert.equal((await request(h.url, secret!, 'POST', '/v1/notifications', { to: 'alice', title: 'x' })).status, 401, 'revoked');
  });

  it('an invited viewer signs up through the emailed link and sees no admin actions', async () => {
    await open(page, 'Members');
    await page.getByLabel('Invite email').fill(VIEWER.email);
    await page.getByLabel('Role', { exact: true }).selectOption('viewer');
    await page.getByRole('button', { name: 'Invite' }).click();
    await page.getByText(`Invited ${VIEWER.email} as viewer.`).waitFor();
    await shot(page, 'members');
    const mail = await waitFor(() => smtp.messages.find((m) => m.to.includes(VIEWER.email)), 15_000, 'the invitation email');
    const invitation = /\bhi_[A-Za-z0-9_-]{43}\b/.exec(mailContent(mail.raw).text)?.[0];
    assert.ok(invitation);

    const viewerCtx = await browser.newContext();
    try {
      const vp = await viewerCtx.newPage();
      const vproblems = watch(vp);
      await vp.goto(`${h.url}/#/invitation/${invitation}`);
      await vp.getByLabel('Name').fill(VIEWER.name);
      await vp.getByLabel('Choose a password').fill(VIEWER.password);
      assert.deepEqual(await axe(vp), [], 'invitation page');
      await vp.getByRole('button', { name: 'Accept invitation' }).click();
      await vp.getByRole('button', { name: 'Sign in' }).waitFor();
      await signIn(vp, h.url, VIEWER);
      const nav = vp.getByRole('navigation', { name: 'Main' });
      for (const name of ['Overview', 'Notifications', 'Recipients', 'Templates', 'Providers', 'Members']) await nav.getByRole('link', { name, exact: true }).waitFor();
      for (const name of ['Send', 'Dead letters', 'Keys', 'Audit log']) assert.equal(await nav.getByRole('link', { name, exact: true }).count(), 0, `no ${name} link for a viewer`);
      await open(vp, 'Members');
      await vp.getByRole('table', { name: 'Members' }).getByText(OWNER.email).waitFor();
      assert.equal(await vp.getByRole('button', { name: 'Invite' }).count(), 0, 'no invite form');
      assert.equal(await vp.getByRole('combobox', { name: /^Role of/ }).count(), 0, 'no role changes');
      await open(vp, 'Notifications');
      await vp.getByRole('link', { name: 'Deploy finished' }).click();
      await vp.getByRole('heading', { level: 1, name: 'Deploy finished' }).waitFor();
      assert.equal(await vp.getByRole('button', { name: /Cancel|Replay/ }).count(), 0, 'no actions on a notification');
      await vp.goto(`${h.url}/#/dead-letters`);
      await vp.getByText('Your role (viewer) cannot open this page.').waitFor();
      assert.deepEqual(await axe(vp), [], 'viewer pages');

      // Account: TOTP on (secret shown once, confirmed with a code of it, recovery codes shown once), password change.
      await open(vp, 'Account');
      await vp.getByRole('button', { name: 'Turn on TOTP' }).click();
      const secret = (await vp.locator('.secret').first().textContent())!;
      const { totp, base32Decode } = await import('../../src/domain/totp.ts');
      await vp.getByLabel('Code from the app').fill(totp(base32Decode(secret), Date.now()));
      assert.deepEqual(await axe(vp), [], 'account page, enrolling');
      await vp.getByRole('button', { name: 'Confirm' }).click();
      await vp.getByText('TOTP is on; 10 recovery codes left.').waitFor();
      assert.equal(await vp.getByRole('region', { name: 'Recovery codes' }).getByRole('listitem').count(), 10);
      await vp.getByLabel('Current password').fill(VIEWER.password);
      await vp.getByLabel('New password').fill('a brand new passphrase 42');
      await vp.getByRole('button', { name: 'Change password' }).click();
      await vp.getByText(/^Password changed; 0 other sessions ended\.$/).waitFor();
      const relogin = await request(h.url, undefined, 'POST', '/v1/auth/login', { email: VIEWER.email, password: 'a brand new passphrase 42' });
      assert.equal(relogin.body.code, 'totp_required', 'the new password is taken, and TOTP is asked for');
      assert.deepEqual(await axe(vp), [], 'account page');
      assert.deepEqual(vproblems, []);
    } finally {
      await viewerCtx.close();
    }
  });

  it('on a phone-sized screen the navigation folds behind Menu', async () => {
    await page.setViewportSize({ width: 390, height: 800 });
    try {
      const nav = page.getByRole('navigation', { name: 'Main' });
      await nav.waitFor({ state: 'hidden' });
      await page.getByRole('button', { name: 'Menu' }).click();
      await nav.getByRole('link', { name: 'Notifications', exact: true }).click();
      await page.getByRole('heading', { level: 1, name: 'Notifications' }).waitFor();
      await nav.waitFor({ state: 'hidden' });
      const overflow = await page.evaluate<boolean>('document.documentElement.scrollWidth > window.innerWidth + 1');
      assert.equal(overflow, false, 'nothing wider than the screen');
      assert.deepEqual(await axe(page), [], 'phone layout');
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });

  it('signs out, and no page raised a policy violation or an error', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await page.reload();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.deepEqual(problems, []);
  });
});
