// The real-time gateway over real sockets, on both stores: settings and tokens (Herald-minted,
// HS256 signed by the backend, ES256 with a registered key and through a JWKS URL, rotation with
// overlap), refusals with close codes (bad signature, expired, another organization), expiry and
// refresh, a signed-in user's access token, the protocol's error frames and a fuzz of malformed
// frames, the 64 KB limit (1009), the frame-rate limit (1008), rooms with publish and recovery
// after a reconnect, and a slow consumer disconnected while another keeps up.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { generateKeyPair, exportJWK, exportSPKI, SignJWT } from 'jose';
import fc from 'fast-check';
import { describeOnStores, request, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { connect, type RtClient } from './ws-client.ts';

const PASSWORD = 'a long enough passphrase';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function hsToken(secret: string, claims: Record<string, unknown>, opts: { kid?: string; expSec?: number } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', ...(opts.kid && { kid: opts.kid }) })
    .setIssuedAt(now)
    .setExpirationTime(now + (opts.expSec ?? 600))
    .sign(Buffer.from(secret, 'utf8'));
}

describeOnStores('real-time gateway', (store) => {
  let h: TestHerald;
  let org: string;
  let secret: { kid: string; secret: string };
  const clients: RtClient[] = [];
  const open = async (token?: string) => {
    const c = await connect(h.url, token);
    clients.push(c);
    return c;
  };
  const mint = async (recipient: string, extra: Record<string, unknown> = {}) => {
    const r = await h.api('POST', '/v1/realtime/tokens', { recipient, ...extra });
    assert.equal(r.status, 201, r.text);
    return r.body.token as string;
  };

  before(async () => {
    h = await startHeraldOn(store, { HERALD_SIGNUP: 'open', HERALD_REALTIME_FRAME_RATE: '200/1s' });
    const s = await h.api('GET', '/v1/realtime/settings');
    assert.equal(s.status, 200, s.text);
    assert.equal(s.body.secrets.length, 1);
    secret = s.body.secrets[0];
    const me = await h.api('GET', '/v1/realtime/tokens');
    assert.equal(me.status, 405);
    // the organization of the admin key: read from a minted token's claims
    const t = await mint('probe');
    org = JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()).org;
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await h?.stop();
  });

  it('a minted token connects by query or first frame and gets welcome', async () => {
    const token = await mint('alice');
    const a = await open(token);
    const w = await a.next((f) => f.type === 'welcome');
    assert.equal(w.recipient, 'alice');
    assert.equal(w.organization, org);
    assert.ok(w.session);
    const b = await open();
    b.send({ type: 'auth', token });
    const w2 = await b.next((f) => f.type === 'welcome');
    assert.equal(w2.recipient, 'alice');
    assert.notEqual(w2.session, w.session);
    b.send({ type: 'ping' });
    await b.next((f) => f.type === 'pong');
  });

  it('a token signed by the backend with the HS256 secret connects, with or without kid', async () => {
    for (const kid of [secret.kid, undefined]) {
      const c = await open(await hsToken(secret.secret, { sub: 'bob', org }, { kid }));
      assert.equal((await c.next((f) => f.type === 'welcome')).recipient, 'bob');
    }
  });

  it('refuses a bad signature (4001), an expired token (4002), garbage (4001) and no auth (4000)', async () => {
    const bad = await open(await hsToken('not-the-secret', { sub: 'bob', org }, { kid: secret.kid }));
    const c1 = await bad.closed;
    assert.equal(c1.code, 4001);
    assert.equal(c1.reason, 'bad_signature');
    assert.ok(bad.frames.some((f) => f.type === 'error' && f.code === 'bad_signature'));

    const expired = await open(await hsToken(secret.secret, { sub: 'bob', org }, { kid: secret.kid, expSec: -10 }));
    assert.deepEqual(await expired.closed, { code: 4002, reason: 'token_expired' });

    const garbage = await open('not.a.jwt');
    assert.equal((await garbage.closed).code, 4001);

    const noAuth = await open();
    noAuth.send({ type: 'subscribe', channel: 'room:x' });
    assert.deepEqual(await noAuth.closed, { code: 4000, reason: 'auth_required' });

    const missingClaims = await open(await hsToken(secret.secret, { org }, { kid: secret.kid }));
    assert.equal((await missingClaims.closed).code, 4001);
  });

  it("refuses another organization's token (4003), and a refresh with another principal's token", async () => {
    const reg = await request(h.url, undefined, 'POST', '/v1/auth/register', { email: `rt-${store}@example.com`, password: PASSWORD, name: 'Rt' });
    assert.equal(reg.status, 201, reg.text);
    const login = await request(h.url, undefined, 'POST', '/v1/auth/login', { email: `rt-${store}@example.com`, password: PASSWORD });
    const made = await request(h.url, login.body.access_token, 'POST', '/v1/orgs', { name: 'Other' });
    assert.equal(made.status, 201, made.text);
    const sw = await request(h.url, login.body.access_token, 'POST', '/v1/auth/switch', { org: made.body.id });
    assert.equal(sw.status, 200, sw.text);
    const userToken = sw.body.access_token as string;
    const other = await request(h.url, userToken, 'GET', '/v1/realtime/settings');
    assert.equal(other.status, 200, other.text);
    const otherSecret = other.body.secrets[0];
    assert.notEqual(otherSecret.secret, secret.secret);

    // Signed with the other organization's key, claiming this organization.
    const forged = await open(await hsToken(otherSecret.secret, { sub: 'alice', org }, { kid: otherSecret.kid }));
    assert.deepEqual(await forged.closed, { code: 4003, reason: 'other_organization' });
    // Without a kid the signature simply does not verify under this organization's keys.
    const noKid = await open(await hsToken(otherSecret.secret, { sub: 'alice', org }));
    assert.equal((await noKid.closed).code, 4001);

    // The other organization's own token is fine, but not as a refresh of this organization's connection.
    const minted = await request(h.url, userToken, 'POST', '/v1/realtime/tokens', { recipient: 'alice' });
    assert.equal(minted.status, 201, minted.text);
    const mine = await mint('alice');
    const c = await open(mine);
    await c.next((f) => f.type === 'welcome', 10_000, `welcome for ${mine} (${org}, ${JSON.stringify(secret)})`);
    c.send({ type: 'refresh', token: minted.body.token });
    assert.equal((await c.closed).code, 4003);

    // A signed-in user's access token connects as that user.
    const u = await open(userToken);
    const w = await u.next((f) => f.type === 'welcome');
    assert.equal(w.recipient, null);
    assert.equal(w.user, reg.body.user.id);
    assert.equal(w.organization, made.body.id);
  });

  it('ES256: a registered public key and a JWKS URL verify tokens; a wrong key does not', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const pem = await exportSPKI(publicKey);
    const put = await h.api('PUT', '/v1/realtime/settings', { public_keys: [{ kid: 'k1', alg: 'ES256', pem }] });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.body.public_keys.map((k: any) => k.kid), ['k1']);
    const es = (priv: Parameters<SignJWT["sign"]>[0], kid?: string, sub = 'carol') =>
      new SignJWT({ org }).setProtectedHeader({ alg: 'ES256', ...(kid && { kid }) }).setSubject(sub).setExpirationTime('10m').sign(priv);
    const ok = await open(await es(privateKey, 'k1'));
    assert.equal((await ok.next((f) => f.type === 'welcome')).recipient, 'carol');

    const other = await generateKeyPair('ES256', { extractable: true });
    const wrong = await open(await es(other.privateKey, 'k1'));
    assert.equal((await wrong.closed).code, 4001);

    // A JWKS URL serving the other key.
    const jwk = { ...(await exportJWK(other.publicKey)), kid: 'j1', alg: 'ES256', use: 'sig' };
    const jwks: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(jwks.address() as { port: number }).port}/jwks.json`;
      assert.equal((await h.api('PUT', '/v1/realtime/settings', { jwks_url: url })).status, 200);
      const viaJwks = await open(await es(other.privateKey, 'j1', 'dave'));
      assert.equal((await viaJwks.next((f) => f.type === 'welcome')).recipient, 'dave');
    } finally {
      jwks.close();
      await h.api('PUT', '/v1/realtime/settings', { jwks_url: null, public_keys: [] });
    }
  });

  it('rotation: the previous secret verifies during the overlap, not after', async () => {
    const before = (await h.api('GET', '/v1/realtime/settings')).body.secrets[0];
    const rotated = await h.api('PUT', '/v1/realtime/settings', { rotate_secret: true, overlap: '1h' });
    assert.equal(rotated.status, 200, rotated.text);
    assert.equal(rotated.body.secrets.length, 2);
    const current = rotated.body.secrets.find((s: any) => s.expires_at === null);
    assert.notEqual(current.kid, before.kid);
    const old = await open(await hsToken(before.secret, { sub: 'erin', org }, { kid: before.kid }));
    await old.next((f) => f.type === 'welcome');
    const fresh = await open(await hsToken(current.secret, { sub: 'erin', org }, { kid: current.kid }));
    await fresh.next((f) => f.type === 'welcome');

    const again = await h.api('PUT', '/v1/realtime/settings', { rotate_secret: true, overlap: '0s' });
    assert.equal(again.body.secrets.length, 1);
    const stale = await open(await hsToken(current.secret, { sub: 'erin', org }, { kid: current.kid }));
    assert.equal((await stale.closed).code, 4001);
    secret = again.body.secrets[0];
  });

  it('a connection closes when its token expires (4002) unless refreshed first', async () => {
    const short = await hsToken(secret.secret, { sub: 'fay', org }, { kid: secret.kid, expSec: 2 });
    const lapsing = await open(short);
    const refreshed = await open(short);
    await refreshed.next((f) => f.type === 'welcome');
    refreshed.send({ type: 'refresh', token: await mint('fay') });
    await refreshed.next((f) => f.type === 'refreshed');
    assert.deepEqual(await lapsing.closed, { code: 4002, reason: 'token_expired' });
    await sleep(500);
    assert.equal(refreshed.isClosed(), false);
    refreshed.send({ type: 'ping' });
    await refreshed.next((f) => f.type === 'pong');
  });

  it('malformed and unknown frames get error frames and the connection stays open (fuzzed)', async () => {
    const c = await open(await mint('gus'));
    await c.next((f) => f.type === 'welcome');
    const cases: [unknown, string][] = [
      ['not json', 'malformed_frame'],
      ['[1,2]', 'malformed_frame'],
      ['null', 'malformed_frame'],
      [{ type: 'nope' }, 'unknown_frame'],
      [{ type: 42 }, 'invalid_frame'],
      [{ type: 'subscribe' }, 'invalid_frame'],
      [{ type: 'subscribe', channel: 'secret' }, 'invalid_frame'],
      [{ type: 'subscribe', channel: 'room:a', since: { offset: -1, epoch: 'x' } }, 'invalid_frame'],
      [{ type: 'subscribe', channel: 'room:a', extra: 1 }, 'invalid_frame'],
      [{ type: 'subscribe', channel: 'room:not-granted' }, 'forbidden'],
      [{ type: 'message', to: 'x', body: '', client_id: 'c' }, 'invalid_frame'],
      [{ type: 'typing', to: 'x', room: 'y', active: true }, 'invalid_frame'],
      [{ type: 'presence', ids: [] }, 'invalid_frame'],
      [{ type: 'inbox.mark', ids: ['a'], state: 'eaten' }, 'invalid_frame'],
      [{ type: 'auth', token: 'x.y.z' }, 'invalid_frame'],
    ];
    for (const [frame, code] of cases) {
      const n = c.frames.length;
      c.send(frame);
      const e = await c.next((f) => c.frames.indexOf(f) >= n && f.type === 'error', 10_000, `error for ${JSON.stringify(frame)}`);
      assert.equal(e.code, code, JSON.stringify(frame));
    }
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await c.next((f) => f.type === 'error' && /text/.test(f.message));

    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 300 }), fc.json({ maxDepth: 4 }), fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify({ type: 'subscribe', channel: v }))), async (text) => {
        c.ws.send(text);
      }),
      { numRuns: 150 },
    );
    c.send({ type: 'ping' });
    await c.next((f) => f.type === 'pong', 20_000, 'pong after the fuzz');
    assert.equal(c.isClosed(), false);
  });

  it('a frame over 64 KB closes with 1009', async () => {
    const c = await open(await mint('hal'));
    await c.next((f) => f.type === 'welcome');
    c.send({ type: 'ping', pad: 'x'.repeat(65 * 1024) });
    assert.equal((await c.closed).code, 1009);
  });

  it('a client sending more frames than the limit is closed with 1008', async () => {
    const c = await open(await mint('ivy'));
    await c.next((f) => f.type === 'welcome');
    for (let i = 0; i < 400; i++) c.send({ type: 'ping' });
    assert.deepEqual(await c.closed, { code: 1008, reason: 'too_many_frames' });
  });

  it('rooms: granted by the token, published over the API, recovered after a reconnect', async () => {
    const token = await mint('jo', { rooms: ['lobby'] });
    const a = await open(token);
    await a.next((f) => f.type === 'welcome');
    a.send({ type: 'subscribe', channel: 'room:lobby' });
    const sub = await a.next((f) => f.type === 'subscribed');
    assert.equal(sub.recovered, false);
    const pub = await h.api('POST', '/v1/realtime/publish', { channel: 'room:lobby', data: { n: 1 } });
    assert.equal(pub.status, 200, pub.text);
    assert.equal(pub.body.offset, sub.offset + 1);
    const p1 = await a.next((f) => f.type === 'publication');
    assert.deepEqual(p1.data, { n: 1 });
    assert.equal(p1.epoch, sub.epoch);
    a.close();
    await a.closed;
    for (let n = 2; n <= 4; n++) assert.equal((await h.api('POST', '/v1/realtime/publish', { channel: 'room:lobby', data: { n } })).status, 200);

    const b = await open(token);
    await b.next((f) => f.type === 'welcome');
    b.send({ type: 'subscribe', channel: 'room:lobby', since: { offset: p1.offset, epoch: p1.epoch } });
    const rec = await b.next((f) => f.type === 'subscribed');
    assert.equal(rec.recovered, true);
    await waitFor(() => b.frames.filter((f) => f.type === 'publication').length === 3, 10_000, 'three missed publications');
    assert.deepEqual(b.frames.filter((f) => f.type === 'publication').map((f) => f.data.n), [2, 3, 4]);

    const c = await open(token);
    c.send({ type: 'subscribe', channel: 'room:lobby', since: { offset: 1, epoch: 'someother' } });
    assert.equal((await c.next((f) => f.type === 'subscribed')).recovered, false);
    assert.equal(c.frames.filter((f) => f.type === 'publication').length, 0);

    const d = await open(await mint('kim'));
    d.send({ type: 'subscribe', channel: 'room:lobby' });
    assert.equal((await d.next((f) => f.type === 'error')).code, 'forbidden');
  });

  it('a slow consumer is disconnected while another subscriber receives every publication', async () => {
    const token = await mint('lee', { rooms: ['firehose'] });
    const fast = await open(token);
    const slow = await open(token);
    for (const c of [fast, slow]) {
      c.send({ type: 'subscribe', channel: 'room:firehose' });
      await c.next((f) => f.type === 'subscribed');
    }
    // The slow client stops reading from its socket.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const blob = 'y'.repeat(32 * 1024);
    const total = 300;
    for (let i = 0; i < total; i++) {
      const r = await h.api('POST', '/v1/realtime/publish', { channel: 'room:firehose', data: { i, blob } });
      assert.equal(r.status, 200, r.text);
    }
    await waitFor(() => fast.frames.filter((f) => f.type === 'publication').length === total, 60_000, 'every publication at the fast client');
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await slow.closed;
    assert.ok(closed.code === 4004 || closed.code === 1006, `slow consumer closed with ${closed.code}`);
    assert.ok(slow.frames.filter((f) => f.type === 'publication').length < total, 'the slow consumer did not get everything');
    const m = await request(h.url, undefined, 'GET', '/metrics');
    assert.match(m.text, /herald_realtime_slow_consumers_total 1/);
  });

  it('GET /v1/realtime without an upgrade is 426; bad settings and token requests are 422', async () => {
    const r = await h.api('GET', '/v1/realtime');
    assert.equal(r.status, 426, r.text);
    assert.equal(r.body.code, 'upgrade_required');
    assert.equal((await h.api('PUT', '/v1/realtime/settings', { overlap: '1h' })).status, 422);
    assert.equal((await h.api('PUT', '/v1/realtime/settings', { public_keys: [{ kid: 'a', alg: 'ES256', pem: 'nope' }] })).status, 422);
    assert.equal((await h.api('PUT', '/v1/realtime/settings', { jwks_url: 'ftp://x' })).status, 422);
    assert.equal((await h.api('POST', '/v1/realtime/tokens', { recipient: '' })).status, 422);
    assert.equal((await h.api('POST', '/v1/realtime/tokens', { recipient: 'x', ttl: 0 })).status, 422);
    assert.equal((await h.api('POST', '/v1/realtime/publish', { channel: 'inbox', data: 1 })).status, 422);
    assert.equal((await h.api('POST', '/v1/realtime/publish', { channel: 'room:a' })).status, 422);
  });
});
