// SecretBox (src/auth/secret-box.ts): secrets at rest (AES-256-GCM under a key derived from
// HERALD_SECRET_KEY) and callback URL tokens. What must hold: a sealed value opens to what was
// sealed, only under the same key, and any change to it (a flipped bit anywhere, a cut, a shortened
// tag, another prefix) is refused rather than opened to something else.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveSecretKey, SecretBox } from '../../src/auth/secret-box.ts';

const KEY = 'unit-test-secret-key-unit-test-secret-key';
const box = new SecretBox(KEY);
const raw = (sealed: string) => Buffer.from(sealed.slice(3), 'base64');
const pack = (bytes: Buffer) => 'v1:' + bytes.toString('base64');

describe('SecretBox', () => {
  it('opens what it sealed, every time with a fresh IV', () => {
    for (const secret of ['', 'whsec_abc', 'ünïcødé 🔑', 'x'.repeat(10_000)]) {
      const a = box.seal(secret);
      const b = box.seal(secret);
      assert.match(a, /^v1:[A-Za-z0-9+/]+=*$/);
      assert.notEqual(a, b, 'two seals of one secret differ');
      assert.notEqual(raw(a).subarray(0, 12).toString('hex'), raw(b).subarray(0, 12).toString('hex'));
      assert.equal(box.open(a), secret);
      assert.equal(new SecretBox(KEY).open(b), secret, 'another box with the same key opens it');
    }
  });

  it('refuses a sealed value with any bit flipped (iv, tag or data)', () => {
    const sealed = raw(box.seal('the webhook secret'));
    for (let i = 0; i < sealed.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const t = Buffer.from(sealed);
        t[i]! ^= bit;
        assert.throws(() => box.open(pack(t)), `byte ${i} bit ${bit} flipped was opened`);
      }
    }
  });

  it('refuses cut values, a shortened tag, extra bytes and other prefixes', () => {
    const sealed = raw(box.seal('abc'));
    for (const n of [0, 1, 12, 16, 27, sealed.length - 1]) assert.throws(() => box.open(pack(sealed.subarray(0, n))), `cut to ${n} bytes`);
    assert.throws(() => box.open(pack(Buffer.concat([sealed, Buffer.from([0])]))), 'a byte appended');
    // GCM can verify a tag cut to 4 bytes: an empty secret with its tag cut short must not open.
    const empty = raw(box.seal(''));
    assert.throws(() => box.open(pack(empty.subarray(0, 16))), 'iv + the first 4 bytes of the tag');
    assert.throws(() => box.open(pack(empty.subarray(0, 24))), 'iv + the first 12 bytes of the tag');
    assert.equal(box.open(pack(empty)), '');
    for (const bad of ['', 'v2:' + sealed.toString('base64'), sealed.toString('base64'), 'v1:']) assert.throws(() => box.open(bad), JSON.stringify(bad.slice(0, 10)));
  });

  it('refuses a value sealed under another key', () => {
    const other = new SecretBox(KEY.replace(/y$/, 'z'));
    assert.throws(() => other.open(box.seal('s')));
    assert.throws(() => box.open(other.seal('s')));
  });

  it('refuses a key shorter than 32 characters', () => {
    assert.throws(() => new SecretBox('k'.repeat(31)), /at least 32 characters/);
    assert.throws(() => new SecretBox(''), /at least 32 characters/);
    assert.equal(new SecretBox('k'.repeat(32)).open(new SecretBox('k'.repeat(32)).seal('ok')), 'ok');
  });

  it('tokens verify only for the data and key they were made for', () => {
    const t = box.token('sms:dlv_1');
    assert.match(t, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(box.verifyToken('sms:dlv_1', t), true);
    assert.equal(box.verifyToken('sms:dlv_2', t), false);
    assert.equal(new SecretBox(KEY + 'x').verifyToken('sms:dlv_1', t), false);
    assert.equal(box.verifyToken('sms:dlv_1', t.slice(0, -1)), false);
    assert.equal(box.verifyToken('sms:dlv_1', ''), false);
  });
});

describe('resolveSecretKey', () => {
  it('prefers the configured key; else generates secret.key once (mode 0600) and reads it back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-secret-'));
    try {
      assert.equal(resolveSecretKey('configured', dir, () => assert.fail('nothing is generated')), 'configured');
      const generated: string[] = [];
      const k1 = resolveSecretKey(undefined, join(dir, 'data'), (p) => generated.push(p));
      assert.deepEqual(generated, [join(dir, 'data', 'secret.key')]);
      assert.ok(k1.length >= 32);
      assert.equal(statSync(join(dir, 'data', 'secret.key')).mode & 0o777, 0o600);
      assert.equal(readFileSync(join(dir, 'data', 'secret.key'), 'utf8'), k1 + '\n');
      assert.equal(resolveSecretKey(undefined, join(dir, 'data'), () => assert.fail('generated twice')), k1);
      new SecretBox(k1); // long enough to use
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
