// The webhook broker over HTTP on both stores: sources (secrets sealed and masked, reserved and
// taken paths), ingest (signature verified on the raw bytes, 401 storing nothing, replays, JSON,
// form and raw bodies, the body limit, Slack's challenge, GitHub's ping), browsing events, pull
// consumers (leases, ack, nack, redelivery after the ack timeout, dead letters, lag, concurrent
// pullers) and the retention purge.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import Stripe from 'stripe';
import { describeOnStores, request, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { GH_SECRET, postGithub } from '../helpers/hooks.ts';

describeOnStores('webhook broker', (store) => {
  let h: TestHerald;
  before(async () => {
    h = await startHeraldOn(store, { HERALD_HOOK_BODY_LIMIT: '4096', HERALD_PUBLIC_URL: 'https://herald.example.com' });
    const r = await h.api('PUT', '/v1/sources/gh', { path: '/github/acme/api', provider: 'github', secrets: ['old-secret-abcdef', GH_SECRET] });
    assert.equal(r.status, 201, r.text);
  });
  after(() => h?.stop());

  it('sources: secrets sealed at rest and masked; reserved, taken and malformed paths refused; none needs unsigned', async () => {
    const r = await h.api('GET', '/v1/sources/gh');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.secrets, ['****cdef', '****6789']);
    assert.equal(r.body.hook_url, '/hooks/github/acme/api');
    assert.ok(!r.text.includes(GH_SECRET));
    const rows = await h.herald.services.store.db.selectFrom('inbound_sources').select('secrets').where('id', '=', 'gh').execute();
    assert.ok(rows[0]!.secrets!.startsWith('v1:') && !rows[0]!.secrets!.includes(GH_SECRET));
    for (const path of ['/v1/x', '/hooks/a', '/healthz', '/Docs/x', '/a/../b', 'no-slash', '/a b', '/metrics']) {
      const bad = await h.api('PUT', '/v1/sources/bad', { path, provider: 'github', secrets: ['x'] });
      assert.equal(bad.status, 422, `${path}: ${bad.text}`);
    }
    assert.equal((await h.api('PUT', '/v1/sources/other', { path: '/github/acme/api', provider: 'github', secrets: ['x'] })).status, 409);
    assert.equal((await h.api('PUT', '/v1/sources/open', { path: '/open', provider: 'none' })).status, 422);
    assert.equal((await h.api('PUT', '/v1/sources/open', { path: '/open', provider: 'none', unsigned: true })).status, 201);
    assert.equal((await h.api('PUT', '/v1/sources/nosecret', { path: '/nosecret', provider: 'stripe' })).status, 422);
    assert.equal((await h.api('PUT', '/v1/sources/h', { path: '/h', provider: 'hmac', secrets: ['k'] })).status, 422);
    const list = await h.api('GET', '/v1/sources?limit=1');
    assert.equal(list.body.data.length, 1);
    assert.ok(list.body.next_cursor);
    assert.equal((await h.api('DELETE', '/v1/sources/open')).status, 204);
    assert.equal((await h.api('GET', '/v1/sources/open')).status, 404);
  });

  it('ingest: 202 after commit, the event readable with headers minus credentials; a replay answers 200 with the original id', async () => {
    const payload = { action: 'opened', number: 42, pull_request: { title: 'Add broker' } };
    const r = await postGithub(h.url, '/github/acme/api', payload, { delivery: 'd-1' });
    assert.equal(r.status, 202, r.text);
    assert.match(r.body.id, /^evt_/);
    const e = await h.api('GET', `/v1/events/${r.body.id}`);
    assert.equal(e.status, 200);
    assert.equal(e.body.type, 'pull_request');
    assert.equal(e.body.delivery_id, 'd-1');
    assert.deepEqual(e.body.payload, payload);
    assert.equal(e.body.body, JSON.stringify(payload));
    assert.equal(e.body.headers['x-hub-signature-256'], undefined);
    assert.equal(e.body.headers['x-github-event'], 'pull_request');
    const again = await postGithub(h.url, '/github/acme/api', payload, { delivery: 'd-1' });
    assert.equal(again.status, 200);
    assert.equal(again.body.id, r.body.id);
    assert.equal(again.body.duplicate, true);
    const all = await h.api('GET', '/v1/events?source=gh&limit=200');
    assert.equal(all.body.data.filter((x: { delivery_id: string }) => x.delivery_id === 'd-1').length, 1);
  });

  it('ingest: a wrong secret, an altered or re-serialised body, or no signature is 401 storing nothing, counted by reason; an unknown path 404', async () => {
    const before = (await h.api('GET', '/v1/events?source=gh&limit=200')).body.data.length;
    assert.equal((await postGithub(h.url, '/github/acme/api', { a: 1 }, { secret: 'wrong' })).status, 401);
    const raw = '{"a": 1}';
    const sig = await octokitSign(GH_SECRET, raw);
    const altered = await request(h.url, undefined, 'POST', '/hooks/github/acme/api', '{"a": 2}', { 'content-type': 'application/json', 'x-hub-signature-256': sig, 'x-github-event': 'push' });
    assert.equal(altered.status, 401);
    assert.equal(altered.body.code, 'signature_failed');
    assert.equal(altered.body.reason, 'mismatch');
    const reserialised = await request(h.url, undefined, 'POST', '/hooks/github/acme/api', '{"a":1}', { 'content-type': 'application/json', 'x-hub-signature-256': sig, 'x-github-event': 'push' });
    assert.equal(reserialised.status, 401);
    const missing = await request(h.url, undefined, 'POST', '/hooks/github/acme/api', raw, { 'content-type': 'application/json' });
    assert.equal(missing.status, 401);
    assert.equal(missing.body.reason, 'missing');
    assert.match(missing.headers.get('content-type') ?? '', /problem\+json/);
    assert.equal((await h.api('GET', '/v1/events?source=gh&limit=200')).body.data.length, before);
    const unknown = await postGithub(h.url, '/github/acme/nope', { a: 1 });
    assert.equal(unknown.status, 404);
    const metrics = (await request(h.url, undefined, 'GET', '/metrics')).text;
    assert.match(metrics, /herald_inbound_rejected_total\{source="gh",reason="mismatch"\} [3-9]/);
    assert.match(metrics, /herald_inbound_rejected_total\{source="gh",reason="missing"\} 1/);
    assert.match(metrics, /herald_inbound_received_total\{source="gh"\} \d/);
    assert.match(metrics, /herald_inbound_stored_bytes\{workspace="[^"]+"\} [1-9]/);
  });

  it('ingest: a body over HERALD_HOOK_BODY_LIMIT is 413; GitHub ping is stored as type ping', async () => {
    const big = await postGithub(h.url, '/github/acme/api', { pad: 'x'.repeat(5000) });
    assert.equal(big.status, 413);
    const ping = await postGithub(h.url, '/github/acme/api', { zen: 'Keep it logically awesome.', hook_id: 1 }, { event: 'ping' });
    assert.equal(ping.status, 202);
    assert.equal((await h.api('GET', `/v1/events/${ping.body.id}`)).body.type, 'ping');
  });

  it('ingest: Slack form bodies and url_verification; Stripe event ids de-duplicate; raw binary bodies kept as base64', async () => {
    const slackSecret = 'slack-signing-secret';
    assert.equal((await h.api('PUT', '/v1/sources/slack', { path: '/slack/acme', provider: 'slack', secrets: [slackSecret] })).status, 201);
    const slackPost = (body: string, type: string) => {
      const ts = String(Math.floor(Date.now() / 1000));
      const sig = `v0=${createHmac('sha256', slackSecret).update(`v0:${ts}:${body}`).digest('hex')}`;
      return request(h.url, undefined, 'POST', '/hooks/slack/acme', body, { 'content-type': type, 'x-slack-request-timestamp': ts, 'x-slack-signature': sig });
    };
    const challenge = await slackPost(JSON.stringify({ type: 'url_verification', challenge: 'c-123', token: 't' }), 'application/json');
    assert.equal(challenge.status, 200);
    assert.deepEqual(challenge.body, { challenge: 'c-123' });
    const form = await slackPost('command=%2Fdeploy&text=api+prod&user_name=ada', 'application/x-www-form-urlencoded');
    assert.equal(form.status, 202, form.text);
    const fe = await h.api('GET', `/v1/events/${form.body.id}`);
    assert.deepEqual(fe.body.payload, { command: '/deploy', text: 'api prod', user_name: 'ada' });
    assert.equal(fe.body.type, 'command');

    const whsec = 'whsec_stripe_test_secret';
    assert.equal((await h.api('PUT', '/v1/sources/stripe', { path: '/stripe', provider: 'stripe', secrets: [whsec] })).status, 201);
    const stripe = new Stripe('sk_test_unused');
    const payload = JSON.stringify({ id: 'evt_stripe_1', type: 'invoice.paid', data: { object: {} } });
    const post = () => request(h.url, undefined, 'POST', '/hooks/stripe', payload, { 'content-type': 'application/json', 'stripe-signature': stripe.webhooks.generateTestHeaderString({ payload, secret: whsec }) });
    const first = await post();
    assert.equal(first.status, 202);
    const second = await post();
    assert.equal(second.status, 200);
    assert.equal(second.body.id, first.body.id);
    assert.equal((await h.api('GET', `/v1/events/${first.body.id}`)).body.type, 'invoice.paid');
    const stale = await request(h.url, undefined, 'POST', '/hooks/stripe', payload, {
      'content-type': 'application/json',
      'stripe-signature': stripe.webhooks.generateTestHeaderString({ payload, secret: whsec, timestamp: Math.floor(Date.now() / 1000) - 600 }),
    });
    assert.equal(stale.status, 401);
    assert.equal(stale.body.reason, 'stale');

    assert.equal((await h.api('PUT', '/v1/sources/bin', { path: '/bin', provider: 'hmac', secrets: ['k1'], hmac: { header: 'X-Sig', algorithm: 'sha256', encoding: 'hex' } })).status, 201);
    const bytes = Buffer.from([0, 1, 2, 255, 254, 0x80]);
    const res = await fetch(`${h.url}/hooks/bin`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream', 'x-sig': createHmac('sha256', 'k1').update(bytes).digest('hex') } });
    assert.equal(res.status, 202);
    const id = ((await res.json()) as { id: string }).id;
    const be = await h.api('GET', `/v1/events/${id}`);
    assert.equal(be.body.body_base64, bytes.toString('base64'));
    assert.equal(be.body.headers['x-sig'], undefined, 'the configured signature header is not stored');
  });

  it('ingest: Twilio form posts verified against HERALD_PUBLIC_URL + the hook path', async () => {
    assert.equal((await h.api('PUT', '/v1/sources/tw', { path: '/twilio/sms', provider: 'twilio', secrets: ['auth-token-1234'] })).status, 201);
    const params = { From: '+14158675310', To: '+18005551212', Body: 'hi' };
    let data = 'https://herald.example.com/hooks/twilio/sms?x=1';
    for (const k of Object.keys(params).sort()) data += k + params[k as keyof typeof params];
    const sig = createHmac('sha1', 'auth-token-1234').update(data).digest('base64');
    const body = new URLSearchParams(params).toString();
    const ok = await request(h.url, undefined, 'POST', '/hooks/twilio/sms?x=1', body, { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': sig, 'i-twilio-idempotency-token': 'tok-1' });
    assert.equal(ok.status, 202, ok.text);
    const replay = await request(h.url, undefined, 'POST', '/hooks/twilio/sms?x=1', body, { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': sig, 'i-twilio-idempotency-token': 'tok-1' });
    assert.equal(replay.status, 200);
    const wrongUrl = await request(h.url, undefined, 'POST', '/hooks/twilio/sms?x=2', body, { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': sig });
    assert.equal(wrongUrl.status, 401);
  });

  it('events: newest first, or oldest first from a cursor; filters by path and type', async () => {
    await h.api('PUT', '/v1/sources/order', { path: '/order/test', provider: 'github', secrets: [GH_SECRET] });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await postGithub(h.url, '/order/test', { i }, { event: i % 2 ? 'push' : 'issues' })).body.id);
    assert.deepEqual([...ids].sort(), ids, 'ids are time-ordered');
    const desc = await h.api('GET', '/v1/events?path=/order/test&limit=2');
    assert.deepEqual(desc.body.data.map((e: { id: string }) => e.id), [ids[4], ids[3]]);
    const next = await h.api('GET', `/v1/events?path=/order/test&limit=2&after=${desc.body.next_after}`);
    assert.deepEqual(next.body.data.map((e: { id: string }) => e.id), [ids[2], ids[1]]);
    const asc = await h.api('GET', `/v1/events?path=/order/test&order=asc&after=${ids[1]}`);
    assert.deepEqual(asc.body.data.map((e: { id: string }) => e.id), [ids[2], ids[3], ids[4]]);
    const pushes = await h.api('GET', '/v1/events?path=/order/test&type=push');
    assert.deepEqual(pushes.body.data.map((e: { id: string }) => e.id), [ids[3], ids[1]]);
    assert.equal((await h.api('GET', '/v1/events/evt_01JUNKJUNKJUNKJUNKJUNKJUNK')).status, 404);
  });

  it('inbound.received is announced after the commit', async () => {
    const seen: string[] = [];
    const stop = h.herald.services.events.listen({ types: ['inbound.received'], onEvent: (e) => e.type === 'inbound.received' && seen.push(e.event_id) });
    try {
      const r = await postGithub(h.url, '/github/acme/api', { announce: true });
      await waitFor(() => seen.includes(r.body.id), 10_000, 'inbound.received');
      assert.ok(await h.herald.services.inbound.getEvent(r.body.organization ?? (await h.api('GET', `/v1/events/${r.body.id}`)).body.organization, r.body.id));
    } finally {
      stop();
    }
  });

  it('consumers: lease, ack, nack, redelivery after the ack timeout, dead letters after max_deliveries, lag', async () => {
    await h.api('PUT', '/v1/sources/cons', { path: '/cons/a/x', provider: 'github', secrets: [GH_SECRET] });
    await h.api('PUT', '/v1/sources/cons2', { path: '/cons/b/y', provider: 'github', secrets: [GH_SECRET] });
    const c = await h.api('PUT', '/v1/consumers/worker', { filter: { path: '/cons/a/*', types: ['push', 'issues'] }, ack_timeout: '1s', max_deliveries: 2 });
    assert.equal(c.status, 201, c.text);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await postGithub(h.url, '/cons/a/x', { i }, { event: 'push' })).body.id);
    await postGithub(h.url, '/cons/a/x', { other: true }, { event: 'star' }); // type not wanted
    await postGithub(h.url, '/cons/b/y', { other: true }, { event: 'push' }); // path not wanted
    const lag = await h.api('GET', '/v1/consumers/worker');
    assert.equal(lag.body.unacked, 4);
    assert.equal(lag.body.oldest_unacked_id, ids[0]);

    const p1 = await h.api('GET', '/v1/consumers/worker/events?limit=2');
    assert.deepEqual(p1.body.data.map((e: { id: string }) => e.id), ids.slice(0, 2));
    const p2 = await h.api('GET', '/v1/consumers/worker/events?limit=10');
    assert.deepEqual(p2.body.data.map((e: { id: string }) => e.id), ids.slice(2), 'leased events are not handed out twice');
    const ack = await h.api('POST', '/v1/consumers/worker/ack', { ids: [ids[0], ids[2]] });
    assert.deepEqual(ack.body.acked.sort(), [ids[0], ids[2]].sort());
    assert.deepEqual((await h.api('POST', '/v1/consumers/worker/ack', { ids: [ids[0]] })).body.not_acked, [ids[0]]);
    const nack = await h.api('POST', '/v1/consumers/worker/nack', { ids: [ids[3]] });
    assert.deepEqual(nack.body.nacked, [ids[3]]);
    const again = await h.api('GET', '/v1/consumers/worker/events?limit=10');
    assert.deepEqual(again.body.data.map((e: { id: string }) => e.id), [ids[3]], 'a nacked event comes back at once');
    assert.equal(again.body.data[0].deliveries, 2);
    // ids[1] was not acked: after its 1 s lease it is handed out again (second delivery).
    const redelivered = await waitFor(async () => {
      const r = await h.api('GET', '/v1/consumers/worker/events?limit=10&wait=2s');
      return r.body.data.length > 0 ? r.body.data : undefined;
    }, 20_000, 'redelivery');
    assert.deepEqual(redelivered.map((e: { id: string }) => e.id), [ids[1]]);
    assert.equal(redelivered[0].deliveries, 2);
    // Neither ids[1] nor ids[3] is acked: after their leases they have had max_deliveries (2).
    const dead = await waitFor(async () => {
      await h.api('GET', '/v1/consumers/worker/events?limit=10');
      const d = await h.api('GET', '/v1/consumers/worker/dead-letters');
      return d.body.data.length === 2 ? d.body.data : undefined;
    }, 20_000, 'dead letters');
    assert.deepEqual(dead.map((d: { event_id: string }) => d.event_id).sort(), [ids[1], ids[3]].sort());
    const after = await h.api('GET', '/v1/consumers/worker');
    assert.equal(after.body.unacked, 0);
    assert.equal(after.body.dead, 2);
    const metrics = (await request(h.url, undefined, 'GET', '/metrics')).text;
    assert.match(metrics, /herald_inbound_consumer_unacked\{workspace="[^"]+",consumer="worker"\} 0/);
  });

  it('consumers: a long-poll returns when a matching event arrives; concurrent pullers get distinct events', async () => {
    await h.api('PUT', '/v1/sources/lp', { path: '/lp/repo', provider: 'github', secrets: [GH_SECRET] });
    await h.api('PUT', '/v1/consumers/lp', { filter: { path: '/lp/**' } });
    const waiting = h.api('GET', '/v1/consumers/lp/events?limit=5&wait=30s');
    await new Promise((r) => setTimeout(r, 300));
    const posted = await postGithub(h.url, '/lp/repo', { hello: 1 });
    const got = await waiting;
    assert.deepEqual(got.body.data.map((e: { id: string }) => e.id), [posted.body.id]);
    const lagMetric = (await request(h.url, undefined, 'GET', '/metrics')).text;
    assert.match(lagMetric, /herald_inbound_consumer_unacked\{workspace="[^"]+",consumer="lp"\} 1/, 'the leased, unacked event is lag');
    await h.api('POST', '/v1/consumers/lp/ack', { ids: [posted.body.id] });

    const n = 60;
    await Promise.all(Array.from({ length: n }, (_, i) => postGithub(h.url, '/lp/repo', { i })));
    const seen = new Map<string, number>();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (;;) {
          const r = await h.api('GET', '/v1/consumers/lp/events?limit=7');
          if (r.body.data.length === 0) return;
          for (const e of r.body.data) seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
          await h.api('POST', '/v1/consumers/lp/ack', { ids: r.body.data.map((e: { id: string }) => e.id) });
        }
      }),
    );
    assert.equal(seen.size, n);
    assert.ok([...seen.values()].every((v) => v === 1), 'each event handed out once');
    assert.equal((await h.api('GET', '/v1/consumers/lp')).body.unacked, 0);
  });

  it('consumers: start earliest takes stored events; unknown consumer 404; match filters by the filter language', async () => {
    const c = await h.api('PUT', '/v1/consumers/all-gh', { filter: { path: '/github/acme/api' }, start: 'earliest' });
    assert.equal(c.status, 201);
    const r = await h.api('GET', '/v1/consumers/all-gh/events?limit=500');
    assert.ok(r.body.data.length >= 3, `stored events handed out (${r.body.data.length})`);
    assert.equal((await h.api('GET', '/v1/consumers/nope/events')).status, 404);
    const bad = await h.api('PUT', '/v1/consumers/m', { filter: { path: '/x', match: { 'payload.n': { $gt: [] } } } });
    assert.equal(bad.status, 422);
    assert.match(bad.body.errors[0].path, /^body\.filter\.match/);
    await h.api('PUT', '/v1/sources/match', { path: '/match/repo', provider: 'github', secrets: [GH_SECRET] });
    assert.equal((await h.api('PUT', '/v1/consumers/opened', { filter: { path: '/match/**', match: { 'payload.action': 'opened', 'headers.x-github-event': 'pull_request', 'payload.number': { $gte: 10 } } } })).status, 201);
    const opened = await postGithub(h.url, '/match/repo', { action: 'opened', number: 10 });
    await postGithub(h.url, '/match/repo', { action: 'closed', number: 11 });
    await postGithub(h.url, '/match/repo', { action: 'opened', number: 9 });
    await postGithub(h.url, '/match/repo', { action: 'opened', number: 12 }, { event: 'issues' });
    const got = await h.api('GET', '/v1/consumers/opened/events?limit=10');
    assert.deepEqual(got.body.data.map((e: { id: string }) => e.id), [opened.body.id]);
    assert.equal((await h.api('GET', '/v1/consumers/opened')).body.unacked, 1);
    assert.equal((await h.api('GET', '/v1/consumers/all-gh/events?wait=forever')).status, 422);
  });

  it('retention: events older than their source retention are purged with their consumer state', async () => {
    await h.api('PUT', '/v1/sources/short', { path: '/short', provider: 'github', secrets: [GH_SECRET], retention: '1m' });
    const r = await postGithub(h.url, '/short', { old: true });
    const kept = await postGithub(h.url, '/github/acme/api', { kept: true });
    const svc = h.herald.services.inbound;
    await svc.purgeExpired(1000, Date.now() + 30_000);
    assert.equal((await h.api('GET', `/v1/events/${r.body.id}`)).status, 200, 'not yet');
    await svc.purgeExpired(1000, Date.now() + 2 * 60_000);
    assert.equal((await h.api('GET', `/v1/events/${r.body.id}`)).status, 404);
    assert.equal((await h.api('GET', `/v1/events/${kept.body.id}`)).status, 200, 'the default retention (30d) keeps the other source');
  });
});
