// Notification history: keyset paging newest first, filters, multi-recipient fan-out, and what
// deleting a recipient does to its unsent deliveries. On each store.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeOnStores, startHeraldOn, waitFor, type ApiResponse, type TestHerald } from '../helpers/herald.ts';
import { startGate, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { startSmtp, type SmtpSink } from '../helpers/smtp.ts';

const SEND = '/v1/notifications';

interface Listed {
  id: string;
  status: string;
  deliveries: { id: string; recipient: string; channel: string; status: string; reason: string | null }[];
}

/** Every page of a listing, following next_cursor; `between` runs after each page. */
async function allPages(h: TestHerald, query: string, between?: () => Promise<void>): Promise<{ pages: Listed[][]; ids: string[] }> {
  const pages: Listed[][] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 1000; i++) {
    const sep: string = query ? '&' : '';
    const r: ApiResponse = await h.api('GET', `${SEND}?${query}${cursor ? `${sep}cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200, r.text);
    pages.push(r.body.data);
    cursor = r.body.next_cursor;
    if (!cursor) break;
    await between?.();
  }
  assert.equal(cursor, null, 'paging ends');
  return { pages, ids: pages.flat().map((n) => n.id) };
}

const newestFirst = (ids: string[]) => [...ids].sort().reverse();

