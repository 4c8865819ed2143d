import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeCursor, encodeCursor } from '../../src/domain/cursor.ts';
import { deliveryId, newId } from '../../src/domain/ids.ts';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const anyId = fc
  .tuple(fc.constantFrom('ntf', 'dlv', 'att', 'key', 'ws', 'aud', 'job'), fc.array(fc.constantFrom(...CROCKFORD), { minLength: 26, maxLength: 26 }))
  .map(([p, cs]) => `${p}_${cs.join('')}`);

/** newId's ids, and delivery ids in their notification's range (deliveryId). */
const ID_SHAPE = /^[a-z]+_[0-9A-Z]{26}([0-9A-Z]{3}|_[0-9A-Z]{26})?$/;

describe('cursors', () => {
  it('round-trip real ids and are opaque url-safe tokens', () => {
    for (const prefix of ['ntf', 'dlv', 'aud'] as const) {
      const id = newId(prefix);
      const c = encodeCursor(id);
      assert.match(c, /^[A-Za-z0-9_-]+$/);
      assert.ok(!c.includes(id), 'the id is not visible in the cursor');
      assert.equal(decodeCursor(c), id);
    }
    const n = newId('ntf');
    for (const id of [deliveryId(n, 0), deliveryId(n, 5000), deliveryId(n)]) assert.equal(decodeCursor(encodeCursor(id)), id);
    for (const bad of [`${deliveryId(n, 0)}0`, `${deliveryId(n)}_`, `${n}_`]) assert.equal(decodeCursor(encodeCursor(bad)), undefined, bad);
  });

  it('round-trip any well-formed id (property)', () => {
    fc.assert(fc.property(anyId, (id) => assert.equal(decodeCursor(encodeCursor(id)), id)));
  });

  it('rejects garbage', () => {
    const garbage = [
      '',
      'abc',
      '!!!!',
      'c1:ntf_01ARYZ6S41TSV4RRFFQ69G5FAV', // not encoded
      Buffer.from('c1:ntf_01ARYZ6S41TSV4RRFFQ69G5FAV').toString('base64').replace(/=+$/, '') + '==', // padding is not ours
      Buffer.from('c2:ntf_01ARYZ6S41TSV4RRFFQ69G5FAV').toString('base64url'), // other version
      Buffer.from('ntf_01ARYZ6S41TSV4RRFFQ69G5FAV').toString('base64url'), // no prefix
      encodeCursor('ntf_short'),
      encodeCursor('ntf_01ARYZ6S41TSV4RRFFQ69G5FAV; DROP TABLE notifications'),
      encodeCursor('NTF_01ARYZ6S41TSV4RRFFQ69G5FAV'),
      encodeCursor("ntf_01ARYZ6S41TSV4RRFFQ69G5FA'"),
      encodeCursor(''),
      'A'.repeat(201),
      encodeCursor('ntf_01ARYZ6S41TSV4RRFFQ69G5FAV').slice(0, 20),
    ];
    for (const g of garbage) assert.equal(decodeCursor(g), undefined, JSON.stringify(g));
  });

  it('rejects random strings and random bytes (property)', () => {
    const idShape = ID_SHAPE;
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
        const d = decodeCursor(s);
        // Whatever it returns must be a well-formed id, never arbitrary text for the query.
        if (d !== undefined) assert.match(d, idShape);
        else assert.equal(d, undefined);
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 150 }), (bytes) => {
        const s = Buffer.from(bytes).toString('base64url');
        assert.equal(decodeCursor(s), undefined, s);
      }),
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (text) => {
        fc.pre(!ID_SHAPE.test(text));
        assert.equal(decodeCursor(encodeCursor(text)), undefined);
      }),
    );
  });
});
