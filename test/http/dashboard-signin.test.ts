// The dashboard's other ways in, in Chromium, on both stores: the TOTP step of a password sign-in
// (with a recovery code), the button of a configured OpenID Connect provider (a real provider run
// locally by oauth2-mock-server) that comes back signed in, and the whole app behind a reverse proxy
// under a path prefix (HERALD_PUBLIC_URL=http://127.0.0.1:PORT/herald, the proxy strips /herald).
// The provider's sign-in runs on a second Herald behind a proxy without a prefix: the sign-in's
// herald_oauth cookie has the fixed path /v1/auth/oauth, which a browser does not send to
// /herald/v1/auth/oauth/…/callback (a limit of the accounts cookies under a prefix, docs/dashboard.md).

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Events, OAuth2Server, type MutableToken } from 'oauth2-mock-server';
import { chromium, type Browser, type Page } from 'playwright-core';
import { describeOnStores, request, startHeraldOn, type TestHerald } from '../helpers/herald.ts';

const CHROMIUM = '/usr/bin/chromium';
const OWNER = { email: 'owner@example.com', password: 'correct horse battery staple' };

/** A reverse proxy on its own port: requests under `prefix` go to `target` without it. */
async function startProxy(prefix: string): Promise<{ url: string; target: string; close(): Promise<void> }> {
  const self = { url: '', target: '', close: () => new Promise<void>((r) => server.close(() => r())) };
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (!path.startsWith(prefix + '/') && path !== prefix) {
      res.writeHead(404).end('outside the prefix');
      return;
    }
    const t = new URL(self.target);
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: path.slice(prefix.length) || '/', headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  self.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return self;
}

let browser: Browser;
let provider: OAuth2Server;
before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, chromiumSandbox: false, args: ['--no-proxy-server', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  provider = new OAuth2Server();
  await provider.issuer.keys.generate('RS256');
  await provider.start(0, '127.0.0.1');
  provider.service.on(Events.BeforeTokenSigning, (token: MutableToken) => {
    if ('aud' in token.payload) Object.assign(token.payload, { sub: 'sso-1', email: 'sso.user@example.com', email_verified: true, name: 'Sso User' });
  });
});
after(async () => {
  await browser?.close();
  await provider?.stop();
});

async function nav(page: Page): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).waitFor();
}

describeOnStores('dashboard sign-in: TOTP, OpenID Connect, a path prefix', (store) => {
  let h: TestHerald;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  before(async () => {
    proxy = await startProxy('/herald');
    h = await startHeraldOn(store, {
      HERALD_SIGNUP: 'open',
      HERALD_ADMIN_EMAIL: OWNER.email,
      HERALD_ADMIN_PASSWORD: OWNER.password,
      HERALD_PUBLIC_URL: `${proxy.url}/herald`,
    });
    proxy.target = h.url;
  });
  after(async () => {
    await h?.stop();
    await proxy?.close();
  });

  it('under the path prefix: the app loads, signs in with a password and reads the API', async () => {
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      const failed: string[] = [];
      page.on('response', (r) => {
        // Before signing in, GET v1/auth/me and the refresh it tries are 401 by design.
        if (r.status() >= 400 && !/\/v1\/auth\/(me|refresh)$/.test(r.url())) failed.push(`${r.status()} ${r.url()}`);
      });
      await page.goto(`${proxy.url}/herald/`);
      await page.getByLabel('Email').fill(OWNER.email);
      await page.getByLabel('Password').fill(OWNER.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await nav(page);
      await page.getByRole('link', { name: 'Notifications', exact: true }).click();
      await page.getByText('No notifications match.').waitFor();
      assert.ok(page.url().startsWith(`${proxy.url}/herald/#/notifications`), page.url());
      assert.deepEqual(failed, []);
    } finally {
      await ctx.close();
    }
  });

  it('asks for the TOTP code when the account has TOTP on, and takes a recovery code', async () => {
    const email = `totp-${store}@example.com`;
    const password = 'a long enough passphrase';
    assert.equal((await request(h.url, undefined, 'POST', '/v1/auth/register', { email, password, name: 'Tia' })).status, 201);
    const token = (await request(h.url, undefined, 'POST', '/v1/auth/login', { email, password })).body.access_token;
    const enrol = await request(h.url, token, 'POST', '/v1/auth/totp');
    assert.equal(enrol.status, 201, enrol.text);
    const { totp, base32Decode } = await import('../../src/domain/totp.ts');
    const confirmed = await request(h.url, token, 'POST', '/v1/auth/totp/confirm', { code: totp(base32Decode(enrol.body.secret), Date.now()) });
    assert.equal(confirmed.status, 200, confirmed.text);
    const recovery: string = confirmed.body.recovery_codes[0];

    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      await page.goto(`${proxy.url}/herald/`);
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password').fill(password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      const code = page.getByLabel('Authentication code');
      await code.waitFor();
      await code.fill('000000');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').waitFor();
      await code.fill(recovery);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await nav(page);
    } finally {
      await ctx.close();
    }
  });

  it('shows the configured provider and comes back from it signed in', async () => {
    const front = await startProxy('');
    const sso = await startHeraldOn(store, {
      HERALD_SIGNUP: 'open',
      HERALD_PUBLIC_URL: front.url,
      HERALD_OIDC_PROVIDERS: JSON.stringify([{ id: 'corp', name: 'Corp SSO', issuer: provider.issuer.url, client_id: 'herald', client_secret: 'corp-secret' }]),
    });
    front.target = sso.url;
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      await page.goto(`${front.url}/`);
      const button = page.getByRole('link', { name: 'Sign in with Corp SSO' });
      await button.waitFor();
      await button.click();
      await nav(page);
      assert.equal(await page.locator('.who').textContent(), 'Sso User');
    } finally {
      await ctx.close();
      await sso.stop();
      await front.close();
    }
  });
});