describeOnStores('notification history', (store) => {
  let h: TestHerald;
  let rx: Receiver;
  let smtp: SmtpSink;
  /** Every notification id this suite has created, in creation order. */
  const created: string[] = [];
  const byRecipient = new Map<string, string[]>();

  const send = async (body: Record<string, unknown>) => {
    const r = await h.api('POST', SEND, body);
    assert.equal(r.status, 202, r.text);
    created.push(r.body.id);
    for (const to of new Set([body.to].flat() as string[])) byRecipient.set(to, [...(byRecipient.get(to) ?? []), r.body.id]);
    return r;
  };

  before(async () => {
    // /bad/… answers 400: permanent failure, so those notifications end up "failed".
    rx = await startReceiver((req) => ({ status: req.path.startsWith('/bad/') ? 400 : 200 }));
    smtp = await startSmtp();
    h = await startHeraldOn(store, { HERALD_SMTP_URL: smtp.url });
    for (const id of ['ok1', 'ok2']) assert.equal((await h.api('PUT', `/v1/recipients/${id}`, { webhook: { url: `${rx.url}/ok/${id}` } })).status, 201);
    assert.equal((await h.api('PUT', '/v1/recipients/bad1', { webhook: { url: `${rx.url}/bad/bad1` } })).status, 201);
  });

  after(async () => {
    await h?.stop();
    await rx?.close();
    await smtp?.close();
  });

  it('pages newest first with a cursor: no duplicates, no gaps, unaffected by inserts between pages', async () => {
    for (let i = 0; i < 23; i++) await send({ to: i % 3 === 0 ? 'ok2' : 'ok1', title: `page test ${i}` });
    const before = newestFirst(created);
    const insertedMeanwhile: string[] = [];
    const { pages, ids } = await allPages(h, 'limit=5', async () => {
      insertedMeanwhile.push((await send({ to: 'ok1', title: 'inserted between pages' })).body.id);
    });
    assert.ok(pages.length >= 5, `several pages (${pages.length})`);
    for (const p of pages.slice(0, -1)) assert.equal(p.length, 5);
    assert.equal(new Set(ids).size, ids.length, 'no duplicates');
    assert.deepEqual(ids, before, 'exactly the notifications that existed, newest first');
    for (const id of insertedMeanwhile) assert.ok(!ids.includes(id));
    // A new listing starts with what was inserted meanwhile.
    const fresh = await h.api('GET', `${SEND}?limit=${insertedMeanwhile.length}`);
    assert.deepEqual(fresh.body.data.map((n: Listed) => n.id), newestFirst(insertedMeanwhile));
  });

  it('limit: default 50, 1 and 200 are the bounds, each page carries its deliveries', async () => {
    while (created.length < 60) await send({ to: 'ok1', title: `filler ${created.length}` });
    const all = newestFirst(created);
    const dflt = await h.api('GET', SEND);
    assert.equal(dflt.body.data.length, 50);
    assert.deepEqual(dflt.body.data.map((n: Listed) => n.id), all.slice(0, 50));
    assert.equal(typeof dflt.body.next_cursor, 'string');

    const one = await h.api('GET', `${SEND}?limit=1`);
    assert.deepEqual(one.body.data.map((n: Listed) => n.id), all.slice(0, 1));
    assert.equal(one.body.data[0].deliveries.length, 1);
    assert.equal(one.body.data[0].deliveries[0].recipient, 'ok1');

    const max = await h.api('GET', `${SEND}?limit=200`);
    assert.deepEqual(max.body.data.map((n: Listed) => n.id), all.slice(0, 200));
    assert.equal(max.body.next_cursor, null);
    for (const bad of ['0', '201']) assert.equal((await h.api('GET', `${SEND}?limit=${bad}`)).status, 422);

    // A last page that is exactly full says it is the last: no empty page after it.
    const exact = await h.api('GET', `${SEND}?limit=${all.length}`);
    assert.equal(exact.body.data.length, all.length);
    assert.equal(exact.body.next_cursor, null);
    const short = await h.api('GET', `${SEND}?limit=${all.length - 1}`);
    assert.equal(typeof short.body.next_cursor, 'string');
  });

  it('filters by recipient and by status, also across pages', async () => {
    const toBad: string[] = [];
    for (let i = 0; i < 4; i++) toBad.push((await send({ to: 'bad1', title: `will fail ${i}` })).body.id);
    const mixed = (await send({ to: ['ok2', 'bad1'], title: 'half and half' })).body.id;
    // Let every delivery settle.
    await waitFor(async () => {
      const r = await h.api('GET', `${SEND}?limit=200`);
      return r.body.data.every((n: Listed) => ['sent', 'failed', 'partial'].includes(n.status));
    }, 15_000, 'every notification to settle');

    const ok2 = await allPages(h, 'recipient=ok2&limit=3');
    assert.deepEqual(ok2.ids, newestFirst(byRecipient.get('ok2')!));
    for (const n of ok2.pages.flat()) assert.ok(n.deliveries.some((d) => d.recipient === 'ok2'));

    const failed = await allPages(h, 'status=failed&limit=2');
    assert.deepEqual(failed.ids, newestFirst(toBad));
    for (const n of failed.pages.flat()) assert.deepEqual(n.deliveries.map((d) => d.status), ['exhausted']);

    const partial = await allPages(h, 'status=partial');
    assert.deepEqual(partial.ids, [mixed]);

    const sent = await allPages(h, 'status=sent&limit=200');
    assert.deepEqual(sent.ids, newestFirst(created.filter((id) => id !== mixed && !toBad.includes(id))));

    const both = await allPages(h, 'recipient=bad1&status=failed');
    assert.deepEqual(both.ids, newestFirst(toBad));
    assert.deepEqual((await allPages(h, 'recipient=ok1&status=failed')).ids, []);
    assert.deepEqual((await allPages(h, 'recipient=nobody')).ids, []);
    assert.deepEqual((await allPages(h, 'status=accepted')).ids, []);
  });

  it('GET of an unknown notification is a 404 problem', async () => {
    for (const id of ['ntf_01M80SGJJ90MBTNVTV0KVD1QYY', 'nope', created[0]!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))]) {
      const r = await h.api('GET', `${SEND}/${id}`);
      assert.equal(r.status, 404);
      assert.equal(r.body.code, 'not_found');
    }
    assert.equal((await h.api('GET', `${SEND}/${created[0]}`)).status, 200);
  });

  it('a send to 1000 recipients makes one delivery per recipient and channel', async () => {
    const ids = Array.from({ length: 1000 }, (_, i) => `m${String(i).padStart(4, '0')}`);
    const withEmail = new Set(['m0000', 'm0001', 'm0002']);
    for (let i = 0; i < ids.length; i += 50) {
      await Promise.all(
        ids.slice(i, i + 50).map(async (id) => {
          const r = await h.api('PUT', `/v1/recipients/${id}`, { webhook: { url: `${rx.url}/ok/${id}` }, ...(withEmail.has(id) && { email: `${id}@example.com` }) });
          assert.equal(r.status, 201, r.text);
        }),
      );
    }
    const r = await send({ to: ids, title: 'to everyone' });
    const pairs = r.body.deliveries.map((d: { recipient: string; channel: string }) => `${d.recipient}/${d.channel}`);
    assert.equal(pairs.length, 1003);
    assert.equal(new Set(pairs).size, 1003);
    assert.equal(new Set(r.body.deliveries.map((d: { id: string }) => d.id)).size, 1003);
    for (const id of ids) assert.ok(pairs.includes(`${id}/webhook`), id);
    for (const id of withEmail) assert.ok(pairs.includes(`${id}/email`), id);
    for (const d of r.body.deliveries) assert.equal(d.status, 'pending');

    const stored = await h.api('GET', `${SEND}/${r.body.id}`);
    assert.equal(stored.status, 200);
    assert.deepEqual(stored.body.deliveries.map((d: { id: string }) => d.id).sort(), r.body.deliveries.map((d: { id: string }) => d.id).sort());

    const done = await waitFor(async () => {
      const g = await h.api('GET', `${SEND}/${r.body.id}`);
      return g.body.status === 'sent' ? g : undefined;
    }, 30_000, 'the fan-out to be sent');
    for (const d of done.body.deliveries) assert.equal(d.status, 'sent');
    const webhookIds = new Set(rx.received.map((x) => String(x.headers['webhook-id'])));
    for (const d of r.body.deliveries.filter((x: { channel: string }) => x.channel === 'webhook')) assert.ok(webhookIds.has(d.id));
    assert.equal(smtp.messages.filter((m) => m.raw.includes('to everyone')).length, 3);

    // Duplicates in `to` count once.
    const dup = await send({ to: ['m0010', 'm0011', 'm0010', 'm0011'], title: 'twice' });
    assert.deepEqual(dup.body.deliveries.map((d: { recipient: string }) => d.recipient).sort(), ['m0010', 'm0011']);

    // Explicit channels: a requested channel a recipient has no address on is a skipped delivery.
    const explicit = await send({ to: ['m0000', 'm0005'], title: 'explicit', channels: ['webhook', 'email'] });
    const view = Object.fromEntries(explicit.body.deliveries.map((d: { recipient: string; channel: string }) => [`${d.recipient}/${d.channel}`, d]));
    assert.equal(Object.keys(view).length, 4);
    assert.equal(view['m0000/webhook'].status, 'pending');
    assert.equal(view['m0000/email'].status, 'pending');
    assert.equal(view['m0005/webhook'].status, 'pending');
    assert.equal(view['m0005/email'].status, 'skipped');
    assert.equal(view['m0005/email'].reason, 'no_address');
  });
});

