// Broker subscriptions (src/subscriptions) on both stores: create, list, get, delete; validation of
// the glob, the filter (422 naming the path and operator), the notify target and the forward URL;
// realtime only to a room; admin scope; the forward's reserved recipient is not
// a recipient; audit entries.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, startHeraldOn, type TestHerald } from '../helpers/herald.ts';

const SECRET = 'whsec_' + Buffer.from('subscriptions-test-secret-0123456789').toString('base64');

describeOnStores('subscriptions CRUD', (store) => {
  let h: TestHerald;
  before(async () => (h = await startHeraldOn(store)));
  after(() => h?.stop());

  it('creates a forward (secret generated, shown once), lists, gets and deletes it', async () => {
    const created = await h.api('POST', '/v1/subscriptions', {
      path_pattern: '/github/acme/*',
      filter: { 'headers.x-github-event': 'pull_request', 'payload.action': { $in: ['opened', 'reopened'] } },
      action: { forward: { url: 'https://example.com/hook' } },
    });
    assert.equal(created.status, 201, created.text);
    const sub = created.body.subscription;
    assert.match(sub.id, /^sub_/);
    assert.equal(sub.path_pattern, '/github/acme/*');
    assert.deepEqual(sub.filter, { 'headers.x-github-event': 'pull_request', 'payload.action': { $in: ['opened', 'reopened'] } });
    assert.equal(sub.action.forward.url, 'https://example.com/hook');
    assert.match(sub.action.forward.secret, /^whsec_/);
    const secret = sub.action.forward.secret as string;

    const got = await h.api('GET', `/v1/subscriptions/${sub.id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body.subscription.action, { forward: { url: 'https://example.com/hook' } });
    assert.ok(!got.text.includes(secret), 'the secret is shown only once');

    const notify = await h.api('POST', '/v1/subscriptions', { path_pattern: '/stripe/**', action: { notify: { topic: 'billing', template: 'payment', kind: 'transactional' } } });
    assert.equal(notify.status, 201, notify.text);
    assert.equal(notify.body.subscription.filter, null);

    const page1 = await h.api('GET', '/v1/subscriptions?limit=1');
    assert.equal(page1.status, 200);
    assert.deepEqual(page1.body.data.map((s: any) => s.id), [sub.id]);
    const page2 = await h.api('GET', `/v1/subscriptions?limit=1&cursor=${page1.body.next_cursor}`);
    assert.deepEqual(page2.body.data.map((s: any) => s.id), [notify.body.subscription.id]);
    assert.equal(page2.body.next_cursor, null);

    const recipients = await h.api('GET', '/v1/recipients');
    assert.ok(!recipients.body.data.some((r: any) => r.id.startsWith('_')), 'the forward address is not a recipient');

    const audit = await h.api('GET', '/v1/audit');
    assert.ok(audit.body.data.some((e: any) => e.action === 'subscription.create' && e.target === sub.id));
    assert.ok(!audit.text.includes(secret));

    assert.equal((await h.api('DELETE', `/v1/subscriptions/${sub.id}`)).status, 204);
    assert.equal((await h.api('GET', `/v1/subscriptions/${sub.id}`)).status, 404);
    assert.equal((await h.api('DELETE', `/v1/subscriptions/${sub.id}`)).status, 404);
    assert.equal((await h.api('DELETE', `/v1/subscriptions/${notify.body.subscription.id}`)).status, 204);
  });

  it('keeps a given forward secret', async () => {
    const r = await h.api('POST', '/v1/subscriptions', { path_pattern: '/x', action: { forward: { url: 'http://example.com/', secret: SECRET } } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.subscription.action.forward.secret, SECRET);
    await h.api('DELETE', `/v1/subscriptions/${r.body.subscription.id}`);
  });

  it('refuses a bad filter with 422 naming the path and operator', async () => {
    const r = await h.api('POST', '/v1/subscriptions', {
      path_pattern: '/github/**',
      filter: { $and: [{ 'payload.action': 'opened' }, { 'payload.number': { $gtx: 3 } }] },
      action: { forward: { url: 'https://example.com/' } },
    });
    assert.equal(r.status, 422, r.text);
    assert.equal(r.body.code, 'validation_failed');
    assert.equal(r.body.errors[0].path, 'body.filter.$and[1].payload.number.$gtx');
    assert.match(r.body.errors[0].message, /unknown operator \$gtx/);

    const re = await h.api('POST', '/v1/subscriptions', { path_pattern: '/a', filter: { 'payload.x': { $regex: '(a)\\1' } }, action: { forward: { url: 'https://example.com/' } } });
    assert.equal(re.status, 422);
    assert.equal(re.body.errors[0].path, 'body.filter.payload.x.$regex');
  });

  it('refuses bad globs, notify targets and URLs with 422', async () => {
    const cases: [unknown, string][] = [
      [{ path_pattern: 'github/*', action: { forward: { url: 'https://example.com/' } } }, 'body.path_pattern'],
      [{ path_pattern: '/a//b', action: { forward: { url: 'https://example.com/' } } }, 'body.path_pattern'],
      [{ path_pattern: '/a/b**', action: { forward: { url: 'https://example.com/' } } }, 'body.path_pattern'],
      [{ path_pattern: '/a', action: { forward: { url: 'ftp://example.com/' } } }, 'body.action.forward.url'],
      [{ path_pattern: '/a', action: { forward: { url: 'https://u:p@example.com/' } } }, 'body.action.forward.url'],
      [{ path_pattern: '/a', action: { forward: { url: 'https://example.com/', secret: 'nope' } } }, 'body.action.forward.secret'],
      [{ path_pattern: '/a', action: { notify: { template: 't' } } }, 'body.action.notify'],
      [{ path_pattern: '/a', action: { notify: { to: 'u1', topic: 'ops', template: 't' } } }, 'body.action.notify'],
    ];
    for (const [body, path] of cases) {
      const r = await h.api('POST', '/v1/subscriptions', body);
      assert.equal(r.status, 422, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.body.errors?.[0]?.path, path, JSON.stringify(body));
    }
    const schema = await h.api('POST', '/v1/subscriptions', { path_pattern: '/a', action: { email: {} } });
    assert.equal(schema.status, 422);
  });

  it('accepts a realtime action to a room, refuses another channel', async () => {
    const bad = await h.api('POST', '/v1/subscriptions', { path_pattern: '/a', action: { realtime: { channel: 'ops' } } });
    assert.equal(bad.status, 422, bad.text);
    const ok = await h.api('POST', '/v1/subscriptions', { path_pattern: '/a', action: { realtime: { channel: 'room:ops' } } });
    assert.equal(ok.status, 201, ok.text);
    assert.deepEqual(ok.body.subscription.action, { realtime: { channel: 'room:ops' } });
    assert.equal((await h.api('DELETE', `/v1/subscriptions/${ok.body.subscription.id}`)).status, 204);
  });

  it('needs the admin scope; another organization sees nothing', async () => {
    const key = await h.api('POST', '/v1/keys', { name: 'sender', scopes: ['send', 'read'] });
    assert.equal(key.status, 201, key.text);
    const send = (m: string, p: string, b?: unknown) => h.api(m, p, b, { authorization: `Bearer ${key.body.key}` });
    assert.equal((await send('GET', '/v1/subscriptions')).status, 403);
    assert.equal((await send('POST', '/v1/subscriptions', { path_pattern: '/a', action: { forward: { url: 'https://example.com/' } } })).status, 403);
    assert.equal((await h.api('GET', '/v1/subscriptions/sub_nope')).status, 404);
  });
});
