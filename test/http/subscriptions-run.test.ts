// Subscriptions acting on inbound events, on both stores: a GitHub pull_request event (signed by
// @octokit/webhooks-methods) is forwarded as its original body, signed with Standard Webhooks and
// verified by the `standardwebhooks` package at a receiving server, and becomes a notification to
// a topic rendered from the payload; an event the filter refuses does nothing (checked after a
// later matching event has gone all the way through, so the refused one would have arrived
// first); a replay runs them again and is audited; runs are listed per event; an event committed
// but never announced to a subscription worker runs after a restart (the catch-up).

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { GH_SECRET, postGithub } from '../helpers/hooks.ts';
import { createHmac } from 'node:crypto';

const FWD_SECRET = 'whsec_' + Buffer.from('subscription-forward-secret-0123456789').toString('base64');
const ALICE_SECRET = 'whsec_' + Buffer.from('subscription-alice-secret-0123456789ab').toString('base64');
const PATH = '/github/acme/api';

function pr(number: number, o: { action?: string; base?: string } = {}) {
  return {
    action: o.action ?? 'opened',
    number,
    pull_request: { title: `Change ${number}`, base: { ref: o.base ?? 'main' }, labels: [{ name: 'api' }] },
    sender: { login: 'octocat' },
    repository: { full_name: 'acme/api' },
  };
}

