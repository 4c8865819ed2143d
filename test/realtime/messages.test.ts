// Direct messages over real sockets, on both stores: refused while the organization has them off;
// delivered to every session of the target and echoed to the sender's other sessions, acknowledged
// by client_id and, on a retry, acknowledged again without a second delivery or a second stored
// message; history over GET /v1/me/conversations/{peer} with a cursor; and a message to a
// recipient with no live session pushed through the normal pipeline to the fake FCM server.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describeOnStores, request, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { startFakeFcm, type FakeFcm } from '../fakes/fcm.ts';
import { connect, type RtClient } from './ws-client.ts';

const PROJECT = 'herald-dm';
const EMAIL = 'sender@herald-dm.iam.gserviceaccount.com';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const RSA_PEM = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

describeOnStores('real-time direct messages', (store) => {
  let h: TestHerald;
  let fcm: FakeFcm;
  const clients: RtClient[] = [];
  const tokens = new Map<string, string>();
  const token = async (recipient: string) => {
    if (!tokens.has(recipient)) {
      const r = await h.api('POST', '/v1/realtime/tokens', { recipient });
      assert.equal(r.status, 201, r.text);
      tokens.set(recipient, r.body.token);
    }
    return tokens.get(recipient)!;
  };
  const open = async (recipient: string) => {
    const c = await connect(h.url, await token(recipient));
    clients.push(c);
    await c.next((f) => f.type === 'welcome');
    return c;
  };

  before(async () => {
    fcm = await startFakeFcm({ projectId: PROJECT, clientEmail: EMAIL, publicKey: rsa.publicKey });
    h = await startHeraldOn(store);
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await h?.stop();
    await fcm?.close();
  });

  it('is refused while the organization has direct messages off', async () => {
    const a = await open('amy');
    a.send({ type: 'message', to: 'ben', body: 'hi', client_id: 'c0' });
    const e = await a.next((f) => f.type === 'error');
    assert.equal(e.code, 'forbidden');
    assert.match(e.message, /direct_messages/);
    assert.equal(a.frames.some((f) => f.type === 'ack'), false);
  });

  it('reaches every session of the target and the sender\'s other sessions; a retry is acknowledged once more and not delivered again', async () => {
    const put = await h.api('PUT', '/v1/realtime/settings', { direct_messages: true });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.direct_messages, true);
    const amy1 = await open('amy');
    const amy2 = await open('amy');
    const ben1 = await open('ben');
    const ben2 = await open('ben');
    amy1.send({ type: 'message', to: 'ben', body: 'hello ben', client_id: 'c1' });
    const ack = await amy1.next((f) => f.type === 'ack' && f.client_id === 'c1');
    assert.match(ack.id, /^msg_/);
    for (const c of [ben1, ben2, amy2]) {
      const m = await c.next((f) => f.type === 'message');
      assert.equal(m.id, ack.id);
      assert.equal(m.from, 'amy');
      assert.equal(m.to, 'ben');
      assert.equal(m.body, 'hello ben');
      assert.equal(m.client_id, 'c1');
    }
    assert.equal(amy1.frames.some((f) => f.type === 'message'), false, 'not echoed to the sending session');

    amy1.send({ type: 'message', to: 'ben', body: 'hello ben', client_id: 'c1' });
    await waitFor(() => amy1.frames.filter((x) => x.type === 'ack' && x.client_id === 'c1').length === 2);
    assert.equal(amy1.frames.filter((f) => f.type === 'ack').at(-1)!.id, ack.id);
    ben1.send({ type: 'message', to: 'amy', body: 'hi amy', client_id: 'c1' });
    await ben1.next((f) => f.type === 'ack');
    await amy1.next((f) => f.type === 'message' && f.from === 'ben');
    // The retry was not delivered: ben's sessions saw one message from amy.
    for (const c of [ben1, ben2]) assert.equal(c.frames.filter((f) => f.type === 'message' && f.from === 'amy').length, 1);

    for (let i = 2; i <= 4; i++) amy2.send({ type: 'message', to: 'ben', body: `n${i}`, client_id: `c${i}` });
    await amy2.next((f) => f.type === 'ack' && f.client_id === 'c4');
    const p1 = await request(h.url, await token('ben'), 'GET', '/v1/me/conversations/amy?limit=3');
    assert.equal(p1.status, 200, p1.text);
    assert.deepEqual(p1.body.data.map((m: any) => m.body), ['n4', 'n3', 'n2']);
    const p2 = await request(h.url, await token('ben'), 'GET', `/v1/me/conversations/amy?limit=3&cursor=${p1.body.next_cursor}`);
    assert.deepEqual(p2.body.data.map((m: any) => m.body), ['hi amy', 'hello ben']);
    assert.equal(p2.body.next_cursor, null);
    const other = await request(h.url, await token('cal'), 'GET', '/v1/me/conversations/amy');
    assert.deepEqual(other.body.data, [], "another recipient does not read amy and ben's conversation");
  });

  it('a message to a recipient with no live session reaches their phone through FCM', async () => {
    assert.equal((await h.api('PUT', '/v1/providers/fcm', { config: { service_account: { type: 'service_account', project_id: PROJECT, private_key_id: 'k1', private_key: RSA_PEM, client_email: EMAIL, token_uri: fcm.tokenUri } }, base_url: fcm.url })).status, 201);
    assert.equal((await h.api('PUT', '/v1/recipients/dot', { name: 'Dot' })).status, 201);
    const dev = await h.api('POST', '/v1/recipients/dot/devices', { platform: 'fcm', token: 'dot-phone' });
    assert.equal(dev.status, 201, dev.text);
    const eve = await open('eve');
    eve.send({ type: 'message', to: 'dot', body: 'are you there?', client_id: 'x1' });
    const ack = await eve.next((f) => f.type === 'ack');
    const sent = await waitFor(() => fcm.sends.find((s) => s.body.message.token === 'dot-phone'), 20_000, 'the push to dot');
    assert.equal(sent.body.message.notification.title, 'eve');
    assert.equal(sent.body.message.notification.body, 'are you there?');
    assert.equal(sent.body.message.data.message_id, ack.id);
    assert.equal(sent.body.message.data.sender, 'eve');
    assert.equal(sent.body.message.data.herald_kind, 'message');
    // An online target gets no push.
    const dotLive = await open('dot');
    eve.send({ type: 'message', to: 'dot', body: 'now?', client_id: 'x2' });
    await dotLive.next((f) => f.type === 'message' && f.body === 'now?');
    await eve.next((f) => f.type === 'ack' && f.client_id === 'x2');
    assert.equal(fcm.sends.filter((s) => s.body.message.token === 'dot-phone').length, 1);
  });
});
