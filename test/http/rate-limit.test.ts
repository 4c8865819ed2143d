// Per-API-key request limits through a real Herald (HERALD_KEY_RATE_LIMIT): the RateLimit-Policy
// and RateLimit fields (draft-ietf-httpapi-ratelimit-headers-11), 429 rate_limited with
// Retry-After, keys limited independently, unauthenticated requests not counted, no fields when
// unlimited, the setting's validation; and with REDIS_URL, two Herald instances on one database
// sharing one key's budget.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, describeConfig, loadConfig } from '../../src/config.ts';
import { request, startHerald, waitFor, type ApiResponse, type TestHerald } from '../helpers/herald.ts';
import { freshSchema, type TestSchema } from '../helpers/postgres.ts';
import { ensureRedis, TEST_REDIS_URL } from '../helpers/redis.ts';

/** The RateLimit field's r and t, or undefined when absent. */
function service(res: ApiResponse): { r: number; t: number } | undefined {
  const v = res.headers.get('ratelimit');
  if (v === null) return undefined;
  const m = /^"default";r=(\d+);t=(\d+)$/.exec(v);
  assert.ok(m, `RateLimit is a structured-field list item: ${v}`);
  return { r: Number(m[1]), t: Number(m[2]) };
}

describe('per-key request limits, in-process', () => {
  let h: TestHerald;
  before(async () => {
    h = await startHerald({ HERALD_KEY_RATE_LIMIT: '3/60s' });
  });
  after(() => h?.stop());

  it('advertises the policy, counts down, then answers 429 with Retry-After; keys are independent', async () => {
    const created = await h.api('POST', '/v1/keys', { name: 'other', scopes: ['read'] });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('ratelimit-policy'), '"default";q=3;w=60');
    assert.deepEqual(service(created), { r: 2, t: 20 }); // one token used: full again in 20 s

    const first = await h.api('GET', '/v1/keys');
    assert.equal(first.status, 200);
    assert.deepEqual(service(first), { r: 1, t: 40 });
    assert.deepEqual(service(await h.api('GET', '/v1/keys')), { r: 0, t: 60 });

    const refused = await h.api('GET', '/v1/keys');
    assert.equal(refused.status, 429);
    assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(refused.body.code, 'rate_limited');
    assert.equal(refused.body.type, 'urn:herald:problem:rate_limited');
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(retryAfter >= 19 && retryAfter <= 20, `Retry-After ${retryAfter}: the ~20 s until a token is back`);
    assert.equal(refused.headers.get('ratelimit-policy'), '"default";q=3;w=60');
    assert.deepEqual(service(refused), { r: 0, t: retryAfter });
    assert.equal((await h.api('GET', '/v1/keys')).status, 429, 'still refused: a refusal does not wait the bucket out');

    // Another key has its own budget.
    const other = await request(h.url, created.body.key, 'GET', '/v1/providers');
    assert.equal(other.status, 200);
    assert.deepEqual(service(other), { r: 2, t: 20 });
    // A request the route refuses still counted, and says so.
    const missing = await request(h.url, created.body.key, 'GET', '/v1/notifications/ntf_01J00000000000000000000000');
    assert.equal(missing.status, 404);
    assert.equal(service(missing)?.r, 1);
  });

  it('labels neither requests refused by authentication nor the unversioned routes', async () => {
    for (const key of [undefined, 'hk_not_a_key']) {
      const res = await request(h.url, key, 'GET', '/v1/keys');
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('ratelimit'), null);
    }
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${h.url}/healthz/live`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('ratelimit'), null);
    }
  });
});

describe('per-key request limits, unset', () => {
  it('sends no RateLimit fields and never 429s', async () => {
    const h = await startHerald();
    try {
      for (let i = 0; i < 5; i++) {
        const res = await h.api('GET', '/v1/keys');
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('ratelimit'), null);
        assert.equal(res.headers.get('ratelimit-policy'), null);
      }
    } finally {
      await h.stop();
    }
  });
});

describe('HERALD_KEY_RATE_LIMIT', () => {
  it('reads <requests>/<window> with a window of whole seconds, and shows it', () => {
    assert.deepEqual(loadConfig({ HERALD_KEY_RATE_LIMIT: '100/1s' }).keyRateLimit, { limit: 100, periodMs: 1000 });
    assert.deepEqual(loadConfig({ HERALD_KEY_RATE_LIMIT: ' 5000 / 1h ' }).keyRateLimit, { limit: 5000, periodMs: 3_600_000 });
    assert.equal(loadConfig({}).keyRateLimit, undefined);
    const shown = describeConfig(loadConfig({ HERALD_KEY_RATE_LIMIT: '100/1m' })).find((d) => d.variable === 'HERALD_KEY_RATE_LIMIT');
    assert.equal(shown?.value, '100/1m');
  });

  for (const bad of ['100', 'abc/1s', '0/1s', '100/0', '100/500ms', '100/1.5s', '100/2d', '2000000/1s', '-1/1s', '100/soon']) {
    it(`refuses "${bad}"`, () => {
      assert.throws(
        () => loadConfig({ HERALD_KEY_RATE_LIMIT: bad }),
        (err: unknown) => err instanceof ConfigError && err.variable === 'HERALD_KEY_RATE_LIMIT',
      );
    });
  }
});

describe('per-key request limits, shared through Redis', () => {
  let db: TestSchema;
  let a: TestHerald;
  let b: TestHerald;

  before(async () => {
    await ensureRedis();
    db = await freshSchema();
    a = await startHerald({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, HERALD_KEY_RATE_LIMIT: '6/600s' });
    b = await startHerald({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, HERALD_KEY_RATE_LIMIT: '6/600s', HERALD_ADMIN_KEY: a.key });
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  });

  it('two instances draw on one budget per key', async () => {
    // Until its limiter's connection is up, an instance lets requests through unlabelled (and
    // uncounted); the first labelled answer of each shows it is.
    const seen: number[] = [];
    for (const h of [a, b]) {
      const res = await waitFor(async () => {
        const r = await h.api('GET', '/v1/keys');
        assert.equal(r.status, 200);
        return service(r) ? r : undefined;
      }, 10_000, 'the rate limiter to reach Redis');
      seen.push(service(res)!.r);
      assert.equal(res.headers.get('ratelimit-policy'), '"default";q=6;w=600');
    }
    for (const h of [a, b, a, b]) seen.push(service(await h.api('GET', '/v1/keys'))!.r);
    assert.deepEqual(seen, [5, 4, 3, 2, 1, 0]);
    for (const h of [a, b]) {
      const refused = await h.api('GET', '/v1/keys');
      assert.equal(refused.status, 429);
      assert.equal(refused.body.code, 'rate_limited');
      assert.ok(Number(refused.headers.get('retry-after')) >= 99, 'a token comes back every 100 s');
    }
  });
});
