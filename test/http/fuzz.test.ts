// Property: whatever is POSTed to /v1/notifications, the answer is 202, 400, 409, 413, 415 or 422,
// never a server fault; refusals are problem+json with a code; every 202 is retrievable. On each
// store: SQLite in a temporary data dir, and PostgreSQL with DATABASE_URL on a fresh schema.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { request, startHeraldOn, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';

const SEND = '/v1/notifications';
const ALLOWED = new Set([202, 400, 409, 413, 415, 422]);
const KNOWN = ['r1', 'r2', 'r3', 'r.4@x', 'no-channel'];

/** Recipient ids: known ones, near misses, and arbitrary text. */
const recipientId = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...KNOWN) },
  { weight: 1, arbitrary: fc.constantFrom('ghost', 'R1', 'r1 ', '', "r1' OR '1'='1", 'r1\u0000', '__proto__') },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,130}$/) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
);

/** Text fields: mostly short text, sometimes hostile, sometimes the wrong type. */
const text = fc.oneof(
  { weight: 5, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '   ', 'x'.repeat(1001), '\u0000', '😀'.repeat(10)) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
);

/** `data`: anything, sometimes wrapped in many arrays (bodies nested too deeply must be 422, not 500). */
const data = fc.oneof(
  { weight: 4, arbitrary: fc.anything({ maxDepth: 4 }) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1, max: 200 }), fc.jsonValue({ maxDepth: 2 })).map(([n, v]) => Array.from({ length: n }).reduce<unknown>((acc) => [acc], v)) },
);

/** Bodies close to valid: every field optional, each either well-typed or not; rarely an unknown field. */
const nearValid = fc
  .tuple(
    fc.record(
      {
        to: fc.oneof({ weight: 3, arbitrary: recipientId }, { weight: 3, arbitrary: fc.array(recipientId, { minLength: 0, maxLength: 5 }) }, { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) }),
        kind: fc.oneof(fc.constantFrom('transactional', 'alert.v2', 'a_b-c'), fc.string({ maxLength: 70 }), fc.anything({ maxDepth: 1 })),
        title: text,
        body: text,
        data,
        channels: fc.oneof(fc.subarray(['webhook', 'email']), fc.array(fc.constantFrom('webhook', 'email', 'sms', ''), { maxLength: 3 }), fc.anything({ maxDepth: 1 })),
        metadata: fc.oneof(fc.dictionary(fc.string({ maxLength: 110 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }), fc.anything({ maxDepth: 2 })),
      },
      { requiredKeys: [] },
    ),
    fc.oneof({ weight: 6, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 10 }), fc.anything({ maxDepth: 1 })) }),
  )
  .map(([b, extra]) => (extra === null ? b : { ...b, [extra[0]]: extra[1] }));

const REACHABLE = KNOWN.filter((id) => id !== 'no-channel');

