// The dead-letter queue through the API: listing, entries, statistics, scopes, replay, discard and
// bulk jobs, on each store (on PostgreSQL the statistics SQL runs on real entries here).

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { DlqService } from '../../src/dlq/service.ts';
import { describeOnStores, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { startSmtp, type SmtpSink } from '../helpers/smtp.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const desc = (ids: string[]) => [...ids].sort().reverse();

/** A receiver answering each path with the status set in `status` (default 200). */
async function statusReceiver(status: Map<string, number>): Promise<Receiver> {
  return startReceiver((r) => ({ status: status.get(r.path) ?? 200 }));
}

/** An SMTP sink that rejects RCPT TO for addresses starting with "bad" (550: permanent). */
async function rejectingSmtp(): Promise<SmtpSink> {
  const smtp = await startSmtp();
  smtp.reject = (rcpt) => (rcpt.startsWith('bad') ? { code: 550, message: 'No such mailbox' } : undefined);
  return smtp;
}

async function webhookRecipient(h: TestHerald, id: string, url: string): Promise<void> {
  const r = await h.api('PUT', `/v1/recipients/${id}`, { webhook: { url } });
  assert.equal(r.status, 201, r.text);
}

async function emailRecipient(h: TestHerald, id: string, email: string): Promise<void> {
  const r = await h.api('PUT', `/v1/recipients/${id}`, { email });
  assert.equal(r.status, 201, r.text);
}

/** Sends one notification to `to`; returns its id and its (single) delivery id. */
async function send(h: TestHerald, to: string, title = `to ${to}`): Promise<{ notification: string; delivery: string }> {
  const r = await h.api('POST', '/v1/notifications', { to, title, body: `body for ${to}`, kind: 'alert' });
  assert.equal(r.status, 202, r.text);
  assert.equal(r.body.deliveries.length, 1);
  return { notification: r.body.id, delivery: r.body.deliveries[0].id };
}

async function deliveryOf(h: TestHerald, notificationId: string, deliveryId: string): Promise<any> {
  const r = await h.api('GET', `/v1/notifications/${notificationId}`);
  assert.equal(r.status, 200, r.text);
  return r.body.deliveries.find((d: any) => d.id === deliveryId);
}

async function waitExhausted(h: TestHerald, deliveryIds: string[]): Promise<void> {
  for (const id of deliveryIds) {
    await waitFor(async () => (await h.api('GET', `/v1/dlq/${id}`)).status === 200, 10_000, `${id} exhausted`);
  }
}

async function waitJob(h: TestHerald, jobId: string): Promise<any> {
  return waitFor(async () => {
    const r = await h.api('GET', `/v1/dlq/jobs/${jobId}`);
    assert.equal(r.status, 200, r.text);
    return r.body.job.status !== 'running' ? r.body.job : undefined;
  }, 10_000, `job ${jobId}`);
}

async function adminKeyId(h: TestHerald): Promise<string> {
  const r = await h.api('GET', '/v1/keys');
  const k = r.body.data.find((x: any) => x.name === 'HERALD_ADMIN_KEY');
  assert.ok(k, 'admin key listed');
  return k.id;
}

async function allDlqIds(h: TestHerald, query = ''): Promise<string[]> {
  const r = await h.api('GET', `/v1/dlq?limit=200${query}`);
  assert.equal(r.status, 200, r.text);
  return r.body.data.map((d: any) => d.id);
}

describeOnStores('DLQ listing, entries, stats and scopes', (store) => {
  let h: TestHerald;
  let rx: Receiver;
  let smtp: SmtpSink;
  const status = new Map([['/perm', 400], ['/flaky', 500]]);
  let perm: { notification: string; delivery: string }[];
  let flaky: { notification: string; delivery: string }[];
  let email1: string;
  let email2: string;
  let sent: string;
  let boundary: number;

  before(async () => {
    rx = await statusReceiver(status);
    smtp = await rejectingSmtp();
    h = await startHeraldOn(store, { HERALD_SMTP_URL: smtp.url });
    await webhookRecipient(h, 'wperm', `${rx.url}/perm`);
    await webhookRecipient(h, 'wflaky', `${rx.url}/flaky`);
    await webhookRecipient(h, 'wok', `${rx.url}/ok`);
    await emailRecipient(h, 'ebad', 'bad@example.com');

    // Batch 1: permanent failures. Batch 2, completed strictly after `boundary`: retries run out.
    perm = [await send(h, 'wperm', 'Disk full'), await send(h, 'wperm'), await send(h, 'wperm')];
    email1 = (await send(h, 'ebad')).delivery;
    await waitExhausted(h, [...perm.map((p) => p.delivery), email1]);
    await sleep(5);
    boundary = Date.now();
    await sleep(5);
    flaky = [await send(h, 'wflaky'), await send(h, 'wflaky')];
    email2 = (await send(h, 'ebad')).delivery;
    const ok = await send(h, 'wok');
    sent = ok.delivery;
    await waitExhausted(h, [...flaky.map((f) => f.delivery), email2]);
    await waitFor(async () => (await deliveryOf(h, ok.notification, sent)).status === 'sent', 5000, 'sent');
  });
  after(async () => {
    await h.stop();
    await rx.close();
    await smtp.close();
  });

  it('lists exhausted deliveries only, newest first', async () => {
    const r = await h.api('GET', '/v1/dlq');
    assert.equal(r.status, 200);
    const expected = desc([...perm.map((p) => p.delivery), ...flaky.map((f) => f.delivery), email1, email2]);
    assert.deepEqual(r.body.data.map((d: any) => d.id), expected);
    assert.ok(r.body.data.every((d: any) => d.status === 'exhausted' && d.completed_at !== null));
    assert.ok(!r.body.data.some((d: any) => d.id === sent));
    assert.equal(r.body.next_cursor, null);
  });

  it('filters by channel, error class and completion time', async () => {
    assert.deepEqual(await allDlqIds(h, '&channel=email'), desc([email1, email2]));
    assert.deepEqual(await allDlqIds(h, '&error=http_400'), desc(perm.map((p) => p.delivery)));
    assert.deepEqual(await allDlqIds(h, '&error=http_500'), desc(flaky.map((f) => f.delivery)));
    assert.deepEqual(await allDlqIds(h, '&error=smtp_550&channel=email'), desc([email1, email2]));
    assert.deepEqual(await allDlqIds(h, '&error=http_400&channel=email'), []);
    const at = encodeURIComponent(new Date(boundary).toISOString());
    assert.deepEqual(await allDlqIds(h, `&to=${at}`), desc([...perm.map((p) => p.delivery), email1]));
    assert.deepEqual(await allDlqIds(h, `&from=${at}`), desc([...flaky.map((f) => f.delivery), email2]));
    assert.deepEqual(await allDlqIds(h, `&from=${at}&channel=email`), [email2]);
    assert.equal((await h.api('GET', '/v1/dlq?channel=pigeon')).status, 422);
    assert.equal((await h.api('GET', '/v1/dlq?from=yesterday')).status, 422);
  });

  it('pages with a keyset cursor', async () => {
    const all = await allDlqIds(h);
    assert.equal(all.length, 7);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r: any = await h.api('GET', `/v1/dlq?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(r.status, 200, r.text);
      assert.ok(r.body.data.length <= 3);
      seen.push(...r.body.data.map((d: any) => d.id));
      cursor = r.body.next_cursor;
      pages++;
    } while (cursor);
    assert.equal(pages, 3);
    assert.deepEqual(seen, all);

    const filtered = await h.api('GET', '/v1/dlq?limit=2&error=http_400');
    assert.equal(filtered.body.data.length, 2);
    const rest = await h.api('GET', `/v1/dlq?limit=2&error=http_400&cursor=${filtered.body.next_cursor}`);
    assert.deepEqual(rest.body.data.map((d: any) => d.id), desc(perm.map((p) => p.delivery)).slice(2));
    assert.equal(rest.body.next_cursor, null);

    const bogus = await h.api('GET', '/v1/dlq?cursor=bm90LWEtY3Vyc29y');
    assert.equal(bogus.status, 400);
    assert.equal(bogus.body.code, 'invalid_cursor');
  });

  it('shows one entry with its attempt log and notification content', async () => {
    const r = await h.api('GET', `/v1/dlq/${perm[0]!.delivery}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.id, perm[0]!.delivery);
    assert.equal(r.body.status, 'exhausted');
    assert.equal(r.body.error_class, 'http_400');
    assert.equal(r.body.recipient, 'wperm');
    assert.equal(r.body.attempt_log.length, 1);
    assert.equal(r.body.attempt_log[0].outcome, 'permanent');
    assert.equal(r.body.attempt_log[0].http_status, 400);
    assert.deepEqual(r.body.notification, { id: perm[0]!.notification, kind: 'alert', title: 'Disk full', body: 'body for wperm' });

    const retried = await h.api('GET', `/v1/dlq/${flaky[0]!.delivery}`);
    assert.equal(retried.body.attempt_log.length, 4, 'one attempt plus three scheduled retries');
    assert.ok(retried.body.attempt_log.every((a: any) => a.outcome === 'retryable' && a.http_status === 500));

    assert.equal((await h.api('GET', `/v1/dlq/${sent}`)).status, 404, 'a sent delivery is not in the DLQ');
    assert.equal((await h.api('GET', '/v1/dlq/dlv_01ARZ3NDEKTSV4RRFFQ69G5FAV')).status, 404);
  });

  it('counts entries per time bucket, channel and error class', async () => {
    const entries = (await h.api('GET', '/v1/dlq?limit=200')).body.data as any[];
    const bucketMs = 100;
    const times = entries.map((e) => Date.parse(e.completed_at));
    const from = Math.min(...times) - 1000;
    const to = Math.max(...times) + 1000;
    const expected = new Map<string, number>();
    for (const e of entries) {
      const start = Math.floor(Date.parse(e.completed_at) / bucketMs) * bucketMs;
      const k = `${new Date(start).toISOString()}|${e.channel}|${e.error_class}`;
      expected.set(k, (expected.get(k) ?? 0) + 1);
    }
    const q = `from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}&bucket=100ms`;
    const r = await h.api('GET', `/v1/dlq/stats?${q}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.bucket_ms, 100);
    const got = new Map<string, number>(r.body.buckets.map((b: any) => [`${b.start}|${b.channel}|${b.error_class}`, b.count]));
    assert.deepEqual(got, expected);
    assert.ok(new Set(r.body.buckets.map((b: any) => b.start)).size >= 2, 'the batches fall in different buckets');
    const starts = r.body.buckets.map((b: any) => Date.parse(b.start));
    assert.deepEqual(starts, [...starts].sort((a, b) => a - b), 'ordered by bucket');

    const hourly = await h.api('GET', '/v1/dlq/stats');
    assert.equal(hourly.status, 200);
    assert.equal(hourly.body.bucket_ms, 3_600_000);
    const sum = (pred: (b: any) => boolean) => hourly.body.buckets.filter(pred).reduce((n: number, b: any) => n + b.count, 0);
    assert.equal(sum(() => true), 7);
    assert.equal(sum((b) => b.channel === 'webhook' && b.error_class === 'http_400'), 3);
    assert.equal(sum((b) => b.channel === 'webhook' && b.error_class === 'http_500'), 2);
    assert.equal(sum((b) => b.channel === 'email' && b.error_class === 'smtp_550'), 2);
    assert.ok(hourly.body.buckets.every((b: any) => Date.parse(b.start) % 3_600_000 === 0));

    const narrow = await h.api('GET', `/v1/dlq/stats?to=${encodeURIComponent(new Date(boundary).toISOString())}&bucket=1d`);
    assert.equal(narrow.body.buckets.reduce((n: number, b: any) => n + b.count, 0), 4, 'only entries completed before "to"');

    for (const bad of ['bucket=soon', 'bucket=0', 'bucket=1ms&from=2020-01-01T00:00:00Z', `from=${new Date(to).toISOString()}&to=${new Date(from).toISOString()}`]) {
      const res = await h.api('GET', `/v1/dlq/stats?${bad}`);
      assert.equal(res.status, 422, `${bad}: ${res.text}`);
      assert.equal(res.body.code, 'validation_failed');
    }
  });

  it('needs the admin scope everywhere', async () => {
    const created = await h.api('POST', '/v1/keys', { name: 'sender', scopes: ['send', 'read'] });
    assert.equal(created.status, 201, created.text);
    const key: string = created.body.key;
    const as = (method: string, path: string, body?: unknown) =>
      fetch(h.url + path, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const target = perm[1]!.delivery;
    const calls: [string, string, unknown?][] = [
      ['GET', '/v1/dlq'],
      ['GET', '/v1/dlq/stats'],
      ['GET', `/v1/dlq/${target}`],
      ['GET', '/v1/dlq/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV'],
      ['POST', `/v1/dlq/${target}/replay`, {}],
      ['POST', `/v1/dlq/${target}/discard`, { reason: 'no' }],
      ['POST', '/v1/dlq/bulk-replay', { confirm: true }],
      ['POST', '/v1/dlq/bulk-discard', { reason: 'no', confirm: true }],
      ['GET', '/v1/audit'],
    ];
    for (const [method, path, body] of calls) {
      const res = await as(method, path, body);
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal(((await res.json()) as any).code, 'forbidden');
    }
    assert.equal((await as('GET', '/v1/notifications')).status, 200, 'the key itself works');
    assert.equal((await h.api('GET', `/v1/dlq/${target}`)).body.status, 'exhausted', 'nothing changed');
    assert.equal((await allDlqIds(h)).length, 7);
  });
});

describeOnStores('DLQ replay and discard', (store) => {
  let h: TestHerald;
  let rx: Receiver;
  const status = new Map<string, number>();

  before(async () => {
    rx = await statusReceiver(status);
    h = await startHeraldOn(store);
  });
  after(async () => {
    await h.stop();
    await rx.close();
  });

  it('replays an exhausted delivery: delivered once the receiver is fixed, both runs in the log', async () => {
    status.set('/fix', 400);
    await webhookRecipient(h, 'fix', `${rx.url}/fix`);
    const { notification, delivery } = await send(h, 'fix');
    await waitExhausted(h, [delivery]);
    assert.equal((await h.api('GET', `/v1/notifications/${notification}`)).body.status, 'failed');

    status.set('/fix', 200);
    const t0 = Date.now();
    const r = await h.api('POST', `/v1/dlq/${delivery}/replay`, { reason: 'endpoint fixed' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.id, delivery);
    assert.ok(['pending', 'sending', 'sent'].includes(r.body.status), r.body.status);
    if (r.body.status === 'pending') {
      assert.equal(r.body.attempts, 0);
      assert.equal(r.body.error_class, null);
      assert.equal(r.body.last_error, null);
      assert.equal(r.body.completed_at, null);
      assert.ok(Date.parse(r.body.next_attempt_at) <= Date.now());
    }

    const d = await waitFor(async () => {
      const x = await deliveryOf(h, notification, delivery);
      return x.status === 'sent' ? x : undefined;
    }, 5000, 'replayed delivery sent');
    assert.equal(d.attempts, 1, 'the replay started a fresh budget');
    assert.equal(d.attempt_log.length, 2);
    assert.equal(d.attempt_log[0].outcome, 'permanent');
    assert.equal(d.attempt_log[0].http_status, 400);
    assert.equal(d.attempt_log[1].outcome, 'success');
    assert.equal(d.attempt_log[1].http_status, 200);
    assert.ok(Date.parse(d.attempt_log[1].started_at) >= t0);
    assert.equal((await h.api('GET', `/v1/notifications/${notification}`)).body.status, 'sent');
    assert.equal(rx.received.filter((x) => x.headers['webhook-id'] === delivery).length, 2);

    assert.equal((await h.api('GET', `/v1/dlq/${delivery}`)).status, 404, 'no longer in the DLQ');
    const again = await h.api('POST', `/v1/dlq/${delivery}/replay`, {});
    assert.equal(again.status, 409, again.text);
    assert.equal(again.body.code, 'conflict');
    assert.equal((await h.api('POST', '/v1/dlq/dlv_01ARZ3NDEKTSV4RRFFQ69G5FAV/replay', {})).status, 404);
  });

  it('replays without a body and refreshes the notification status at once', async () => {
    status.set('/slow-fix', 400);
    await webhookRecipient(h, 'slowfix', `${rx.url}/slow-fix`);
    const { notification, delivery } = await send(h, 'slowfix');
    await waitExhausted(h, [delivery]);
    // The fixed receiver takes a while, so the notification is observably back in progress.
    status.set('/slow-fix', 200);
    rx.respond = (req) => ({ status: status.get(req.path) ?? 200, delayMs: req.path === '/slow-fix' ? 400 : 0 });
    try {
      const r = await h.api('POST', `/v1/dlq/${delivery}/replay`);
      assert.equal(r.status, 200, r.text);
      assert.notEqual((await h.api('GET', `/v1/notifications/${notification}`)).body.status, 'failed');
      await waitFor(async () => (await deliveryOf(h, notification, delivery)).status === 'sent', 5000, 'sent');
    } finally {
      rx.respond = (req) => ({ status: status.get(req.path) ?? 200 });
    }
  });

  it('refuses to replay or discard a delivery that is not exhausted', async () => {
    await webhookRecipient(h, 'happy', `${rx.url}/happy`);
    const { notification, delivery } = await send(h, 'happy');
    await waitFor(async () => (await deliveryOf(h, notification, delivery)).status === 'sent', 5000, 'sent');
    const r = await h.api('POST', `/v1/dlq/${delivery}/replay`, { reason: 'try' });
    assert.equal(r.status, 409);
    assert.equal(r.body.code, 'conflict');
    const d = await h.api('POST', `/v1/dlq/${delivery}/discard`, { reason: 'try' });
    assert.equal(d.status, 409);
    const after = await deliveryOf(h, notification, delivery);
    assert.equal(after.status, 'sent');
    assert.equal(after.attempt_log.length, 1);
  });

  it('discards with a reason, and only with one', async () => {
    status.set('/gone', 410);
    await webhookRecipient(h, 'gone', `${rx.url}/gone`);
    const { notification, delivery } = await send(h, 'gone');
    await waitExhausted(h, [delivery]);

    for (const body of [{}, { reason: '' }, { reason: '   ' }, { reason: 'x', extra: 1 }, undefined]) {
      const r = await h.api('POST', `/v1/dlq/${delivery}/discard`, body);
      assert.equal(r.status, 422, `${JSON.stringify(body)}: ${r.text}`);
    }
    assert.equal((await h.api('GET', `/v1/dlq/${delivery}`)).body.status, 'exhausted', 'unchanged');

    const r = await h.api('POST', `/v1/dlq/${delivery}/discard`, { reason: 'customer closed the account' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.status, 'discarded');
    assert.equal(r.body.reason, 'customer closed the account');
    assert.equal(r.body.error_class, 'http_410', 'the failure stays visible');

    const d = await deliveryOf(h, notification, delivery);
    assert.equal(d.status, 'discarded');
    assert.equal(d.reason, 'customer closed the account');
    assert.equal((await h.api('GET', `/v1/notifications/${notification}`)).body.status, 'failed');
    assert.equal((await h.api('GET', `/v1/dlq/${delivery}`)).status, 404);
    assert.ok(!(await allDlqIds(h)).includes(delivery));
    assert.equal((await h.api('POST', `/v1/dlq/${delivery}/discard`, { reason: 'again' })).status, 409);
    assert.equal((await h.api('POST', `/v1/dlq/${delivery}/replay`, {})).status, 409);
  });

  it('records every action in the audit log: who, when, why', async () => {
    const keyId = await adminKeyId(h);
    const replays = await h.api('GET', '/v1/audit?action=dlq.replay');
    assert.equal(replays.status, 200, replays.text);
    assert.equal(replays.body.data.length, 2, 'two successful replays; refused ones are not recorded');
    const [second, first] = replays.body.data;
    assert.equal(first.actor, `key:${keyId}`);
    assert.equal(first.reason, 'endpoint fixed');
    assert.match(first.target, /^dlv_/);
    assert.equal(second.reason, null);
    assert.ok(Date.parse(first.created_at) <= Date.parse(second.created_at));
    assert.ok(Date.now() - Date.parse(first.created_at) < 60_000);

    const discards = await h.api('GET', '/v1/audit?action=dlq.discard');
    assert.equal(discards.body.data.length, 1);
    assert.equal(discards.body.data[0].reason, 'customer closed the account');
    assert.equal(discards.body.data[0].actor, `key:${keyId}`);

    const page1 = await h.api('GET', '/v1/audit?limit=2');
    assert.equal(page1.body.data.length, 2);
    const page2 = await h.api('GET', `/v1/audit?limit=2&cursor=${page1.body.next_cursor}`);
    assert.equal(page2.status, 200);
    const all = await h.api('GET', '/v1/audit?limit=200');
    assert.deepEqual([...page1.body.data, ...page2.body.data].map((a: any) => a.id), all.body.data.slice(0, 4).map((a: any) => a.id));
    assert.deepEqual(all.body.data.map((a: any) => a.id), desc(all.body.data.map((a: any) => a.id)), 'newest first');
    assert.equal((await h.api('GET', '/v1/audit?cursor=nope!')).status, 400);
  });
});

describeOnStores('DLQ bulk actions', (store) => {
  let h: TestHerald;
  let rx: Receiver;
  let smtp: SmtpSink;
  const status = new Map([['/bulk', 400]]);
  let hooks: { notification: string; delivery: string }[];
  let mails: string[];

  before(async () => {
    rx = await statusReceiver(status);
    smtp = await rejectingSmtp();
    h = await startHeraldOn(store, { HERALD_SMTP_URL: smtp.url });
    await webhookRecipient(h, 'bulk', `${rx.url}/bulk`);
    await emailRecipient(h, 'bulkmail', 'bad-bulk@example.com');
    // Mail first: the newest entry overall is a webhook, so a job's bound must follow its filter.
    mails = [(await send(h, 'bulkmail')).delivery, (await send(h, 'bulkmail')).delivery];
    hooks = [await send(h, 'bulk'), await send(h, 'bulk'), await send(h, 'bulk')];
    await waitExhausted(h, [...hooks.map((x) => x.delivery), ...mails]);
  });
  after(async () => {
    await h.stop();
    await rx.close();
    await smtp.close();
  });

  it('a dry run reports count and sample and changes nothing', async () => {
    for (const extra of [{}, { confirm: false }]) {
      const r = await h.api('POST', '/v1/dlq/bulk-discard', { channel: 'email', reason: 'mailbox gone', ...extra });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, { dry_run: true, count: 2, sample: desc(mails) });
    }
    const all = await h.api('POST', '/v1/dlq/bulk-replay', {});
    assert.equal(all.body.count, 5);
    assert.deepEqual(all.body.sample, desc([...hooks.map((x) => x.delivery), ...mails]));
    assert.equal((await allDlqIds(h)).length, 5);
    assert.equal((await h.api('GET', '/v1/audit?action=dlq.bulk_discard')).body.data.length, 0);
    assert.equal((await h.api('GET', '/v1/audit?action=dlq.bulk_replay')).body.data.length, 0);
  });

  it('validates bulk bodies', async () => {
    for (const [path, body] of [
      ['/v1/dlq/bulk-discard', { channel: 'email', confirm: true }],
      ['/v1/dlq/bulk-discard', { reason: ' ', confirm: true }],
      ['/v1/dlq/bulk-replay', { confirm: 'yes' }],
      ['/v1/dlq/bulk-replay', { from: 'last week' }],
      ['/v1/dlq/bulk-replay', { status: 'sent' }],
    ] as const) {
      const r = await h.api('POST', path, body);
      assert.equal(r.status, 422, `${path} ${JSON.stringify(body)}: ${r.text}`);
    }
    assert.equal((await allDlqIds(h)).length, 5);
  });

  it('a confirmed bulk discard runs as a job over the matching entries', async () => {
    const before = Date.now();
    const r = await h.api('POST', '/v1/dlq/bulk-discard', { channel: 'email', reason: 'mailbox gone', confirm: true });
    assert.equal(r.status, 202, r.text);
    const created = r.body.job;
    assert.match(created.id, /^job_/);
    assert.equal(created.action, 'discard');
    assert.equal(created.total, 2);
    assert.deepEqual(created.filters, { channel: 'email' });
    assert.equal(created.max_id, desc(mails)[0]);
    assert.equal(created.reason, 'mailbox gone');

    const job = await waitJob(h, created.id);
    assert.equal(job.status, 'completed');
    assert.equal(job.processed, 2);
    assert.equal(job.total, 2);
    assert.ok(Date.parse(job.finished_at) >= before);

    for (const id of mails) assert.equal((await h.api('GET', `/v1/dlq/${id}`)).status, 404);
    assert.deepEqual(await allDlqIds(h), desc(hooks.map((x) => x.delivery)), 'webhook entries untouched');

    const keyId = await adminKeyId(h);
    const audit = await h.api('GET', '/v1/audit?action=dlq.bulk_discard');
    assert.equal(audit.body.data.length, 1);
    const a = audit.body.data[0];
    assert.equal(a.actor, `key:${keyId}`);
    assert.equal(a.target, created.id);
    assert.equal(a.reason, 'mailbox gone');
    assert.deepEqual(a.details, { filters: { channel: 'email' }, count: 2 });
  });

  it('a confirmed bulk replay redelivers every matching entry', async () => {
    status.set('/bulk', 200);
    const r = await h.api('POST', '/v1/dlq/bulk-replay', { error: 'http_400', reason: 'receiver fixed', confirm: true });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.body.job.total, 3);
    const job = await waitJob(h, r.body.job.id);
    assert.equal(job.status, 'completed');
    assert.equal(job.processed, 3);
    assert.deepEqual(job.filters, { error: 'http_400' });
    for (const x of hooks) {
      await waitFor(async () => (await deliveryOf(h, x.notification, x.delivery)).status === 'sent', 5000, `${x.delivery} sent`);
    }
    assert.deepEqual(await allDlqIds(h), []);
    const audit = await h.api('GET', '/v1/audit?action=dlq.bulk_replay');
    assert.deepEqual(audit.body.data.map((a: any) => [a.target, a.reason, a.details]), [[job.id, 'receiver fixed', { filters: { error: 'http_400' }, count: 3 }]]);

    const empty = await h.api('POST', '/v1/dlq/bulk-replay', { confirm: true });
    assert.equal(empty.status, 202);
    assert.equal(empty.body.job.total, 0);
    assert.equal(empty.body.job.max_id, null);
    const done = await waitJob(h, empty.body.job.id);
    assert.equal(done.status, 'completed');
    assert.equal(done.processed, 0);
    assert.equal((await h.api('GET', '/v1/dlq/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV')).status, 404);
  });
});

describeOnStores('DLQ jobs: chunks, stop and resume', (store) => {
  let h: TestHerald;
  let rx: Receiver;

  before(async () => {
    rx = await startReceiver((r) => ({ status: r.path === '/gone' ? 403 : 422 }));
    h = await startHeraldOn(store);
    await webhookRecipient(h, 'dead', `${rx.url}/dead`);
    await webhookRecipient(h, 'gone', `${rx.url}/gone`);
  });
  after(async () => {
    await h?.stop();
    await rx.close();
  });

  async function exhausted(n: number, to = 'dead'): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await send(h, to)).delivery);
    await waitExhausted(h, ids);
    return ids.sort();
  }

  it('runs in chunks, stops at a chunk boundary and is resumed by start()', async () => {
    const ids = await exhausted(5);
    const { store, log } = h.herald.services;
    const replayed: string[] = [];
    const svc = new DlqService({ store, log, onReplayed: () => replayed.push('woken'), chunkSize: 2 });
    const job = await svc.createJob('ws_default', 'discard', {}, 'key:test', 'chunked');
    await svc.stop();
    const stopped = (await h.api('GET', `/v1/dlq/jobs/${job.id}`)).body.job;
    assert.equal(stopped.status, 'running', 'stopped jobs stay running');
    assert.ok(stopped.processed >= 2 && stopped.processed < 5, `stopped after a whole chunk, got ${stopped.processed}`);
    assert.equal(stopped.processed % 2, 0, 'only whole chunks');
    assert.equal((await allDlqIds(h)).length, 5 - stopped.processed);

    const resumed = new DlqService({ store, log, onReplayed: () => undefined, chunkSize: 2 });
    await resumed.start();
    const done = await waitJob(h, job.id);
    await resumed.stop();
    assert.equal(done.status, 'completed');
    assert.equal(done.processed, 5);
    for (const id of ids) {
      const d = await h.api('GET', `/v1/dlq/${id}`);
      assert.equal(d.status, 404);
    }
    assert.deepEqual(replayed, [], 'discards wake no worker');
  });

  it('jobs left running by a crashed process are resumed at start, within their id bound and progress', async () => {
    const [d1, d2, d3, d4] = await exhausted(4);
    const [e1, e2, e3] = await exhausted(3, 'gone');
    // As a crashed process would leave them:
    // A (http_422) was created when d3 was the newest match and had handled d3 (progress mark d3);
    //   d3 has since come back to the DLQ and must not be touched again, nor d4 (newer than d3).
    // B (http_403) was created when e2 was the newest match and had not started; e3 is newer.
    assert.equal((await h.api('POST', `/v1/dlq/${d3}/replay`, { reason: 'by hand' })).status, 200);
    await waitFor(async () => {
      const r = await h.api('GET', `/v1/dlq/${d3}`);
      return r.status === 200 && r.body.attempt_log.length === 2;
    }, 5000, 'd3 exhausted again');
    const now = Date.now();
    const job = (id: string, filters: object, total: number, processed: number) => ({
      id,
      workspace_id: 'ws_default',
      action: 'discard' as const,
      filters: JSON.stringify(filters),
      reason: 'resumed',
      status: 'running' as const,
      total,
      processed,
      actor: 'key:test',
      created_at: now,
      updated_at: now,
      finished_at: null,
    });
    const jobA = 'job_01ARZ3NDEKTSV4RRFFQ69G5FA1';
    const jobB = 'job_01ARZ3NDEKTSV4RRFFQ69G5FA2';
    await h.herald.services.store.db
      .insertInto('dlq_jobs')
      .values([job(jobA, { error: 'http_422', max_id: d3, below: d3 }, 3, 1), job(jobB, { error: 'http_403', max_id: e2 }, 2, 0)])
      .execute();
    h = await h.restart();

    const a = await waitJob(h, jobA);
    const b = await waitJob(h, jobB);
    assert.deepEqual([a.status, a.processed, b.status, b.processed], ['completed', 3, 'completed', 2]);
    assert.deepEqual(await allDlqIds(h), desc([d3!, d4!, e3!]));
    const rows = await h.herald.services.store.db.selectFrom('deliveries').select(['id', 'status', 'reason']).where('id', 'in', [d1!, d2!, e1!, e2!]).execute();
    assert.equal(rows.length, 4);
    assert.ok(rows.every((r) => r.status === 'discarded' && r.reason === 'resumed'));
  });
});
