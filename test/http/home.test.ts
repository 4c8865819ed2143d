// GET /: the dashboard's page (or, without a build, the plain page of http/home.ts), on every store,
// useful to a person with or without JavaScript: it links /docs and /openapi.json and says how to
// get a key. Its assets have hashed names and are cached for good; index.html is never cached.
// The page's policy allows no inline script and no framing; the API still answers JSON around it.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHeraldOn } from '../helpers/herald.ts';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`GET / (${store})`, () => {
    it('answers the dashboard page linking /docs and /openapi.json, with its assets, without a key', async () => {
      const h = await startHeraldOn(store);
      try {
        const res = await fetch(`${h.url}/`, { headers: { accept: 'text/html' } });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
        assert.equal(res.headers.get('cache-control'), 'no-cache');
        const csp = res.headers.get('content-security-policy') ?? '';
        assert.match(csp, /default-src 'none'/);
        assert.match(csp, /frame-ancestors 'none'/);
        assert.doesNotMatch(csp, /script-src[^;]*unsafe-inline/);
        assert.equal(res.headers.get('x-frame-options'), 'DENY');
        const html = await res.text();
        assert.match(html, /<a href="\/docs">/);
        assert.match(html, /<a href="\/openapi.json">/);
        assert.match(html, /npx herald keys create/);
        assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');

        // npm test builds the dashboard first (scripts/ensure-deps.js), so the app is there.
        const scripts = [...html.matchAll(/<script type="module" crossorigin src="\.\/assets\/([^"]+\.js)"/g)].map((m) => m[1]!);
        assert.equal(scripts.length, 1, 'the built app is served');
        const js = await fetch(`${h.url}/assets/${scripts[0]}`);
        assert.equal(js.status, 200);
        assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
        assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
        assert.match(scripts[0]!, /-[A-Za-z0-9_-]{8}\.js$/, 'a content-hashed name');
        const missing = await fetch(`${h.url}/assets/nope-12345678.js`);
        assert.equal(missing.status, 404);
        assert.equal(((await missing.json()) as { code: string }).code, 'not_found');

        const head = await fetch(`${h.url}/`, { method: 'HEAD' });
        assert.equal(head.status, 200);
        const post = await h.api('POST', '/', { topic: 'x' });
        assert.equal(post.status, 405, 'POST / is not served (yet)');
        assert.equal(post.body.code, 'method_not_allowed');
        const api = await h.api('GET', '/v1/nope');
        assert.equal(api.status, 404);
        assert.equal(api.body.code, 'not_found', 'the API still answers problems in JSON');
      } finally {
        await h.stop();
      }
    });
  });
}