describeOnStores('deleting a recipient', (store) => {
  let h: TestHerald;
  let rx: Receiver;
  let gate: Awaited<ReturnType<typeof startGate>>;

  before(async () => {
    // /retry/… answers 500: the delivery waits (failed) for a retry an hour away.
    rx = await startReceiver((req) => ({ status: req.path.startsWith('/retry/') ? 500 : 200 }));
    gate = await startGate();
    // One webhook slot: while the gate holds one attempt, every other delivery stays pending.
    h = await startHeraldOn(store, { HERALD_CONCURRENCY: 'webhook:1', HERALD_RETRY_SCHEDULE: '1h' });
  });

  after(async () => {
    gate?.release();
    await h?.stop();
    await rx?.close();
    await gate?.close();
  });

  it('erases it (GET 404) and skips its pending and failed deliveries with reason recipient_deleted', async () => {
    const put = async (id: string, url: string) => assert.equal((await h.api('PUT', `/v1/recipients/${id}`, { name: `Name of ${id}`, email: `${id}@example.com`, webhook: { url } })).status, 201);
    await put('waiter', `${rx.url}/retry/waiter`);
    await put('blocker', `${gate.url}/blocker`);
    await put('victim', `${rx.url}/victim`);
    await put('other', `${rx.url}/other`);

    // A delivery that failed and waits for its retry.
    const waiting = await h.api('POST', SEND, { to: 'waiter', title: 'will wait' });
    await waitFor(async () => (await h.api('GET', `${SEND}/${waiting.body.id}`)).body.deliveries[0].status === 'failed', 10_000, 'a failed delivery');

    // Hold the only slot, then queue deliveries that cannot start.
    const blocking = await h.api('POST', SEND, { to: 'blocker', title: 'holds the slot' });
    await waitFor(() => gate.arrived.length === 1, 10_000, 'the blocking attempt');
    const toVictim: ApiResponse[] = [];
    for (let i = 0; i < 3; i++) toVictim.push(await h.api('POST', SEND, { to: 'victim', title: `to victim ${i}` }));
    const shared = await h.api('POST', SEND, { to: ['victim', 'other'], title: 'shared' });
    for (const r of [...toVictim, shared]) for (const d of r.body.deliveries) assert.equal(d.status, 'pending');

    for (const id of ['victim', 'waiter']) {
      const del = await h.api('DELETE', `/v1/recipients/${id}`);
      assert.equal(del.status, 204, del.text);
      const gone = await h.api('GET', `/v1/recipients/${id}`);
      assert.equal(gone.status, 404);
      assert.equal(gone.body.code, 'not_found');
      assert.equal((await h.api('DELETE', `/v1/recipients/${id}`)).status, 404);
    }

    for (const r of [...toVictim, waiting]) {
      const n = await h.api('GET', `${SEND}/${r.body.id}`);
      assert.equal(n.body.status, 'skipped');
      const d = n.body.deliveries[0];
      assert.equal(d.status, 'skipped');
      assert.equal(d.reason, 'recipient_deleted');
      assert.ok(d.completed_at);
      assert.equal(d.next_attempt_at, null);
    }
    const beforeRelease = await h.api('GET', `${SEND}/${shared.body.id}`);
    const victimPart = beforeRelease.body.deliveries.find((d: { recipient: string }) => d.recipient === 'victim');
    assert.equal(victimPart.status, 'skipped');
    assert.equal(victimPart.reason, 'recipient_deleted');

    gate.release();
    const settled = await waitFor(async () => {
      const n = await h.api('GET', `${SEND}/${shared.body.id}`);
      return n.body.status === 'sent' ? n : undefined;
    }, 10_000, 'the shared notification to finish');
    const otherPart = settled.body.deliveries.find((d: { recipient: string }) => d.recipient === 'other');
    assert.equal(otherPart.status, 'sent');
    assert.equal((await h.api('GET', `${SEND}/${blocking.body.id}`)).body.status, 'sent');

    // Nothing reached the deleted recipient, and nothing will: its deliveries stay skipped.
    assert.equal(rx.received.filter((x) => x.path === '/victim').length, 0);
    for (const r of toVictim) assert.equal((await h.api('GET', `${SEND}/${r.body.id}`)).body.deliveries[0].status, 'skipped');
    // Its id is unknown from now on; the history keeps only the id.
    const again = await h.api('POST', SEND, { to: 'victim', title: 'after deletion' });
    assert.equal(again.status, 422);
    assert.equal(again.body.code, 'unknown_recipients');
    const listed = await h.api('GET', `${SEND}?recipient=victim`);
    assert.equal(listed.body.data.length, 4);
    assert.doesNotMatch(listed.text, /victim@example\.com|Name of victim/);
  });
});
