// Digests: notifications to one recipient with one digest key inside the window go out as one
// delivery when it closes; no item is lost or sent twice, also across a SIGKILL mid-window.
// The feature suite runs on both stores (on PostgreSQL every digest send once answered 500); the
// crash test runs on SQLite, whose single-process recovery is what it exercises.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startHeraldOn, tempDir, waitFor, type TestHerald } from '../helpers/herald.ts';
import { spawnHerald } from '../helpers/process.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';

for (const store of ['sqlite', 'postgres'] as const) {
describe(`digests (${store})`, () => {
  let h: TestHerald;
  let rx: Receiver;
  before(async () => {
    rx = await startReceiver();
    h = await startHeraldOn(store);
    await h.api('PUT', '/v1/recipients/dee', { webhook: { url: `${rx.url}/dee` } });
    await h.api('PUT', '/v1/recipients/eve', { webhook: { url: `${rx.url}/eve` } });
  });
  after(async () => {
    await h.stop();
    await rx.close();
  });

  const payloads = (path: string) => rx.received.filter((r) => r.path === path).map((r) => JSON.parse(r.body));

  it('three notifications in the window: one delivery carrying all three, the others marked digested', async () => {
    const digest = { key: 'builds', window: '1s' };
    const first = await h.api('POST', '/v1/notifications', { to: 'dee', title: 'Build 1', body: 'green', digest });
    assert.equal(first.status, 202, first.text);
    const carrier = first.body.deliveries[0];
    assert.deepEqual([carrier.status, carrier.reason], ['scheduled', 'digest']);
    const more = [];
    for (const n of [2, 3]) more.push(await h.api('POST', '/v1/notifications', { to: 'dee', title: `Build ${n}`, body: n === 3 ? 'red' : 'green', digest }));
    for (const m of more) assert.deepEqual([m.body.deliveries[0].status, m.body.deliveries[0].reason], ['digested', `digest:${carrier.id}`]);
    // Another recipient has its own digest.
    const other = await h.api('POST', '/v1/notifications', { to: 'eve', title: 'Build 1', digest });
    assert.equal(other.body.deliveries[0].status, 'scheduled');

    await waitFor(() => payloads('/dee').length > 0, 10_000, 'the digest');
    await new Promise((r) => setTimeout(r, 300));
    const got = payloads('/dee');
    assert.equal(got.length, 1, 'one delivery');
    assert.equal(got[0].title, '3 notifications');
    assert.equal(got[0].body, '• Build 1: green\n• Build 2: green\n• Build 3: red');
    for (const id of [first.body.id, ...more.map((m) => m.body.id)]) {
      await waitFor(async () => (await h.api('GET', `/v1/notifications/${id}`)).body.status === 'sent', 5000, 'notification sent');
    }
    await waitFor(() => payloads('/eve').length === 1, 5000, "eve's own digest");
    assert.equal(payloads('/eve')[0].title, 'Build 1', 'a digest of one is that notification');
  });

  it('a notification after the window opens a new digest; a digest template renders count and items', async () => {
    assert.equal((await h.api('PUT', '/v1/templates/build-digest', { variants: [{ locale: 'en', title: '{{count}} builds', body: '{{#items}}{{title}};{{/items}}' }] })).status, 201);
    const digest = { key: 'tpl', window: '1s', template: 'build-digest' };
    for (const n of [1, 2]) await h.api('POST', '/v1/notifications', { to: 'eve', title: `B${n}`, digest });
    await waitFor(() => payloads('/eve').some((p) => p.title === '2 builds'), 10_000, 'the templated digest');
    assert.equal(payloads('/eve').find((p) => p.title === '2 builds').body, 'B1;B2;');
    const late = await h.api('POST', '/v1/notifications', { to: 'eve', title: 'B3', digest });
    assert.equal(late.body.deliveries[0].status, 'scheduled', 'the closed digest is not joined');
    await waitFor(() => payloads('/eve').some((p) => p.title === '1 builds'), 10_000, 'the next digest');
  });

  it('refuses a bad window and digests of topic sends', async () => {
    const bad = await h.api('POST', '/v1/notifications', { to: 'dee', title: 'x', digest: { key: 'k', window: '30d' } });
    assert.equal(bad.status, 422);
    assert.equal(bad.body.errors[0].path, 'body.digest.window');
  });
});
}

describe('digests under a crash', () => {
  it('SIGKILL mid-window: after a restart every item goes out exactly once', async () => {
    const rx = await startReceiver();
    const dataDir = tempDir('herald-digest-crash-');
    try {
      const first = await spawnHerald({ dataDir, env: { HERALD_LEASE_TIME: '10m' } });
      await first.api('PUT', '/v1/recipients/kim', { webhook: { url: `${rx.url}/kim` } });
      const digest = { key: 'alerts', window: '3s' };
      const titles: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await first.api('POST', '/v1/notifications', { to: 'kim', title: `alert ${i}`, digest });
        assert.equal(res.status, 202);
        titles.push(`alert ${i}`);
      }
      first.kill('SIGKILL');
      await first.exited();
      const second = await spawnHerald({ dataDir, key: first.key, env: { HERALD_LEASE_TIME: '10m' } });
      try {
        for (let i = 5; i < 8; i++) {
          const res = await second.api('POST', '/v1/notifications', { to: 'kim', title: `alert ${i}`, digest });
          assert.equal(res.status, 202);
          titles.push(`alert ${i}`);
        }
        const seen = () => rx.received.filter((r) => r.path === '/kim').flatMap((r) => {
          const p = JSON.parse(r.body);
          return p.title.endsWith('notifications') ? p.body.split('\n').map((l: string) => l.slice(2)) : [p.title];
        });
        await waitFor(() => seen().length >= titles.length, 20_000, 'every alert');
        await new Promise((r) => setTimeout(r, 500));
        const ids = rx.received.filter((r) => r.path === '/kim').map((r) => r.headers['webhook-id']);
        assert.equal(new Set(ids).size, ids.length, 'no digest delivered twice');
        assert.deepEqual([...seen()].sort(), [...titles].sort(), 'every item exactly once');
      } finally {
        second.kill('SIGTERM');
        await second.exited();
      }
    } finally {
      await rx.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