/** Valid bodies, so that the accept path itself is exercised. */
const valid = fc.record(
  {
    to: fc.oneof(fc.constantFrom(...REACHABLE), fc.uniqueArray(fc.constantFrom(...REACHABLE), { minLength: 1, maxLength: 4 })),
    title: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).map((s) => (s.trim() === '' ? `t${s}` : s)),
    body: fc.string({ unit: 'binary', maxLength: 200 }),
    kind: fc.stringMatching(/^[a-z0-9][a-z0-9_.-]{0,63}$/),
    data: fc.jsonValue({ maxDepth: 4 }),
    channels: fc.constant(['webhook']),
    metadata: fc.dictionary(fc.string({ maxLength: 100 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
  },
  { requiredKeys: ['to', 'title'] },
);

/** A valid body with one field replaced by anything at all. */
const mutated = fc
  .tuple(valid, fc.constantFrom('to', 'title', 'body', 'kind', 'data', 'channels', 'metadata', 'unknown'), fc.anything({ maxDepth: 3 }))
  .map(([b, field, v]) => ({ ...b, [field]: v }));

/** A request: a body as text, a content type, and maybe an Idempotency-Key. */
const requestArb = fc.record({
  raw: fc.oneof(
    { weight: 5, arbitrary: valid.map((b) => JSON.stringify(b)) },
    { weight: 4, arbitrary: mutated.map((b) => JSON.stringify(b)) },
    { weight: 4, arbitrary: nearValid.map((b) => JSON.stringify(b)) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
    // Deep nesting is built as text: JSON.stringify itself would overflow the stack on it.
    {
      weight: 1,
      arbitrary: fc
        .tuple(valid, fc.integer({ min: 1, max: 30_000 }), fc.constantFrom('data', 'metadata'))
        .map(([{ data: _d, metadata: _m, ...b }, n, field]) => {
          const deep = field === 'data' ? '['.repeat(n) + ']'.repeat(n) : `{"k":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`;
          return `{"${field}":${deep},${JSON.stringify(b).slice(1)}`;
        }),
    },
    { weight: 1, arbitrary: fc.tuple(valid.map((b) => JSON.stringify(b)), fc.nat()).map(([s, n]) => s.slice(0, n % (s.length + 1))) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
    { weight: 1, arbitrary: fc.constantFrom('{"to":"r1","title":"x","__proto__":{"p":1}}', '{"to":"r1","title":"x","data":{"constructor":{"prototype":{"p":1}}}}') },
  ),
  contentType: fc.oneof({ weight: 15, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/xml', 'application/json; charset=utf-8', 'application/x-www-form-urlencoded') }),
  // Mostly none; sometimes a reused key (replays, key_reused), sometimes a fresh one.
  idempotencyKey: fc.oneof(
    { weight: 6, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom('fuzz-a', 'fuzz-b') },
    { weight: 2, arbitrary: fc.stringMatching(/^[\x21-\x7e]{1,40}$/) },
  ),
});

/** Refusals the store decides (unknown or unreachable recipients, empty content), and exact replays. */
const semantic = fc.oneof(
  fc.tuple(valid, fc.constantFrom<unknown>('ghost', ['r1', 'ghost'], 'no-channel', ['r2', 'no-channel'])).map(([b, to]) => ({ raw: JSON.stringify({ ...b, to }), contentType: 'application/json', idempotencyKey: undefined })),
  fc.tuple(valid, fc.constantFrom('', ' ', '\n\t')).map(([b, blank]) => ({ raw: JSON.stringify({ ...b, title: blank, body: blank }), contentType: 'application/json', idempotencyKey: undefined })),
  fc.constant({ raw: JSON.stringify({ to: ['r1', 'r2'], title: 'the same request again' }), contentType: 'application/json', idempotencyKey: 'fuzz-replayed' as string | undefined }),
);

/** What an accepted send must satisfy (the API's documented rules), checked independently of the server's schema. */
function assertValidSend(b: Record<string, unknown>): void {
  const idOk = (x: unknown) => typeof x === 'string' && /^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$/.test(x);
  assert.ok(Object.keys(b).every((k) => ['to', 'kind', 'title', 'body', 'data', 'channels', 'metadata'].includes(k)), 'no unknown fields');
  assert.ok(idOk(b.to) || (Array.isArray(b.to) && b.to.length >= 1 && b.to.length <= 1000 && b.to.every(idOk)), 'to is an id or 1–1000 ids');
  assert.ok(b.title === undefined || (typeof b.title === 'string' && b.title.length <= 1000), 'title');
  assert.ok(b.body === undefined || (typeof b.body === 'string' && b.body.length <= 100_000), 'body');
  assert.ok(String(b.title ?? '').trim() !== '' || String(b.body ?? '').trim() !== '', 'a title or a body');
  assert.ok(b.kind === undefined || (typeof b.kind === 'string' && /^[a-z0-9][a-z0-9_.-]{0,63}$/.test(b.kind)), 'kind');
  assert.ok(depth(b) <= 64, 'the body nests at most 64 levels deep');
  assert.ok(!hasNul(b), 'no NUL character in any string or property name');
  assert.ok(b.metadata === undefined || (typeof b.metadata === 'object' && b.metadata !== null && !Array.isArray(b.metadata) && Object.keys(b.metadata).every((k) => k.length <= 100)), 'metadata keys of at most 100 characters');
}

/** Whether a string or property name anywhere in a JSON value contains U+0000. */
function hasNul(v: unknown): boolean {
  if (typeof v === 'string') return v.includes('\0');
  if (v === null || typeof v !== 'object') return false;
  return Object.entries(v).some(([k, x]) => k.includes('\0') || hasNul(x));
}

/** Nesting depth of a JSON value (a scalar is 0), computed without recursion. */
function depth(v: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[v, 1]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    max = Math.max(max, d);
    for (const y of Object.values(x)) stack.push([y, d + 1]);
  }
  return max;
}

for (const dialect of ['sqlite', 'postgres'] as const) describe(`fuzzing the send schema (${dialect})`, () => {
  let h: TestHerald;
  let rx: Receiver;

  before(async () => {
    rx = await startReceiver();
    h = await startHeraldOn(dialect);
    for (const id of KNOWN) {
      const body = id === 'no-channel' ? { name: 'nobody reachable' } : { webhook: { url: `${rx.url}/${id}` } };
      assert.equal((await h.api('PUT', `/v1/recipients/${encodeURIComponent(id)}`, body)).status, 201);
    }
  });

  after(async () => {
    await h?.stop();
    await rx?.close();
  });

  it('never answers 5xx; refusals are problems; every 202 is retrievable', async (t) => {
    const seen = new Map<string, number>();
    const tally = (k: string) => seen.set(k, (seen.get(k) ?? 0) + 1);
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 6, arbitrary: requestArb }, { weight: 1, arbitrary: semantic }), async ({ raw, contentType, idempotencyKey }) => {
        const headers: Record<string, string> = { 'content-type': contentType, ...(idempotencyKey && { 'idempotency-key': idempotencyKey }) };
        const r = await request(h.url, h.key, 'POST', SEND, raw, headers);
        assert.ok(ALLOWED.has(r.status), `status ${r.status}: ${r.text.slice(0, 300)}`);
        if (!contentType.startsWith('application/json')) assert.equal(r.status, 415, `a ${contentType} body is refused as such`);
        if (r.status !== 202) {
          assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
          assert.equal(typeof r.body.code, 'string');
          assert.equal(r.body.status, r.status);
          assert.equal(r.body.type, `urn:herald:problem:${r.body.code}`);
          tally(`${r.status} ${r.body.code}`);
          return;
        }
        const replayed = r.headers.get('idempotent-replayed') === 'true';
        tally(replayed ? '202 replayed' : '202');
        const got = await h.api('GET', `${SEND}/${encodeURIComponent(r.body.id)}`);
        assert.equal(got.status, 200, got.text);
        assert.deepEqual(got.body.deliveries.map((d: { id: string }) => d.id).sort(), r.body.deliveries.map((d: { id: string }) => d.id).sort());
        if (!replayed) {
          const sent = JSON.parse(raw);
          assertValidSend(sent);
          assert.deepEqual(got.body.data, sent.data === undefined ? null : sent.data);
          assert.deepEqual(got.body.metadata, sent.metadata === undefined ? null : sent.metadata);
          // Text is stored verbatim (ill-formed UTF-16 cannot survive UTF-8 storage).
          for (const f of ['title', 'body'] as const) if ((sent[f] ?? '').isWellFormed()) assert.equal(got.body[f], sent[f] ?? '');
          if (idempotencyKey) assert.equal(got.body.idempotency_key, idempotencyKey);
        }
      }),
      { numRuns: 300 },
    );
    t.diagnostic([...seen].sort().map(([k, v]) => `${k}: ${v}`).join(', '));
    assert.ok((seen.get('202') ?? 0) > 30, 'the generator produces enough valid sends to be meaningful');

    const ready = await h.api('GET', '/healthz/ready');
    assert.equal(ready.status, 200);
  });
});
