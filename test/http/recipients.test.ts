// Recipients and their preferences through the real HTTP API, on each store (SQLite in a temporary
// data dir, PostgreSQL on a fresh schema): PUT answers 201 for a new recipient and 200 for a
// replaced one; GET /v1/recipients pages by id with a cursor and filters with q; PATCH of the
// preferences is a JSON merge patch whose concurrent uses never lose each other's changes.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request, startHeraldOn, type ApiResponse, type TestHerald } from '../helpers/herald.ts';

const MERGE_PATCH = { 'content-type': 'application/merge-patch+json' };

function assertProblem(r: ApiResponse, status: number, code: string, paths: string[] = []): void {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(r.body.code, code, r.text);
  const got = (r.body.errors ?? []).map((e: { path: string }) => e.path);
  for (const p of paths) assert.ok(got.includes(p), `expected an error at ${p}; got ${JSON.stringify(got)}`);
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`recipients and preferences (${dialect})`, () => {
    let h: TestHerald;
    let readKey: string;
    let sendKey: string;
    const as = (key: string) => (method: string, path: string, body?: unknown, headers?: Record<string, string>) => request(h.url, key, method, path, body, headers);
    const patch = (id: string, body: unknown, headers: Record<string, string> = MERGE_PATCH) =>
      h.api('PATCH', `/v1/recipients/${id}/preferences`, typeof body === 'string' ? body : JSON.stringify(body), headers);

    before(async () => {
      h = await startHeraldOn(dialect);
      const mk = async (scopes: string[]) => (await h.api('POST', '/v1/keys', { name: scopes.join('+'), scopes })).body.key as string;
      readKey = await mk(['read']);
      sendKey = await mk(['send']);
    });
    after(async () => {
      await h?.stop();
    });

    describe('PUT: 201 created, 200 replaced', () => {
      it('answers 201 for a new id and 200 for an existing one, keeping created_at', async () => {
        const first = await as(sendKey)('PUT', '/v1/recipients/new-1', { name: 'New', webhook: { url: 'https://example.com/h' } });
        assert.equal(first.status, 201, first.text);
        assert.equal(first.body.id, 'new-1');
        assert.match(first.body.webhook.secret, /^whsec_/);
        const again = await as(sendKey)('PUT', '/v1/recipients/new-1', { name: 'Renamed', webhook: { url: 'https://example.com/h' } });
        assert.equal(again.status, 200, again.text);
        assert.equal(again.body.name, 'Renamed');
        assert.equal(again.body.created_at, first.body.created_at);
        assert.equal(again.body.webhook.secret, first.body.webhook.secret, 'the secret is kept');
        assert.ok(again.body.updated_at >= first.body.updated_at);
        // A deleted recipient PUT again is new again.
        assert.equal((await h.api('DELETE', '/v1/recipients/new-1')).status, 204);
        assert.equal((await h.api('PUT', '/v1/recipients/new-1', {})).status, 201);
      });

      it('of concurrent first PUTs of one id exactly one is 201, and all agree on created_at', async () => {
        const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => h.api('PUT', '/v1/recipients/race-1', { name: `writer ${i}` })));
        assert.deepEqual(answers.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 201]);
        const stored = (await h.api('GET', '/v1/recipients/race-1')).body;
        for (const r of answers) assert.equal(r.body.created_at, stored.created_at);
      });
    });

    describe('GET /v1/recipients', () => {
      // Ids chosen to sort differently bytewise and in a locale's collation; the listing promises a
      // stable order, each page strictly after the previous one.
      const ids = Array.from({ length: 23 }, (_, i) => `list-${String.fromCharCode(97 + (i % 26))}${i}`).concat(['list-A', 'list-Z.9', 'list-_x', 'list-a+b@c']);
      before(async () => {
        for (const [i, id] of ids.entries()) {
          const r = await h.api('PUT', `/v1/recipients/${encodeURIComponent(id)}`, {
            name: i % 3 === 0 ? `Kim Minji ${i}` : `Person ${i}`,
            email: i % 2 === 0 ? `user${i}@Example.COM` : null,
            webhook: { url: `https://example.com/${i}`, secret: 'whsec_' + Buffer.alloc(24, i).toString('base64') },
          });
          assert.equal(r.status, 201, r.text);
        }
      });

      const listAll = async (query: string, limit: number) => {
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const r: ApiResponse = await as(readKey)('GET', `/v1/recipients?limit=${limit}${query}${cursor ? `&cursor=${cursor}` : ''}`);
          assert.equal(r.status, 200, r.text);
          assert.ok(r.body.data.length <= limit);
          if (r.body.next_cursor !== null) assert.equal(r.body.data.length, limit, 'only the last page is short');
          seen.push(...r.body.data.map((x: { id: string }) => x.id));
          cursor = r.body.next_cursor;
          assert.ok(++pages < 100);
        } while (cursor);
        return seen;
      };

      it('pages through every recipient once, in one stable order, with any page size', async () => {
        const whole = await listAll('', 200);
        const mine = whole.filter((id) => id.startsWith('list-'));
        assert.deepEqual([...mine].sort(), [...ids].sort(), 'every recipient, none twice');
        assert.equal(new Set(whole).size, whole.length);
        for (const limit of [1, 4, 7]) assert.deepEqual(await listAll('', limit), whole, `limit=${limit}: no duplicates, no gaps, same order`);
        // The default page is 50.
        const first = await h.api('GET', '/v1/recipients');
        assert.equal(first.body.data.length, Math.min(50, whole.length));
      });

      it('shows each recipient as GET of one does, secrets masked', async () => {
        const r = await h.api('GET', '/v1/recipients?q=list-a0&limit=1');
        assert.equal(r.status, 200, r.text);
        const one = (await h.api('GET', '/v1/recipients/list-a0')).body;
        assert.deepEqual(r.body.data[0], one);
        assert.match(one.webhook.secret, /…$/);
      });

      it('q keeps recipients whose id, name or email contains it, ignoring case', async () => {
        const q = async (text: string) => (await listAll(`&q=${encodeURIComponent(text)}`, 3)).filter((id) => id.startsWith('list-')).sort();
        const expect = (pred: (id: string, i: number) => boolean) => ids.filter((id, i) => pred(id, i)).sort();
        assert.deepEqual(await q('list-b'), expect((id) => id.toLowerCase().includes('list-b')), 'id substring, any case');
        assert.deepEqual(await q('kim minji'), expect((_, i) => i % 3 === 0), 'name, other case');
        assert.deepEqual(await q('@example.com'), expect((_, i) => i % 2 === 0), 'email domain, other case');
        assert.deepEqual(await q('user1'), expect((_, i) => i % 2 === 0 && String(i).startsWith('1')), 'email prefix');
        // LIKE's wildcards are plain characters in q.
        assert.deepEqual(await q('list-_'), ['list-_x']);
        assert.deepEqual(await q('%'), []);
        assert.deepEqual(await q('+b@'), ['list-a+b@c']);
        assert.deepEqual(await q('no such recipient'), []);
      });

      it('refuses bad limits and cursors, and needs the read scope', async () => {
        for (const limit of ['0', '201', '-1', 'abc', '1.5']) assertProblem(await h.api('GET', `/v1/recipients?limit=${limit}`), 422, 'validation_failed', ['querystring.limit']);
        assertProblem(await h.api('GET', '/v1/recipients?q='), 422, 'validation_failed', ['querystring.q']);
        assertProblem(await h.api('GET', `/v1/recipients?q=${'x'.repeat(201)}`), 422, 'validation_failed', ['querystring.q']);
        assertProblem(await h.api('GET', '/v1/recipients?offset=10'), 422, 'validation_failed', ['querystring.offset']);
        const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
        for (const cursor of ['not a cursor!', b64('c1:ntf_01M80SGJJ90MBTNVTV0KVD1QYY'), b64("k1:x' OR '1'='1"), b64('k1:'), b64('k2:list-a0')]) {
          assertProblem(await h.api('GET', `/v1/recipients?cursor=${encodeURIComponent(cursor)}`), 400, 'invalid_cursor');
        }
        assertProblem(await as(sendKey)('GET', '/v1/recipients'), 403, 'forbidden');
        assertProblem(await request(h.url, undefined, 'GET', '/v1/recipients'), 401, 'unauthorized');
      });
    });

    describe('PATCH /v1/recipients/{id}/preferences', () => {
      before(async () => {
        for (const id of ['pat', 'quinn', 'race', 'mixed']) assert.equal((await h.api('PUT', `/v1/recipients/${id}`, { name: id, timezone: 'Europe/Paris' })).status, 201);
        for (let i = 0; i < 12; i++) {
          const r = await h.api('PUT', `/v1/kinds/k${i}`, { mandatory: false, channels: null, routing: 'all', rate_limits: null });
          assert.equal(r.status, 201, r.text);
        }
      });

      it('changes one field at a time: the others stay', async () => {
        const qh = await patch('pat', { quiet_hours: { start: '22:00', end: '07:00' } });
        assert.equal(qh.status, 200, qh.text);
        assert.deepEqual([qh.body.kinds, qh.body.quiet_hours, qh.body.timezone], [{}, { start: '22:00', end: '07:00' }, 'Europe/Paris']);
        assert.equal(typeof qh.body.updated_at, 'string');

        const k = await patch('pat', { kinds: { marketing: { allowed: false } } });
        assert.equal(k.status, 200, k.text);
        assert.deepEqual([k.body.kinds, k.body.quiet_hours], [{ marketing: { allowed: false } }, { start: '22:00', end: '07:00' }]);

        // Nested objects merge: a kind's channels beside its allowed; quiet hours' start alone.
        const nested = await patch('pat', { kinds: { marketing: { channels: ['email'] }, transactional: { channels: ['sms', 'email'] } }, quiet_hours: { start: '23:30' } });
        assert.equal(nested.status, 200, nested.text);
        assert.deepEqual(nested.body.kinds, { marketing: { allowed: false, channels: ['email'] }, transactional: { channels: ['sms', 'email'] } });
        assert.deepEqual(nested.body.quiet_hours, { start: '23:30', end: '07:00' });
        assert.deepEqual((await as(readKey)('GET', '/v1/recipients/pat/preferences')).body, nested.body, 'what PATCH answers is what is stored');
      });

      it('null removes a member; a removed kinds or quiet_hours takes its default', async () => {
        const one = await patch('pat', { kinds: { marketing: { allowed: null }, transactional: null } });
        assert.equal(one.status, 200, one.text);
        assert.deepEqual(one.body.kinds, { marketing: { channels: ['email'] } });
        const none = await patch('pat', { kinds: null, quiet_hours: null });
        assert.equal(none.status, 200, none.text);
        assert.deepEqual([none.body.kinds, none.body.quiet_hours], [{}, null]);
        // Arrays replace; an empty patch changes nothing but is a valid write.
        await patch('pat', { kinds: { k1: { channels: ['email', 'sms'] } } });
        assert.deepEqual((await patch('pat', { kinds: { k1: { channels: ['webhook'] } } })).body.kinds, { k1: { channels: ['webhook'] } });
        const empty = await patch('pat', {});
        assert.equal(empty.status, 200, empty.text);
        assert.deepEqual(empty.body.kinds, { k1: { channels: ['webhook'] } });
      });

      it('takes application/json as well as application/merge-patch+json, and nothing else', async () => {
        const json = await patch('quinn', { quiet_hours: { start: '01:00', end: '02:00' } }, { 'content-type': 'application/json' });
        assert.equal(json.status, 200, json.text);
        assert.deepEqual(json.body.quiet_hours, { start: '01:00', end: '02:00' });
        for (const type of ['application/json; charset=utf-8', 'application/merge-patch+json; charset=UTF-8']) {
          const r = await patch('quinn', { kinds: { marketing: { allowed: false } } }, { 'content-type': type });
          assert.equal(r.status, 200, `${type}: ${r.text}`);
          assertProblem(await patch('quinn', { kinds: { marketing: { allowed: 'no' } } }, { 'content-type': type }), 422, 'validation_failed', ['body.kinds.marketing.allowed']);
          assert.equal((await patch('quinn', { kinds: null }, { 'content-type': type })).status, 200);
        }
        assertProblem(await patch('quinn', '{"quiet_hours":null}', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type');
        assertProblem(await patch('quinn', '{"quiet_hours":', MERGE_PATCH), 400, 'malformed_json');
        // merge-patch+json is for PATCH only.
        assertProblem(await h.api('PUT', '/v1/recipients/quinn/preferences', '{"kinds":{},"quiet_hours":null}', MERGE_PATCH), 415, 'unsupported_media_type');
        assert.deepEqual((await h.api('GET', '/v1/recipients/quinn/preferences')).body.quiet_hours, { start: '01:00', end: '02:00' });
      });

      it('refuses a merged result PUT would refuse (422 naming the field) and changes nothing; 404 for an unknown recipient', async () => {
        const before = (await h.api('GET', '/v1/recipients/quinn/preferences')).body;
        // The patch is valid, the merged document is not.
        assertProblem(await patch('quinn', { quiet_hours: { end: '01:00' } }), 422, 'validation_failed', ['body.quiet_hours.end']);
        assertProblem(await patch('quinn', { quiet_hours: { start: null } }), 422, 'validation_failed', ['body.quiet_hours.start']);
        assertProblem(await patch('mixed', { quiet_hours: { start: '22:00' } }), 422, 'validation_failed', ['body.quiet_hours.end']);
        assertProblem(await patch('quinn', { kinds: { security: { allowed: false } } }), 422, 'validation_failed', ['body.kinds.security.allowed']);
        assertProblem(await patch('quinn', { kinds: { nope: { allowed: true } } }), 422, 'validation_failed', ['body.kinds.nope']);
        assertProblem(await patch('quinn', { kinds: { 'Bad Kind': {} } }), 422, 'validation_failed', ['body.kinds.Bad Kind']);
        // The patch itself is refused by its schema.
        assertProblem(await patch('quinn', { kinds: { marketing: { channels: [] } } }), 422, 'validation_failed', ['body.kinds.marketing.channels']);
        assertProblem(await patch('quinn', { kinds: { marketing: { channels: ['pigeon'] } } }), 422, 'validation_failed', ['body.kinds.marketing.channels.0']);
        assertProblem(await patch('quinn', { quiet_hours: { start: '25:00' } }), 422, 'validation_failed', ['body.quiet_hours.start']);
        assertProblem(await patch('quinn', { timezone: 'UTC' }), 422, 'validation_failed', ['body.timezone']);
        assertProblem(await patch('quinn', '[]'), 422, 'validation_failed', ['body']);
        assert.deepEqual((await h.api('GET', '/v1/recipients/quinn/preferences')).body, before, 'nothing changed');
        assertProblem(await patch('nobody', { quiet_hours: null }), 404, 'not_found');
        assertProblem(await request(h.url, readKey, 'PATCH', '/v1/recipients/quinn/preferences', '{}', MERGE_PATCH), 403, 'forbidden');
        assert.equal((await h.api('GET', '/v1/recipients/nobody/preferences')).status, 404, 'nothing created for an unknown recipient');
      });

      it('a removal of a kind the patch names needs no such kind; a kind made mandatory later does not block other changes', async () => {
        // Stored before k11 became mandatory: allowed false (PUT is the way to set it).
        assert.equal((await h.api('PUT', '/v1/recipients/mixed/preferences', { kinds: { k11: { allowed: false } }, quiet_hours: null })).status, 200);
        assert.equal((await h.api('PUT', '/v1/kinds/k11', { mandatory: true, channels: null, routing: 'all', rate_limits: null })).status, 200);
        const other = await patch('mixed', { quiet_hours: { start: '20:00', end: '21:00' }, kinds: { ghost: null } });
        assert.equal(other.status, 200, other.text);
        assert.deepEqual(other.body.kinds, { k11: { allowed: false } });
        // Naming the kind applies today's rules to its merged value.
        assertProblem(await patch('mixed', { kinds: { k11: { channels: ['email'] } } }), 422, 'validation_failed', ['body.kinds.k11.allowed']);
        assert.equal((await patch('mixed', { kinds: { k11: { allowed: null } } })).status, 200);
      });

      it('concurrent PATCHes of different fields are all kept', async () => {
        for (let round = 0; round < 3; round++) {
          assert.equal((await h.api('PUT', '/v1/recipients/race/preferences', { kinds: {}, quiet_hours: null })).status, 200);
          const answers = await Promise.all([
            ...Array.from({ length: 10 }, (_, i) => patch('race', { kinds: { [`k${i}`]: { allowed: i % 2 === 0, channels: ['email'] } } })),
            patch('race', { quiet_hours: { start: '22:00', end: '06:00' } }),
          ]);
          for (const r of answers) assert.equal(r.status, 200, r.text);
          const stored = (await h.api('GET', '/v1/recipients/race/preferences')).body;
          assert.deepEqual(stored.kinds, Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, { allowed: i % 2 === 0, channels: ['email'] }])), `round ${round}: every kind kept`);
          assert.deepEqual(stored.quiet_hours, { start: '22:00', end: '06:00' });
        }
      });

      it('is in the OpenAPI document with both media types', async () => {
        const spec = (await h.api('GET', '/openapi.json')).body;
        const op = spec.paths['/v1/recipients/{id}/preferences'].patch;
        assert.ok(op, 'PATCH is documented');
        assert.deepEqual(Object.keys(op.requestBody.content).sort(), ['application/json', 'application/merge-patch+json']);
        assert.ok(op.responses['200'] && op.responses['404'] && op.responses['422']);
        const list = spec.paths['/v1/recipients'].get;
        assert.deepEqual(list.parameters.map((p: { name: string }) => p.name).sort(), ['cursor', 'limit', 'q']);
        assert.ok(spec.paths['/v1/recipients/{id}'].put.responses['201']);
      });
    });
  });
}
