import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { generateWebhookSecret, isValidWebhookSecret, signWebhook } from '../../src/domain/webhook-signature.ts';

// The official Standard Webhooks v1 test vector.
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  payload: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

describe('webhook signatures (Standard Webhooks v1)', () => {
  it('reproduces the official v1 test vector', () => {
    assert.equal(signWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.payload), VECTOR.signature);
  });

  it('signs the raw bytes: a re-serialised payload gets a different signature', () => {
    assert.notEqual(signWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp, '{"test":2432232314}'), VECTOR.signature);
    assert.notEqual(signWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp + 1, VECTOR.payload), VECTOR.signature);
    assert.notEqual(signWebhook(VECTOR.secret, 'msg_other', VECTOR.timestamp, VECTOR.payload), VECTOR.signature);
  });

  it('signs bytes as they are: the vector as bytes, and a body that is not UTF-8 by its bytes', () => {
    assert.equal(signWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp, Buffer.from(VECTOR.payload)), VECTOR.signature);
    const a = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
    const b = Buffer.from([0xff, 0xfe, 0x00, 0x81]); // both decode to the same replacement characters
    assert.equal(a.toString('utf8'), b.toString('utf8'));
    assert.notEqual(signWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp, a), signWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp, b));
  });

  it('generates secrets that are valid whsec_ secrets and distinct', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const s = generateWebhookSecret();
      assert.match(s, /^whsec_[A-Za-z0-9+/]+={0,2}$/);
      assert.ok(isValidWebhookSecret(s), s);
      const key = Buffer.from(s.slice('whsec_'.length), 'base64');
      assert.ok(key.length >= 24 && key.length <= 64, `key of ${key.length} bytes`);
      seen.add(s);
    }
    assert.equal(seen.size, 50);
  });

  it('accepts only whsec_ secrets with a 24..64 byte key', () => {
    assert.ok(isValidWebhookSecret(VECTOR.secret));
    assert.ok(isValidWebhookSecret('whsec_' + Buffer.alloc(64, 7).toString('base64')));
    assert.ok(!isValidWebhookSecret('whsec_' + Buffer.alloc(23, 7).toString('base64')));
    assert.ok(!isValidWebhookSecret('whsec_' + Buffer.alloc(65, 7).toString('base64')));
    assert.ok(!isValidWebhookSecret(VECTOR.secret.slice('whsec_'.length)));
    assert.ok(!isValidWebhookSecret('whsec_not base64!!'));
    assert.ok(!isValidWebhookSecret('whsec_'));
    assert.ok(!isValidWebhookSecret('whsk_' + Buffer.alloc(32, 7).toString('base64')));
  });

  it('every signature verifies with the independent standardwebhooks package (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 24, maxLength: 64 }),
        fc.stringMatching(/^[A-Za-z0-9_]{1,40}$/),
        fc.json({ maxDepth: 3, stringUnit: 'binary' }), // standardwebhooks parses the payload as JSON after verifying
        (keyBytes, id, payload) => {
          const secret = 'whsec_' + Buffer.from(keyBytes).toString('base64');
          assert.ok(isValidWebhookSecret(secret));
          const ts = Math.floor(Date.now() / 1000);
          const sig = signWebhook(secret, id, ts, payload);
          new Webhook(secret).verify(payload, { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': sig });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a generated secret signs what standardwebhooks verifies, and a wrong secret fails', () => {
    const secret = generateWebhookSecret();
    const ts = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ hello: 'world', n: 1 });
    const headers = { 'webhook-id': 'dlv_1', 'webhook-timestamp': String(ts), 'webhook-signature': signWebhook(secret, 'dlv_1', ts, body) };
    assert.deepEqual(new Webhook(secret).verify(body, headers), { hello: 'world', n: 1 });
    assert.throws(() => new Webhook(generateWebhookSecret()).verify(body, headers));
    assert.throws(() => new Webhook(secret).verify(body + ' ', headers));
  });
});
