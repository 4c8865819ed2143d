// The notify action is deduplicated per (subscription, event, run), on both stores: a job of an
// event's first run that runs again after acting but before recording (as after a crash between
// the send and the run's record) makes a second notification whose delivery is `deduplicated`, so
// the recipient is sent the event's notification once; a replay is a new run and notifies again.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { postGithub } from '../helpers/hooks.ts';

const BOB_SECRET = 'whsec_' + Buffer.from('notify-dedupe-bob-secret-0123456789abc').toString('base64');
const PATH = '/github/acme/dedupe';

describeOnStores('subscriptions: notify deduplicated per event', (store) => {
  let h: TestHerald;
  let rx: Receiver;
  const toBob = () => rx.received.filter((r) => r.path === '/bob');

  before(async () => {
    rx = await startReceiver(() => ({ status: 200 }));
    h = await startHeraldOn(store);
    assert.equal((await h.api('PUT', '/v1/sources/dedupe', { path: PATH, provider: 'github', secrets: ['gh-secret-0123456789'] })).status, 201);
    assert.equal((await h.api('PUT', '/v1/recipients/bob', { webhook: { url: rx.url + '/bob', secret: BOB_SECRET } })).status, 201);
    assert.equal((await h.api('PUT', '/v1/templates/pushed', { variants: [{ locale: 'en', title: 'Push {{payload.n}}', body: 'by {{payload.who}}' }] })).status, 201);
    const sub = await h.api('POST', '/v1/subscriptions', { path_pattern: PATH, action: { notify: { to: 'bob', template: 'pushed' } } });
    assert.equal(sub.status, 201, sub.text);
  });
  after(async () => {
    await h?.stop();
    await rx?.close();
  });

  /** The recorded runs of an event, once there are `n`. */
  const runsOf = (id: string, n: number) =>
    waitFor(async () => {
      const got = await h.api('GET', `/v1/events/${id}/runs`);
      return got.body.data.length === n ? (got.body.data as { run: string; outcome: string; detail: string }[]) : undefined;
    }, 30_000, `${n} run(s) of ${id}`);

  /** The notification's one delivery, once the notification is final. */
  const deliveryOf = (ntf: string) =>
    waitFor(async () => {
      const got = await h.api('GET', `/v1/notifications/${ntf}`);
      const d = got.body.deliveries?.[0];
      return got.status === 200 && d && !['pending', 'sending', 'failed', 'scheduled', 'throttled', 'standby'].includes(d.status) ? d : undefined;
    }, 30_000, `the delivery of ${ntf} to be final`);

  it('a first-run job that runs again after its send does not send twice; a replay does', async () => {
    const r = await postGithub(h.url, PATH, { n: 1, who: 'octocat' }, { event: 'push' });
    assert.equal(r.status, 202, r.text);
    const eventId: string = r.body.id;
    const [first] = await runsOf(eventId, 1);
    assert.equal(first!.outcome, 'notified');
    await waitFor(() => toBob().length === 1, 30_000, 'the notification to bob');
    assert.equal((await deliveryOf(first!.detail)).status, 'sent');

    // As after a crash between the send and its record: the run is not recorded, and the event's
    // first-run job is queued again.
    const db = h.herald.services.store.db;
    const row = await db.selectFrom('inbound_events').select('workspace_id').where('id', '=', eventId).executeTakeFirstOrThrow();
    await db.deleteFrom('subscription_runs').where('event_id', '=', eventId).execute();
    await h.herald.services.subscriptions.enqueue([{ id: eventId, workspaceId: row.workspace_id }]);
    const [again] = await runsOf(eventId, 1);
    assert.equal(again!.run, 'event');
    assert.notEqual(again!.detail, first!.detail, 'the job ran again and made a second notification');
    assert.equal((await deliveryOf(again!.detail)).status, 'deduplicated', 'the second notification of the same run is not sent');

    // A replay is a new run: it notifies again. Once its notification has arrived, a duplicate of
    // the retried job (accepted before it) would have arrived too.
    const replay = await h.api('POST', `/v1/events/${eventId}/replay`, { reason: 'test' });
    assert.equal(replay.status, 202, replay.text);
    const runs = await runsOf(eventId, 2);
    const replayed = runs.find((x) => x.run === replay.body.run)!;
    assert.equal((await deliveryOf(replayed.detail)).status, 'sent');
    await waitFor(() => toBob().length >= 2, 30_000, 'the replayed notification');
    assert.equal(toBob().length, 2, 'one notification for the first run (though its job ran twice), one for the replay');
    const ids = toBob().map((x) => rx.verify(x, BOB_SECRET).id);
    assert.deepEqual(ids, [first!.detail, replayed.detail]);
  });
});
