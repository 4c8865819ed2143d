import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describeOnStores, startHeraldOn, tempDir, TEST_ENV, waitFor, type TestHerald } from '../helpers/herald.ts';
import { createHerald } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { LATEST_MIGRATION } from '../../src/store/migrations/index.ts';

describeOnStores('operations surface', (store) => {
  let h: TestHerald;
  let rx: Receiver;
  before(async () => {
    h = await startHeraldOn(store);
    rx = await startReceiver();
  });
  after(async () => {
    await h.stop();
    await rx.close();
  });

  it('answers health probes without auth', async () => {
    const live = await fetch(`${h.url}/healthz/live`);
    assert.equal(live.status, 200);
    const startup = await fetch(`${h.url}/healthz/startup`);
    assert.equal(startup.status, 200);
    const ready = (await (await fetch(`${h.url}/healthz/ready`)).json()) as any;
    assert.equal(ready.status, 'ok');
    assert.equal(ready.migration, LATEST_MIGRATION);
    assert.equal(ready.store, store);
    assert.equal(ready.role, 'api,worker');
    assert.match(ready.worker_id, /:\d+:[0-9a-f]{8}$/);
  });

  it('exports Prometheus metrics that move with traffic', async () => {
    await h.api('PUT', '/v1/recipients/m1', { webhook: { url: `${rx.url}/m1` } });
    const sent = await h.api('POST', '/v1/notifications', { to: 'm1', title: 'metrics' });
    assert.equal(sent.status, 202);
    await waitFor(() => rx.received.length >= 1, 5000, 'delivery');
    const text = await waitFor(async () => {
      const t = await (await fetch(`${h.url}/metrics`)).text();
      return /herald_delivery_attempts_total\{channel="webhook",outcome="success"\} 1/.test(t) ? t : undefined;
    }, 5000, 'attempt metric');
    assert.match(text, /herald_notifications_accepted_total 1/);
    assert.match(text, /herald_http_request_duration_seconds_bucket\{le="[^"]+",method="POST",route="\/v1\/notifications",status="202"\}/);
    assert.match(text, /herald_delivery_attempt_duration_seconds_count\{channel="webhook"\} 1/);
    assert.match(text, /herald_info\{version="[^"]+",role="api,worker",worker_id="[^"]+"\} 1/);
    assert.match(text, /# TYPE herald_queue_depth gauge/);
  });

  it('serves OpenAPI 3.1 generated from the route schemas, and interactive docs', async () => {
    const spec = (await (await fetch(`${h.url}/openapi.json`)).json()) as any;
    assert.equal(spec.openapi, '3.1.0');
    for (const path of ['/v1/notifications', '/v1/notifications/{id}', '/v1/recipients/{id}', '/v1/keys', '/healthz/ready']) {
      assert.ok(spec.paths[path], `${path} missing from the spec`);
    }
    const send = spec.paths['/v1/notifications'].post;
    assert.ok(send.requestBody.content['application/json'].schema.properties.to);
    assert.ok(send.responses['202']);
    assert.ok(send.responses['422']);
    const docs = await fetch(`${h.url}/docs/`);
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /swagger/i);
  });

  it('carries a request id, echoing the caller’s', async () => {
    const r = await fetch(`${h.url}/v1/notifications/ntf_missing`, { headers: { authorization: `Bearer ${h.key}`, 'x-request-id': 'trace-123' } });
    assert.equal(r.status, 404);
    assert.equal(r.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.equal(r.headers.get('x-request-id'), 'trace-123');
  });
});

describe('a worker-only node', () => {
  it('serves health and metrics, not the API', async () => {
    const dataDir = tempDir();
    const config = loadConfig({}, { ...TEST_ENV, HERALD_DATA_DIR: dataDir });
    const herald = await createHerald(config, { roles: ['worker'] });
    const url = await herald.start();
    try {
      const ready = (await (await fetch(`${url}/healthz/ready`)).json()) as any;
      assert.equal(ready.status, 'ok');
      assert.equal(ready.role, 'worker');
      assert.match(await (await fetch(`${url}/metrics`)).text(), /herald_info\{version="[^"]+",role="worker"/);
      const api = await fetch(`${url}/v1/notifications`, { method: 'POST' });
      assert.equal(api.status, 404);
    } finally {
      await herald.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
