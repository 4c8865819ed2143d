// The tenant-isolation matrix, generated from the OpenAPI document, on both stores.
//
// Organization B (the default organization: its admin key and its owner) holds one resource of
// every kind, each carrying a marker string. Principals of organization A (a user of each role and
// a key of each scope) then call every operation of the document:
// - with B's ids in the path (and, where an operation takes ids in its body, in the body), and again
//   with fresh ids of the same shape that exist nowhere: the two answers must be the same (status
//   and problem code), so nothing tells A that B's resource exists; for A's owner and admin key,
//   an operation on a resource that is not an upsert answers 404 (an API key on the user-only
//   `/v1/orgs` routes: 403, as docs/accounts.md says);
// - every list with B's values in its filters and B's own cursor.
// No answer to A ever contains B's marker, and afterwards every read of B answers what it answered
// before A started.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describeOnStores, request, startHeraldOn, waitFor, type ApiResponse, type TestHerald } from '../helpers/herald.ts';
import { startSmtp, type SmtpSink } from '../helpers/smtp.ts';

const PASSWORD = 'a long enough passphrase';
const OWNER_B = { email: 'owner-b@example.com', password: PASSWORD };

interface Operation {
  method: string;
  path: string;
  query: string[];
}

/** Operations left out, and why. */
const OUT_OF_SCOPE: Record<string, string> = {
  'POST /hooks/{*}': 'ingest: the signature authenticates, no principal',
  'GET /v1/auth/oauth/{provider}': 'sign-in start: no principal, no organization',
  'GET /v1/auth/oauth/{provider}/callback': 'sign-in callback: no principal',
  'POST /v1/invitations/{token}/accept': 'the token is the credential (bound to the invited address, tested in invitations.test.ts)',
  'GET /v1/realtime': 'WebSocket upgrade (tenant checks in test/realtime)',
  'GET /v1/realtime/sse': 'a stream that stays open: it would hold the matrix forever (the same token checks as the WebSocket form, test/realtime/sse.test.ts and gateway.test.ts)',
};

/** Upserts: with an id A does not have, they create A's own resource (B's stays untouched). */
const UPSERTS = new Set([
  'PUT /v1/recipients/{id}', 'PUT /v1/kinds/{kind}', 'PUT /v1/templates/{key}', 'PUT /v1/topics/{key}',
  'PUT /v1/consumers/{name}', 'PUT /v1/sources/{id}',
  // Named providers are one per organization, not ids: A reads and writes its own.
  'GET /v1/providers/{provider}', 'DELETE /v1/providers/{provider}', 'POST /v1/providers/{provider}/test',
]);

const ULID = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** An id of the same shape as `id` that exists nowhere. */
const FRESH = new Map<string, string>();
function fresh(id: string): string {
  if (!FRESH.has(id)) FRESH.set(id, freshId(id));
  return FRESH.get(id)!;
}
function freshId(id: string): string {
  const m = /^([a-z]+_)[0-9A-Z]{26}$/.exec(id);
  if (m) return m[1] + Array.from(randomBytes(26), (b) => ULID[b % 32]).join('');
  return `nx${randomBytes(4).toString('hex')}`;
}

