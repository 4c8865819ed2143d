// <herald-inbox> in a real browser (Debian's Chromium via playwright-core), on both stores: the
// app's page and Herald at one origin, as behind one reverse proxy (a small one here, on
// 127.0.0.1: it answers /app.html and passes every other request and WebSocket upgrade to
// Herald; a page answered by the browser context itself would count as "public" and Chromium's
// local-network checks would block its WebSocket to loopback). The page loads /v1/realtime/inbox.js under a strict
// Content-Security-Policy (no inline script or style, no eval). A notification sent over the API
// to the `inbox` channel appears live with its badge, its HTML-looking title is shown as text,
// "Mark read" clears the badge (and the item is read in Herald), "Mark all read" clears two.
// scripts/run-tests.ts installs /usr/bin/chromium when it is missing.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { describeOnStores, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';

const CHROMIUM = '/usr/bin/chromium';
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'";

let browser: Browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: ['--no-proxy-server', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await browser?.close();
});

describeOnStores('<herald-inbox> in Chromium', (store) => {
  let h: TestHerald;
  let context: BrowserContext;
  let page: Page;
  let proxy: Server;
  const problems: string[] = [];

  before(async () => {
    h = await startHeraldOn(store);
    assert.equal((await h.api('PUT', '/v1/recipients/alice', { name: 'Alice' })).status, 201);
    const t = await h.api('POST', '/v1/realtime/tokens', { recipient: 'alice' });
    assert.equal(t.status, 201, t.text);
    const html = `<!doctype html><html><head><script src="/v1/realtime/inbox.js" defer></script></head>
<body><herald-inbox token="${t.body.token}"></herald-inbox></body></html>`;
    proxy = await sameOrigin(h.url, html);
    const origin = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
    context = await browser.newContext();
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
    });
    page.on('pageerror', (err) => problems.push(err.message));
    page.on('requestfailed', (r) => problems.push(`${r.url()}: ${r.failure()?.errorText}`));
    const res = await page.goto(`${origin}/app.html`, { waitUntil: 'load', timeout: 60_000 });
    assert.equal(res?.status(), 200);
  });
  after(async () => {
    await context?.close();
    proxy?.closeAllConnections();
    await new Promise((r) => proxy?.close(r));
    await h?.stop();
  });

  const badge = () => page.locator('herald-inbox .badge');
  const send = async (title: string) => {
    const r = await h.api('POST', '/v1/notifications', { to: 'alice', title, body: 'main is red', channels: ['inbox'] });
    assert.equal(r.status, 202, r.text);
    return r.body.id as string;
  };
  const unreadInHerald = async () => (await h.api('GET', '/v1/recipients/alice/inbox?status=unread')).body.data.length as number;

  it('shows a notification sent over the API live with its badge; Mark read clears the badge', async () => {
    await page.locator('herald-inbox[live]').waitFor({ timeout: 30_000 });
    assert.equal(await badge().isHidden(), true, 'no badge with nothing unread');

    const title = '<img src=x id=injected>Build failed';
    await send(title);
    await badge().waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal(await badge().textContent(), '1');

    await page.locator('herald-inbox .bell').click();
    const item = page.locator('herald-inbox li.item').first();
    await item.waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal(await item.locator('.title').textContent(), title, 'the title is text');
    assert.equal(await page.locator('herald-inbox img').count(), 0, 'no element was made from the content');
    assert.equal(await item.getAttribute('class'), 'item unread');

    await item.locator('button.read').click();
    await badge().waitFor({ state: 'hidden', timeout: 30_000 });
    // The badge follows the inbox.unread frame, the item its own answer: either may come first.
    await waitFor(async () => (await item.getAttribute('class')) === 'item', 30_000, 'the item shown as read');
    assert.equal(await unreadInHerald(), 0, 'read in Herald');
  });

  it('Mark all read clears a badge of two', async () => {
    await send('Deploy done');
    await send('Disk almost full');
    await waitFor(async () => (await badge().isVisible()) && (await badge().textContent()) === '2', 30_000, 'badge 2');
    await page.locator('herald-inbox button.all').click();
    await badge().waitFor({ state: 'hidden', timeout: 30_000 });
    assert.equal(await unreadInHerald(), 0);
    assert.equal(await page.locator('herald-inbox li.unread').count(), 0);
  });

  it('ran without Content-Security-Policy violations or script errors', () => {
    assert.deepEqual(problems, []);
  });
});

/** An HTTP server answering `/app.html` with `html` (under PAGE_CSP) and passing everything else, upgrades included, to `target`. */
async function sameOrigin(target: string, html: string): Promise<Server> {
  const t = new URL(target);
  const server = createServer((req, res) => {
    if (req.url === '/app.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': PAGE_CSP }).end(html);
      return;
    }
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('upgrade', (req, socket, head) => {
    const upstream = connect(Number(t.port), t.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`, ...Object.entries(req.headers).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}: ${x}`))];
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      upstream.write(head);
      upstream.pipe(socket).pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}
