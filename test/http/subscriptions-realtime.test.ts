// The `realtime` subscription action end to end, on both stores: a GitHub event signed by
// @octokit/webhooks-methods, ingested at POST /hooks/…, arrives as a publication on a real
// WebSocket client of the gateway (GET /v1/realtime, a token from POST /v1/realtime/tokens granting
// the room) subscribed to the subscription's room; an event the filter refuses publishes nothing;
// a client whose token does not grant the room is refused it. On PostgreSQL + Redis the client is
// connected to a second node of the deployment, so the publication crosses nodes.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { postGithub } from '../helpers/hooks.ts';
import { connect, type RtClient } from '../realtime/ws-client.ts';

const PATH = '/github/acme/deploys';

describeOnStores('subscriptions: realtime action to a gateway client', (store) => {
  let h: TestHerald;
  let gateway: TestHerald;
  const clients: RtClient[] = [];

  before(async () => {
    h = await startHeraldOn(store);
    gateway = store === 'postgres' ? await startHeraldOn('postgres', {}, { join: h }) : h;
    assert.equal((await h.api('PUT', '/v1/sources/deploys', { path: PATH, provider: 'github', secrets: ['gh-secret-0123456789'] })).status, 201);
    const sub = await h.api('POST', '/v1/subscriptions', {
      path_pattern: '/github/acme/*',
      filter: { type: 'deployment_status', 'payload.deployment_status.state': { $in: ['success', 'failure'] } },
      action: { realtime: { channel: 'room:deploys' } },
    });
    assert.equal(sub.status, 201, sub.text);
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    if (gateway !== h) await gateway?.stop();
    await h?.stop();
  });

  const open = async (recipient: string, rooms?: string[]) => {
    const t = await h.api('POST', '/v1/realtime/tokens', { recipient, ...(rooms && { rooms }) });
    assert.equal(t.status, 201, t.text);
    const c = await connect(gateway.url, t.body.token);
    clients.push(c);
    await c.next((f) => f.type === 'welcome');
    return c;
  };

  it('an inbound event reaches a WebSocket client of the room; a refused one does not', async () => {
    const c = await open('ops-screen', ['deploys']);
    c.send({ type: 'subscribe', channel: 'room:deploys' });
    await c.next((f) => f.type === 'subscribed', 10_000, 'subscribed');
    const outsider = await open('visitor');
    outsider.send({ type: 'subscribe', channel: 'room:deploys' });
    assert.equal((await outsider.next((f) => f.type === 'error', 10_000, 'the refusal')).code, 'forbidden');

    const deployment = (state: string, sha: string) => ({ deployment_status: { state }, deployment: { sha, environment: 'production' }, sender: { login: 'octocat' } });
    const pending = await postGithub(h.url, PATH, deployment('pending', 'aaa111'), { event: 'deployment_status' });
    assert.equal(pending.status, 202, pending.text);
    const done = await postGithub(h.url, PATH, deployment('success', 'bbb222'), { event: 'deployment_status' });
    assert.equal(done.status, 202, done.text);

    const pub = await c.next((f) => f.type === 'publication', 30_000, 'the publication of the event');
    assert.equal(pub.channel, 'room:deploys');
    assert.equal(pub.data.type, 'inbound.event');
    assert.equal(pub.data.run, 'event');
    assert.equal(pub.data.event.id, done.body.id);
    assert.equal(pub.data.event.path, PATH);
    assert.equal(pub.data.event.type, 'deployment_status');
    assert.equal(pub.data.event.source, 'deploys');
    assert.deepEqual(pub.data.event.payload, deployment('success', 'bbb222'));
    assert.equal(pub.data.event.headers['x-github-event'], 'deployment_status');
    assert.equal(pub.data.event.headers['x-hub-signature-256'], undefined, 'no credentials in the published headers');

    // The refused event's job is older than the published one's, so it was claimed first; a
    // margin past the publication covers a second node running it concurrently.
    const runs = await waitFor(async () => {
      const got = await h.api('GET', `/v1/events/${done.body.id}/runs`);
      return got.body.data.length === 1 ? got.body.data : undefined;
    }, 30_000, 'the run of the published event');
    assert.equal(runs[0].outcome, 'published');
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual((await h.api('GET', `/v1/events/${pending.body.id}/runs`)).body.data, []);
    assert.deepEqual(c.frames.filter((f) => f.type === 'publication').map((f) => f.data.event.id), [done.body.id]);
    assert.equal(outsider.frames.filter((f) => f.type === 'publication').length, 0);
  });
});