describeOnStores('tenant isolation: organization A against B, every operation of the OpenAPI document', (store) => {
  let h: TestHerald;
  let smtp: SmtpSink;
  const MARK = `tenantb${randomBytes(6).toString('hex')}`;
  /** Names B chooses (ids in paths are echoed in answers: they do not carry MARK). */
  const NAME = () => `b${randomBytes(5).toString('hex')}`;
  /** B's ids by path parameter (resolved per path below). */
  const b: Record<string, string> = {};
  let ownerB: string;
  let orgA: string;
  const a: Record<string, string> = {};

  const asB = (method: string, path: string, body?: unknown) => request(h.url, path.startsWith('/v1/orgs') ? ownerB : h.key, method, path, body);

  before(async () => {
    smtp = await startSmtp();
    h = await startHeraldOn(store, {
      HERALD_ADMIN_EMAIL: OWNER_B.email, HERALD_ADMIN_PASSWORD: OWNER_B.password, HERALD_SIGNUP: 'open',
      HERALD_SMTP_URL: smtp.url, HERALD_PUBLIC_URL: 'http://herald.test',
    });
    const ok = (r: ApiResponse, what: string) => {
      assert.ok(r.status >= 200 && r.status < 300, `${what}: ${r.status} ${r.text}`);
      return r.body;
    };
    ownerB = ok(await request(h.url, undefined, 'POST', '/v1/auth/login', OWNER_B), 'owner B signs in').access_token;
    b.org = ok(await request(h.url, ownerB, 'GET', '/v1/auth/me'), 'me').organization.id;

    // --- B's resources, each carrying MARK
    b.recipient = NAME();
    ok(await asB('PUT', `/v1/recipients/${b.recipient}`, { name: MARK, email: `${MARK}@example.com`, webhook: { url: 'http://127.0.0.1:9/hook' } }), 'recipient');
    b.device = ok(await asB('POST', `/v1/recipients/${b.recipient}/devices`, { platform: 'fcm', token: `fcm-${MARK}` }), 'device').id;
    b.template = NAME();
    ok(await asB('PUT', `/v1/templates/${b.template}`, { variants: [{ locale: 'en', title: MARK, body: MARK }] }), 'template');
    b.topic = NAME();
    ok(await asB('PUT', `/v1/topics/${b.topic}`, { name: MARK }), 'topic');
    ok(await asB('POST', `/v1/topics/${b.topic}/members`, { add: [b.recipient] }), 'topic member');
    b.kind = NAME();
    ok(await asB('PUT', `/v1/kinds/${b.kind}`, { mandatory: false, channels: ['webhook'], routing: 'all', rate_limits: null }), 'kind');
    b.key = ok(await asB('POST', '/v1/keys', { name: MARK, scopes: ['read'] }), 'key').id;
    // A webhook to a closed port: exhausted after the test retry schedule, so B has a DLQ entry.
    b.notification = ok(await asB('POST', '/v1/notifications', { to: b.recipient, title: MARK, body: MARK }), 'notification').id;
    await asB('POST', '/v1/notifications', { to: b.recipient, title: `${MARK} 2` });
    b.deliveryId = (await waitFor(async () => (await asB('GET', '/v1/dlq')).body.data?.[0], 30_000, "B's DLQ entry")).id;
    b.job = ok(await asB('POST', '/v1/dlq/bulk-discard', { reason: MARK, channel: 'email', confirm: true }), 'DLQ job').job.id;
    b.source = NAME();
    ok(await asB('PUT', `/v1/sources/${b.source}`, { path: `/${MARK}/in`, provider: 'none', unsigned: true }), 'source');
    b.subscription = ok(await asB('POST', '/v1/subscriptions', { path_pattern: `/${MARK}/**`, action: { forward: { url: `http://127.0.0.1:9/${MARK}` } } }), 'subscription').subscription.id;
    b.consumer = NAME();
    ok(await asB('PUT', `/v1/consumers/${b.consumer}`, { filter: { path: `/${MARK}/*` }, start: 'earliest' }), 'consumer');
    for (let i = 0; i < 2; i++) ok(await request(h.url, undefined, 'POST', `/hooks/${MARK}/in`, { mark: MARK, i }), 'webhook event');
    b.event = (await waitFor(async () => (await asB('GET', `/v1/events?source=${b.source}`)).body.data?.[0], 10_000, "B's event")).id;
    b.invitation = ok(await asB('POST', `/v1/orgs/${b.org}/invitations`, { email: `${MARK}@example.com`, role: 'viewer' }), 'invitation').id;
    ok(await asB('PUT', `/v1/orgs/${b.org}/github`, { org: MARK.slice(0, 30), default_role: 'viewer' }), 'github link');
    ok(await asB('PUT', '/v1/providers/smtp', { config: { url: 'smtp://127.0.0.1:9', from: `${MARK}@example.com` } }), 'smtp provider');
    ok(await asB('PUT', '/v1/settings', { operator_webhook: { url: `https://example.com/${MARK}` } }), 'settings');
    b.user = ok(await request(h.url, ownerB, 'GET', '/v1/auth/me'), 'me').user.id;

    // --- organization A: alice owns it (registering made it), vic is a viewer, two keys
    const reg = async (name: string) => {
      ok(await request(h.url, undefined, 'POST', '/v1/auth/register', { email: `${name}@example.com`, password: PASSWORD, name }), `register ${name}`);
      return ok(await request(h.url, undefined, 'POST', '/v1/auth/login', { email: `${name}@example.com`, password: PASSWORD }), `login ${name}`);
    };
    const alice = await reg('alice');
    a.owner = alice.access_token;
    orgA = alice.organization.id ?? alice.organization;
    assert.notEqual(orgA, b.org);
    for (const role of ['admin', 'member', 'viewer']) {
      const u = await reg(`a-${role}`);
      const id = ok(await request(h.url, u.access_token, 'GET', '/v1/auth/me'), `${role} me`).user.id;
      ok(await request(h.url, a.owner, 'PUT', `/v1/orgs/${orgA}/members/${id}`, { role }), `${role} joins A`);
      a[role] = ok(await request(h.url, u.access_token, 'POST', '/v1/auth/switch', { org: orgA }), `${role} switches to A`).access_token;
    }
    for (const scope of ['admin', 'send', 'read']) {
      a[`${scope} key`] = ok(await request(h.url, a.owner, 'POST', '/v1/keys', { name: `a-${scope}`, scopes: [scope] }), `A ${scope} key`).key;
    }
  });
  after(async () => {
    await h?.stop();
    await smtp?.close();
  });

  /** B's value for parameter `name` of `path`. */
  function bValue(path: string, name: string): string | undefined {
    const seg = path.split('/');
    const before = seg[seg.indexOf(`{${name}}`) - 1];
    const byParent: Record<string, string | undefined> = {
      recipients: b.recipient, devices: b.device, templates: b.template, topics: b.topic, kinds: b.kind, keys: b.key,
      notifications: b.notification, dlq: b.deliveryId, jobs: b.job, sources: b.source, subscriptions: b.subscription,
      consumers: b.consumer, events: b.event, orgs: b.org, members: b.user, invitations: b.invitation, providers: 'smtp',
      inbox: `inb_${'0'.repeat(26)}`, identities: 'github', conversations: b.recipient,
    };
    return byParent[before!];
  }

  /** A body that passes validation, so the request reaches the organization check. */
  function bodyFor(op: string, ids: Record<string, string>): unknown {
    const bodies: Record<string, unknown> = {
      'PUT /v1/recipients/{id}': { name: 'from A' },
      'POST /v1/recipients/{id}/devices': { platform: 'fcm', token: 'from-a' },
      'PUT /v1/recipients/{id}/preferences': { kinds: {}, quiet_hours: null },
      'PATCH /v1/recipients/{id}/preferences': { quiet_hours: null },
      'PUT /v1/templates/{key}': { variants: [{ locale: 'en', title: 'A', body: 'A' }] },
      'POST /v1/templates/{key}/render': { data: {} },
      'PUT /v1/topics/{key}': { name: 'from A' },
      'POST /v1/topics/{key}/members': { add: ['someone'] },
      'PUT /v1/kinds/{kind}': { mandatory: false, channels: ['webhook'], routing: 'all', rate_limits: null },
      'POST /v1/dlq/{deliveryId}/replay': { reason: 'from A' },
      'POST /v1/dlq/{deliveryId}/discard': { reason: 'from A' },
      'PUT /v1/sources/{id}': { path: `/from-a/${randomBytes(4).toString('hex')}`, provider: 'none', unsigned: true },
      'PUT /v1/consumers/{name}': { filter: { path: '/from-a/*' } },
      'POST /v1/consumers/{name}/ack': { ids: [ids.event ?? b.event] },
      'POST /v1/consumers/{name}/nack': { ids: [ids.event ?? b.event] },
      'POST /v1/events/{id}/replay': { reason: 'from A' },
      'POST /v1/providers/{provider}/test': { to: 'someone' },
      'PATCH /v1/orgs/{org}': { name: 'from A' },
      'PUT /v1/orgs/{org}/members/{user}': { role: 'viewer' },
      'PUT /v1/orgs/{org}/github': { org: 'from-a', default_role: 'viewer' },
      'POST /v1/orgs/{org}/invitations': { email: 'from-a@example.com', role: 'viewer' },
    };
    return op in bodies ? bodies[op] : ['POST', 'PUT', 'PATCH'].includes(op.split(' ')[0]!) ? {} : undefined;
  }

  async function operations(): Promise<Operation[]> {
    const spec = (await h.api('GET', '/openapi.json')).body as { paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>> };
    const all = Object.entries(spec.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name) })),
    );
    // Upserts last: once A has made its own resource under B's id, A's reads of that id find A's.
    const upsert = (o: Operation) => o.method === 'PUT' && UPSERTS.has(`${o.method} ${o.path}`);
    return [...all.filter((o) => !upsert(o)), ...all.filter(upsert)];
  }

  /** snapshotB once B's own background work (retries, alerts) has come to rest. */
  async function settledB(ops: Operation[]): Promise<Record<string, string>> {
    let last = JSON.stringify(await snapshotB(ops));
    return waitFor(async () => {
      const now = await snapshotB(ops);
      const same = JSON.stringify(now) === last;
      last = JSON.stringify(now);
      return same && now;
    }, 60_000, "B's reads to settle");
  }

  /** Every read of B: the list routes and each of B's resources, as B sees them. */
  async function snapshotB(ops: Operation[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const op of ops) {
      if (op.method !== 'GET' || OUT_OF_SCOPE[`${op.method} ${op.path}`] || !op.path.startsWith('/v1/') || op.path.startsWith('/v1/me/')) continue;
      let path = op.path;
      let ok = true;
      for (const [, name] of op.path.matchAll(/\{(\w+)\}/g)) {
        const v = bValue(op.path, name!);
        if (v === undefined) ok = false;
        path = path.replace(`{${name}}`, encodeURIComponent(v ?? ''));
      }
      // Aggregates over time buckets (stats) and live state (presence) move by themselves.
      if (!ok || path.includes('/auth/') || path === '/v1/audit' || path.startsWith('/v1/dlq/stats') || path.startsWith('/v1/stats') || path.startsWith('/v1/presence') || path.endsWith('/events') && path.includes('/consumers/')) continue;
      const r = await asB('GET', path);
      // Times of use and counters move by themselves; what A could change is the rest.
      out[path] = `${r.status} ${r.text.replace(/"(last_used_at|updated_at|lag|leased|pending|next_due_at|[a-z_]*count|[a-z_]*age_ms)":("[^"]*"|\d+|null)/g, '')}`;
    }
    return out;
  }

  it('A never reaches B: same answer as for ids that exist nowhere, 404 where A may act, no marker, B unchanged', async (t) => {
    const ops = await operations();
    assert.ok(ops.length > 100, `the OpenAPI document lists the API (${ops.length} operations)`);
    const beforeB = await settledB(ops);
    const failures: string[] = [];
    const seen = (who: string, what: string, r: ApiResponse) => {
      // A problem's `instance` echoes the request's own URL, which may carry MARK as a filter value.
      if (r.text.replace(/"instance":"[^"]*"/g, '').includes(MARK)) failures.push(`${who} ${what}: B's data in the answer: ${r.text.slice(0, 200)}`);
      if (r.status >= 500) failures.push(`${who} ${what}: ${r.status} ${r.text.slice(0, 200)}`);
    };
    let checked = 0;
    for (const op of ops) {
      const name = `${op.method} ${op.path}`;
      if (OUT_OF_SCOPE[name]) continue;
      const params = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
      for (const [who, cred] of Object.entries(a)) {
        if (params.length === 0) {
          if (op.method !== 'GET' || op.path === '/v1/realtime') continue;
          // Lists: B's values in the filters, and B's own cursor.
          const urls = [op.path];
          const bq: Record<string, string | undefined> = { recipient: b.recipient, source: b.source, path: `/${MARK}/in`, q: MARK, actor: `key:${b.key}`, target: b.recipient };
          for (const q of op.query) if (bq[q]) urls.push(`${op.path}?${q}=${encodeURIComponent(bq[q]!)}`);
          if (op.query.includes('cursor')) {
            const page = await asB('GET', `${op.path}?limit=1`);
            if (page.body?.next_cursor) urls.push(`${op.path}?cursor=${encodeURIComponent(page.body.next_cursor)}`);
          }
          for (const url of urls) {
            seen(who, `GET ${url}`, await request(h.url, cred, 'GET', url));
            checked++;
          }
          continue;
        }
        const ids: Record<string, string> = {};
        const nx: Record<string, string> = {};
        let bPath = op.path;
        let nxPath = op.path;
        for (const p of params) {
          const v = bValue(op.path, p);
          assert.ok(v !== undefined, `${name}: no value of B for {${p}}; add it to bValue`);
          ids[p] = v;
          nx[p] = p === 'provider' ? 'pushover' : fresh(v);
          bPath = bPath.replace(`{${p}}`, encodeURIComponent(v));
          nxPath = nxPath.replace(`{${p}}`, encodeURIComponent(nx[p]!));
        }
        const bodyNx = bodyFor(name, { event: fresh(b.event!) });
        const bodyB = bodyFor(name, { event: b.event! });
        const rNx = await request(h.url, cred, op.method, nxPath, bodyNx);
        const rB = await request(h.url, cred, op.method, bPath, bodyB);
        checked++;
        seen(who, `${op.method} ${bPath}`, rB);
        const code = (r: ApiResponse) => `${r.status} ${r.body?.code ?? ''}`;
        if (code(rB) !== code(rNx)) failures.push(`${who} ${name}: B's ids answer ${code(rB)} (${rB.text.slice(0, 160)}), ids of nobody ${code(rNx)}`);
        const full = who === 'owner' || who === 'admin' || who === 'admin key';
        const userOnly = op.path.startsWith('/v1/orgs/') || op.path.startsWith('/v1/auth/');
        const expected = userOnly && who.endsWith('key') ? 403 : 404;
        if (full && !UPSERTS.has(name) && !op.path.startsWith('/v1/me/') && rB.status !== expected) {
          failures.push(`${who} ${name}: ${rB.status}, expected ${expected} (${rB.text.slice(0, 160)})`);
        }
        // An upsert of A's own under B's id succeeds: the body reached the store, B's stays (snapshot).
        if (full && UPSERTS.has(name) && op.method === 'PUT' && !(rB.status >= 200 && rB.status < 300)) {
          failures.push(`${who} ${name}: ${rB.status}, expected A's own to be written (${rB.text.slice(0, 160)})`);
        }
      }
    }
    t.diagnostic(`${checked} requests by A's principals over ${ops.length} operations`);
    const afterB = await settledB(ops);
    for (const [path, was] of Object.entries(beforeB)) if (afterB[path] !== was) failures.push(`B's ${path} changed: ${was.slice(0, 300)} -> ${afterB[path]?.slice(0, 300)}`);
    assert.deepEqual(failures, []);
  });
});