describeOnStores('subscriptions run on inbound events', (store) => {
  let h: TestHerald;
  let rx: Receiver;
  const at = (path: string) => rx.received.filter((r) => r.path === path);

  before(async () => {
    rx = await startReceiver(() => ({ status: 200 }));
    h = await startHeraldOn(store);
    const src = await h.api('PUT', '/v1/sources/gh', { path: PATH, provider: 'github', secrets: [GH_SECRET] });
    assert.equal(src.status, 201, src.text);
    assert.equal((await h.api('PUT', '/v1/recipients/alice', { webhook: { url: rx.url + '/alice', secret: ALICE_SECRET } })).status, 201);
    assert.equal((await h.api('PUT', '/v1/topics/reviews', { name: 'Reviews' })).status, 201);
    assert.equal((await h.api('POST', '/v1/topics/reviews/members', { add: ['alice'] })).status, 200);
    const tpl = await h.api('PUT', '/v1/templates/pr-opened', { variants: [{ locale: 'en', title: 'PR #{{payload.number}} opened by {{payload.sender.login}}', body: '{{payload.pull_request.title}} into {{payload.pull_request.base.ref}}' }] });
    assert.equal(tpl.status, 201, tpl.text);
    const filter = { 'headers.x-github-event': 'pull_request', 'payload.action': { $in: ['opened', 'reopened'] }, 'payload.pull_request.base.ref': 'main' };
    const fwd = await h.api('POST', '/v1/subscriptions', { path_pattern: '/github/acme/*', filter, action: { forward: { url: rx.url + '/forward', secret: FWD_SECRET } } });
    assert.equal(fwd.status, 201, fwd.text);
    const notify = await h.api('POST', '/v1/subscriptions', { path_pattern: '/github/**', filter, action: { notify: { topic: 'reviews', template: 'pr-opened' } } });
    assert.equal(notify.status, 201, notify.text);
    const elsewhere = await h.api('POST', '/v1/subscriptions', { path_pattern: '/stripe/**', action: { forward: { url: rx.url + '/stripe-only' } } });
    assert.equal(elsewhere.status, 201, elsewhere.text);
  });
  after(async () => {
    await h?.stop();
    await rx?.close();
  });

  let eventId = '';

  it('forwards a pull_request event, signed with Standard Webhooks, and notifies the topic', async () => {
    const body = JSON.stringify(pr(42));
    const r = await postGithub(h.url, PATH, undefined, { raw: body });
    assert.equal(r.status, 202, r.text);
    eventId = r.body.id;

    const [fwd] = await waitFor(() => (at('/forward').length > 0 ? at('/forward') : undefined), 30_000, 'the forward');
    assert.equal(fwd!.body, body, 'the original body, byte for byte');
    assert.deepEqual(rx.verify(fwd!, FWD_SECRET), pr(42), 'standardwebhooks verifies the signature');
    assert.throws(() => rx.verify(fwd!, ALICE_SECRET), 'another secret does not verify');
    assert.equal(fwd!.headers['herald-event-id'], eventId);
    assert.equal(fwd!.headers['herald-event-type'], 'pull_request');
    assert.equal(fwd!.headers['herald-source-path'], PATH);
    assert.match(String(fwd!.headers['content-type']), /^application\/json/);

    const [note] = await waitFor(() => (at('/alice').length > 0 ? at('/alice') : undefined), 30_000, "the topic member's notification");
    const n = rx.verify(note!, ALICE_SECRET);
    assert.equal(n.type, 'notification');
    assert.equal(n.title, 'PR #42 opened by octocat');
    assert.equal(n.body, 'Change 42 into main');

    const runs = await waitFor(async () => {
      const got = await h.api('GET', `/v1/events/${eventId}/runs`);
      return got.body.data.length === 2 ? got.body.data : undefined;
    }, 30_000, 'both runs recorded');
    assert.deepEqual(runs.map((x: any) => x.outcome).sort(), ['forwarded', 'notified']);
    assert.ok(runs.every((x: any) => x.run === 'event'));
    assert.equal(at('/stripe-only').length, 0, 'a subscription on other paths does nothing');
  });

  it('forwards a body that is not UTF-8 byte for byte: the provider signature and the forward signature hold over its bytes', async () => {
    const raw = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe, 0xc3, 0x28, 0x80, 0x7f]);
    const sig = 'sha256=' + createHmac('sha256', GH_SECRET).update(raw).digest('hex');
    const sub = await h.api('POST', '/v1/subscriptions', { path_pattern: PATH, filter: { type: 'binary_blob' }, action: { forward: { url: rx.url + '/bytes', secret: FWD_SECRET } } });
    assert.equal(sub.status, 201, sub.text);
    const r = await fetch(`${h.url}/hooks${PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'x-hub-signature-256': sig, 'x-github-event': 'binary_blob', 'x-github-delivery': `bytes-${Date.now()}` },
      body: raw,
    });
    assert.equal(r.status, 202, await r.text());
    const [fwd] = await waitFor(() => (at('/bytes').length > 0 ? at('/bytes') : undefined), 30_000, 'the forward of the binary body');
    assert.deepEqual(fwd!.raw, raw, 'the bytes as received at ingest');
    assert.equal(fwd!.headers['content-type'], 'application/octet-stream');
    assert.equal(fwd!.headers['herald-body-encoding'], undefined);
    assert.equal('sha256=' + createHmac('sha256', GH_SECRET).update(fwd!.raw).digest('hex'), sig, "GitHub's signature of the original still verifies over the forwarded bytes");
    // Standard Webhooks signs `${id}.${timestamp}.` and the body's bytes (the `standardwebhooks`
    // package decodes a Buffer as UTF-8 first, so it cannot check a body that is not UTF-8).
    const key = Buffer.from(FWD_SECRET.slice('whsec_'.length), 'base64');
    const expected = createHmac('sha256', key).update(`${fwd!.headers['webhook-id']}.${fwd!.headers['webhook-timestamp']}.`).update(raw).digest('base64');
    assert.equal(fwd!.headers['webhook-signature'], `v1,${expected}`);
    assert.equal((await h.api('DELETE', `/v1/subscriptions/${sub.body.subscription.id}`)).status, 204);
  });

  it('does nothing with an event the filter refuses', async () => {
    const before = { forward: at('/forward').length, alice: at('/alice').length };
    const refused = await postGithub(h.url, PATH, pr(7, { base: 'dev' }));
    assert.equal(refused.status, 202, refused.text);
    const closed = await postGithub(h.url, PATH, pr(8, { action: 'closed' }));
    assert.equal(closed.status, 202, closed.text);
    const ping = await postGithub(h.url, PATH, { zen: 'hi' }, { event: 'ping' });
    assert.equal(ping.status, 202, ping.text);
    // A later matching event: once it has gone all the way through, the refused ones (enqueued
    // before it, claimed oldest first) would have arrived too.
    const marker = await postGithub(h.url, PATH, pr(9));
    assert.equal(marker.status, 202);
    await waitFor(() => at('/forward').some((r) => r.headers['herald-event-id'] === marker.body.id), 30_000, 'the marker forward');
    await waitFor(() => at('/alice').some((r) => JSON.parse(r.body).title === 'PR #9 opened by octocat'), 30_000, 'the marker notification');
    await new Promise((r) => setTimeout(r, 1000));
    const forwarded = at('/forward').map((r) => r.headers['herald-event-id']);
    for (const id of [refused.body.id, closed.body.id, ping.body.id]) {
      assert.ok(!forwarded.includes(id), `event ${id} was not forwarded`);
      assert.deepEqual((await h.api('GET', `/v1/events/${id}/runs`)).body.data, [], `event ${id} ran nothing`);
    }
    assert.equal(at('/forward').length, before.forward + 1);
    assert.equal(at('/alice').length, before.alice + 1);
  });

  it('notifies the recipient named at to_path in the payload', async () => {
    assert.equal((await h.api('PUT', '/v1/recipients/hubot', { webhook: { url: rx.url + '/hubot', secret: ALICE_SECRET } })).status, 201);
    const sub = await h.api('POST', '/v1/subscriptions', {
      path_pattern: PATH,
      filter: { 'payload.action': 'assigned' },
      action: { notify: { to_path: 'payload.assignee.login', template: 'pr-opened' } },
    });
    assert.equal(sub.status, 201, sub.text);
    const r = await postGithub(h.url, PATH, { ...pr(55, { action: 'assigned' }), assignee: { login: 'hubot' } });
    assert.equal(r.status, 202, r.text);
    const [note] = await waitFor(() => (at('/hubot').length > 0 ? at('/hubot') : undefined), 30_000, 'the notification to the assignee');
    assert.equal(rx.verify(note!, ALICE_SECRET).title, 'PR #55 opened by octocat');
    const unknown = await postGithub(h.url, PATH, { ...pr(56, { action: 'assigned' }), assignee: { login: 'nobody-here' } });
    const runs = await waitFor(async () => {
      const got = await h.api('GET', `/v1/events/${unknown.body.id}/runs`);
      return got.body.data.length === 1 ? got.body.data : undefined;
    }, 30_000, 'the run for an unknown assignee');
    assert.equal(runs[0].outcome, 'failed');
    assert.match(runs[0].detail, /unknown_recipients/);
    assert.equal((await h.api('DELETE', `/v1/subscriptions/${sub.body.subscription.id}`)).status, 204);
  });

  it('replays an event (admin, audited): its subscriptions run again', async () => {
    const before = at('/forward').filter((r) => r.headers['herald-event-id'] === eventId).length;
    const r = await h.api('POST', `/v1/events/${eventId}/replay`, { reason: 'receiver lost it' });
    assert.equal(r.status, 202, r.text);
    assert.match(r.body.run, /^run_/);
    await waitFor(() => at('/forward').filter((x) => x.headers['herald-event-id'] === eventId).length === before + 1, 30_000, 'the replayed forward');
    const runs = await waitFor(async () => {
      const got = await h.api('GET', `/v1/events/${eventId}/runs`);
      return got.body.data.filter((x: any) => x.run === r.body.run).length === 2 ? got.body.data : undefined;
    }, 30_000, 'the replay runs');
    assert.equal(runs.length, 4);
    const audit = await h.api('GET', '/v1/audit');
    assert.ok(audit.body.data.some((e: any) => e.action === 'event.replay' && e.target === eventId && e.reason === 'receiver lost it'));
    assert.equal((await h.api('POST', '/v1/events/evt_unknown/replay', {})).status, 404);
  });

  it('runs the subscriptions of an event committed but never announced to a subscription worker, after a restart', async () => {
    // As after a crash between the commit and the announcement: nothing here hears the event.
    await h.herald.services.subscriptions.stop();
    const r = await postGithub(h.url, PATH, pr(77));
    assert.equal(r.status, 202, r.text);
    const forwardOf = (id: string) => at('/forward').some((x) => x.headers['herald-event-id'] === id);
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal(forwardOf(r.body.id), false, 'not forwarded while no worker runs subscriptions');
    h = await h.restart();
    await waitFor(() => forwardOf(r.body.id), 30_000, 'the forward after the restart (catch-up)');
    await waitFor(() => at('/alice').some((x) => JSON.parse(x.body).title === 'PR #77 opened by octocat'), 30_000, 'the notification after the restart');
  });
});
