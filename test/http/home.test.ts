// GET /: a page for a person, on every node and store, linking the API reference.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHeraldOn } from '../helpers/herald.ts';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`GET / (${store})`, () => {
    it('answers a small HTML page linking /docs and /openapi.json, without a key', async () => {
      const h = await startHeraldOn(store);
      try {
        const res = await fetch(`${h.url}/`, { headers: { accept: 'text/html' } });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
        assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
        const html = await res.text();
        assert.match(html, /<a href="\/docs">/);
        assert.match(html, /<a href="\/openapi.json">/);
        assert.match(html, /npx herald keys create/);
        const head = await fetch(`${h.url}/`, { method: 'HEAD' });
        assert.equal(head.status, 200);
        const post = await h.api('POST', '/', { topic: 'x' });
        assert.equal(post.status, 405, 'POST / is not served (yet)');
        assert.equal(post.body.code, 'method_not_allowed');
      } finally {
        await h.stop();
      }
    });
  });
}
