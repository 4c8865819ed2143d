// Starting a sign-in with a provider is throttled per client address (OAUTH_START_THROTTLE), with
// the deployment's rate limiter (in-process on SQLite here, Redis on the PostgreSQL run): every
// start stores a pending state, so an address gets as many as the rule allows, then 429 with
// Retry-After. Starting one with an unknown provider is not counted.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, startHeraldOn, type TestHerald } from '../helpers/herald.ts';
import { OAUTH_START_THROTTLE } from '../../src/domain/login-throttle.ts';

describeOnStores('throttling the start of provider sign-ins', (store) => {
  let h: TestHerald;
  before(async () => {
    h = await startHeraldOn(store, {
      HERALD_PUBLIC_URL: 'http://herald.test',
      HERALD_OAUTH_GITHUB_CLIENT_ID: 'client',
      HERALD_OAUTH_GITHUB_CLIENT_SECRET: 'secret',
      HERALD_OAUTH_GITHUB_URL: 'http://127.0.0.1:9',
    });
  });
  after(async () => h?.stop());

  it(`allows ${OAUTH_START_THROTTLE.limit} starts per address, then 429 with Retry-After`, async () => {
    // Not followed: the redirect goes to the provider.
    const start = (provider: string) => fetch(`${h.url}/v1/auth/oauth/${provider}`, { redirect: 'manual' });
    for (let i = 0; i < 5; i++) assert.equal((await start('nowhere')).status, 404);
    for (let i = 0; i < OAUTH_START_THROTTLE.limit; i++) {
      const r = await start('github');
      assert.equal(r.status, 302, `start ${i + 1}: ${await r.text()}`);
    }
    const res = await start('github');
    const refused = { status: res.status, headers: res.headers, text: await res.text(), body: undefined as any };
    refused.body = JSON.parse(refused.text);
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.body.code, 'rate_limited');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1, `Retry-After: ${refused.headers.get('retry-after')}`);
    assert.equal(refused.headers.get('set-cookie'), null, 'a refused start stores no state');
    const states = await h.herald.services.store.db.selectFrom('oauth_states').select('state_hash').execute();
    assert.equal(states.length, OAUTH_START_THROTTLE.limit);
  });
});
