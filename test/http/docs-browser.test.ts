// /docs in a real browser (Debian's Chromium, driven by playwright-core) at an origin the browser
// treats as remote: http://herald.test:PORT, resolved to 127.0.0.1 by a host-resolver rule, so the
// traffic stays on this machine while the page is plain HTTP at a non-loopback name. A policy with
// `upgrade-insecure-requests` makes the browser fetch the Swagger UI's assets over HTTPS there, and
// the page stays blank. scripts/run-tests.ts installs /usr/bin/chromium when it is missing.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chromium, type Browser } from 'playwright-core';
import { startHeraldOn } from '../helpers/herald.ts';

const CHROMIUM = '/usr/bin/chromium';

let browser: Browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: [
      '--host-resolver-rules=MAP herald.test 127.0.0.1',
      '--no-proxy-server',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});
after(async () => {
  await browser?.close();
});

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`/docs in Chromium over plain HTTP at a non-loopback name (${store})`, () => {
    it('renders the Swagger UI with the API operations, without Content-Security-Policy violations', async () => {
      const h = await startHeraldOn(store);
      const context = await browser.newContext();
      try {
        const port = new URL(h.url).port;
        const page = await context.newPage();
        const problems: string[] = [];
        page.on('console', (m) => {
          if (m.type() === 'error') problems.push(m.text());
        });
        page.on('pageerror', (err) => problems.push(err.message));
        page.on('requestfailed', (r) => problems.push(`${r.url()}: ${r.failure()?.errorText}`));

        const res = await page.goto(`http://herald.test:${port}/docs`, { waitUntil: 'load', timeout: 60_000 });
        assert.equal(res?.status(), 200);
        const csp = (await res!.allHeaders())['content-security-policy'] ?? '';
        assert.match(csp, /script-src 'self'/, 'the page still carries a policy');
        assert.doesNotMatch(csp, /upgrade-insecure-requests/);

        await page.locator('.opblock').first().waitFor({ state: 'visible', timeout: 60_000 });
        // Past 128 operations swagger-ui renders them as they scroll into view: scroll until the
        // send operation (a tag well down the document) is there.
        const send = page.locator('.opblock-summary-path[data-path="/v1/notifications"]').first();
        for (let i = 0; i < 200 && (await send.count()) === 0; i++) {
          await page.mouse.wheel(0, 800);
          await new Promise((r) => setTimeout(r, 100));
        }
        await send.waitFor({ state: 'visible', timeout: 10_000 });
        assert.equal(await page.locator('.info .title').first().textContent().then((t) => t?.startsWith('Herald API')), true);
        assert.deepEqual(problems.filter((p) => !/validator\.swagger\.io/.test(p)), []);
      } finally {
        await context.close();
        await h.stop();
      }
    });
  });
}
