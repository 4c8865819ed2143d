// Every route of the OpenAPI document, with odd values in each path and query parameter (huge
// and non-finite numbers, dates out of range, SQL and path metacharacters, invalid percent
// escapes, long strings): the answer is never a server fault, on each store. SQLite in a temporary
// data dir, PostgreSQL with DATABASE_URL on a fresh schema; PostgreSQL refuses more (32-bit
// integers, NUL bytes), so what passes validation on one store must be storable on both.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request, startHeraldOn, type TestHerald } from '../helpers/herald.ts';

/** Raw (already percent-encoded where needed) values for a path segment or a query value. */
const ODD = [
  '0', '-1', '1.5', '1e308', '99999999999', '99999999999999999999', 'NaN', 'Infinity', 'true', 'null',
  '2026-13-45', '9999-12-31T23:59:59Z', '0001-01-01T00:00:00Z', '%2B275760-09-13T00:00:00Z', '1970-01-01',
  "x'%20OR%20'1'%3D'1", '%25', '%FF', '%C0%AF', '%F0%9F%98%80', 'a'.repeat(2000), '..', '%2F', '%5C', 'x,y', '%5B%5D',
  'ntf_01M81GZCW40X6E6J2V6P4AVE96', 'dlv_', 'ws_default', 'webhook', 'exhausted',
];

interface Operation {
  method: string;
  path: string;
  query: string[];
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`odd parameters on every route (${dialect})`, () => {
    let h: TestHerald;
    let operations: Operation[];

    before(async () => {
      h = await startHeraldOn(dialect);
      const spec = (await h.api('GET', '/openapi.json')).body as { paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>> };
      operations = Object.entries(spec.paths).flatMap(([path, ops]) =>
        Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name) })),
      );
    });
    after(async () => {
      await h?.stop();
    });

    it('never answers 5xx; every refusal is a problem', async (t) => {
      assert.ok(operations.length > 40, `the OpenAPI document lists the API (${operations.length} operations)`);
      const failures: string[] = [];
      let sent = 0;
      for (const op of operations) {
        const withBody = op.method === 'POST' || op.method === 'PUT' || op.method === 'PATCH';
        for (const v of ODD) {
          const path = op.path.replace(/\{\w+\}/g, v);
          // Every parameter odd at once, then each query parameter alone beside a plausible path.
          const urls = [op.query.length ? `${path}?${op.query.map((q) => `${q}=${v}`).join('&')}` : path];
          const plain = op.path.replace(/\{\w+\}/g, 'welcome');
          for (const q of op.query) urls.push(`${plain}?${q}=${v}`);
          for (const url of urls) {
            const r = await request(h.url, h.key, op.method, url, withBody ? {} : undefined);
            sent++;
            const problem = r.status < 400 || /^application\/problem\+json/.test(r.headers.get('content-type') ?? '');
            if (r.status >= 500 || !problem) failures.push(`${op.method} ${url.slice(0, 120)} -> ${r.status} ${r.text.slice(0, 160)}`);
          }
        }
      }
      t.diagnostic(`${sent} requests over ${operations.length} operations`);
      assert.deepEqual(failures, []);
      assert.equal((await h.api('GET', '/healthz/ready')).status, 200);
    });
  });
}
