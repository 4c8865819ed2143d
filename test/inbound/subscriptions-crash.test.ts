// Subscriptions survive a SIGKILL, on each store: a real server ingests signed GitHub events with a
// forward and a notify subscription on their path, is killed while it is running their jobs
// (forwards and notifications partly sent), and is started again on the same data. Afterwards every
// event has been forwarded and notified, and both runs are recorded. A forward is a webhook
// delivery, so at least once: a copy sent again after the kill carries the same webhook-id (one
// delivery per event). The notify action is deduplicated per event: every event made exactly one
// notification to the recipient (its delivery may be resent under the same webhook-id, never a
// second notification).

import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describeOnStores, postgresRedisEnv, tempDir, waitFor } from '../helpers/herald.ts';
import { spawnHerald, type HeraldProcess } from '../helpers/process.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { GH_SECRET, postGithub } from '../helpers/hooks.ts';

const EVENTS = 240;
const FWD_SECRET = 'whsec_' + Buffer.from('crash-forward-secret-0123456789abcdef').toString('base64');
const BOB_SECRET = 'whsec_' + Buffer.from('crash-bob-secret-0123456789abcdef0123').toString('base64');
const PATH = '/github/acme/crash';

describeOnStores('crash: SIGKILL while subscriptions run', (store) => {
  const cleanup: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('every event is forwarded (same webhook-id on a resend) and notified once after a restart', async (t) => {
    // A receiver that answers after a short delay, so that work is in flight when the kill comes.
    const rx: Receiver = await startReceiver(() => ({ status: 200, delayMs: 15 }));
    cleanup.push(() => rx.close());
    const dataDir = tempDir('herald-subs-crash-');
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const pg = store === 'postgres' ? await postgresRedisEnv() : undefined;
    if (pg) cleanup.push(() => pg.db.drop());
    const env = { ...pg?.env };
    const first: HeraldProcess = await spawnHerald({ dataDir, env });
    cleanup.push(() => first.kill('SIGKILL'));

    assert.equal((await first.api('PUT', '/v1/sources/gh', { path: PATH, provider: 'github', secrets: [GH_SECRET] })).status, 201);
    assert.equal((await first.api('PUT', '/v1/recipients/bob', { webhook: { url: `${rx.url}/bob`, secret: BOB_SECRET } })).status, 201);
    assert.equal((await first.api('PUT', '/v1/templates/pushed', { variants: [{ locale: 'en', title: 'push {{payload.n}}', body: 'by {{payload.who}}' }] })).status, 201);
    const fwd = await first.api('POST', '/v1/subscriptions', { path_pattern: '/github/acme/*', action: { forward: { url: `${rx.url}/fwd`, secret: FWD_SECRET } } });
    assert.equal(fwd.status, 201, fwd.text);
    const notify = await first.api('POST', '/v1/subscriptions', { path_pattern: '/github/**', action: { notify: { to: 'bob', template: 'pushed' } } });
    assert.equal(notify.status, 201, notify.text);

    const events = new Map<string, number>(); // event id -> n
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < EVENTS) {
          const n = next++;
          const r = await postGithub(first.url, PATH, { n, who: 'octocat' }, { event: 'push', delivery: `subs-crash-${n}` });
          assert.equal(r.status, 202, r.text);
          events.set(r.body.id, n);
        }
      }),
    );
    const forwarded = () => rx.received.filter((r) => r.path === '/fwd');
    const notified = () => rx.received.filter((r) => r.path === '/bob');
    // Mid-run: some forwards out, not all of them.
    await waitFor(() => forwarded().length >= 10, 60_000, 'the first forwards');
    const atKill = { forwards: forwarded().length, notifications: notified().length };
    first.kill('SIGKILL');
    assert.equal((await first.exited(10_000)).signal, 'SIGKILL');
    t.diagnostic(`at the kill: ${atKill.forwards} forwards and ${atKill.notifications} notifications of ${EVENTS} events`);
    assert.ok(atKill.forwards < EVENTS || atKill.notifications < EVENTS, 'the kill came while subscriptions were still running');

    const second = await spawnHerald({ dataDir, key: first.key, env });
    cleanup.push(() => second.kill('SIGKILL'));
    // Jobs and deliveries the dead process held are taken again once their leases expire (a minute).
    const forwardIds = () => new Set(forwarded().map((r) => String(r.headers['herald-event-id'])));
    await waitFor(() => [...events.keys()].every((id) => forwardIds().has(id)), 240_000, 'every event forwarded');
    const titles = () => new Set(notified().map((r) => JSON.parse(r.body).title as string));
    await waitFor(() => [...events.values()].every((n) => titles().has(`push ${n}`)), 240_000, 'every event notified');

    for (const r of forwarded()) rx.verify(r, FWD_SECRET);
    const webhookIdsPerEvent = new Map<string, Set<string>>();
    for (const r of forwarded()) {
      const id = String(r.headers['herald-event-id']);
      webhookIdsPerEvent.set(id, (webhookIdsPerEvent.get(id) ?? new Set()).add(String(r.headers['webhook-id'])));
    }
    for (const [id, ids] of webhookIdsPerEvent) assert.equal(ids.size, 1, `event ${id}: one forward delivery (resends share its webhook-id)`);

    const notificationsPerEvent = new Map<string, Set<string>>();
    for (const r of notified()) {
      const body = rx.verify(r, BOB_SECRET) as { id: string; title: string };
      notificationsPerEvent.set(body.title, (notificationsPerEvent.get(body.title) ?? new Set()).add(body.id));
    }
    for (const [title, ids] of notificationsPerEvent) assert.equal(ids.size, 1, `${title}: one notification`);
    assert.equal(notificationsPerEvent.size, EVENTS);

    for (const id of events.keys()) {
      const runs = await waitFor(async () => {
        const got = await second.api('GET', `/v1/events/${id}/runs`);
        return got.body.data.length >= 2 ? got.body.data : undefined;
      }, 60_000, `the runs of ${id}`);
      assert.deepEqual(runs.map((x: any) => x.outcome).sort(), ['forwarded', 'notified'], `event ${id}: each subscription recorded once`);
    }
    t.diagnostic(`received: ${forwarded().length} forwards, ${notified().length} notifications for ${EVENTS} events`);
    second.kill('SIGTERM');
    assert.equal((await second.exited(20_000)).code, 0);
  });
});
