import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { deliveryId, idTime, newId, ulid } from '../../src/domain/ids.ts';

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

describe('ids', () => {
  it('have a type prefix and a 26-character Crockford base32 ULID', () => {
    for (const prefix of ['ntf', 'dlv', 'att', 'key', 'ws', 'aud', 'job'] as const) {
      const id = newId(prefix);
      assert.match(id, new RegExp(`^${prefix}_[0-9A-HJKMNP-TV-Z]{26}$`));
    }
  });

  it('are strictly increasing within one millisecond', () => {
    const now = Date.now();
    const ids = Array.from({ length: 5000 }, () => ulid(now));
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1]! < ids[i]!, `${ids[i - 1]} !< ${ids[i]}`);
    for (const id of ids) {
      assert.match(id, ULID);
      assert.equal(idTime(`x_${id}`), now);
    }
    assert.equal(new Set(ids).size, ids.length);
  });

  it('are strictly increasing across a burst of newId calls (many share a millisecond)', () => {
    const ids = Array.from({ length: 20_000 }, () => newId('dlv'));
    const sorted = [...ids].sort();
    assert.deepEqual(ids, sorted);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('sort by creation time across milliseconds, and idTime recovers the time', async () => {
    const a = newId('ntf');
    await new Promise((r) => setTimeout(r, 5));
    const b = newId('ntf');
    assert.ok(a < b);
    assert.ok(idTime(a)! < idTime(b)!);
    const t = idTime(b)!;
    assert.ok(Math.abs(t - Date.now()) < 60_000, 'idTime is about now');
  });

  it('stay increasing if the clock steps back', () => {
    const now = Date.now();
    const a = ulid(now);
    const b = ulid(now - 10);
    assert.ok(a < b);
    assert.equal(idTime(`x_${b}`), now);
  });

  it('deliveryId puts a delivery in its notification\'s range: ordinals in order, then later ones after them', () => {
    const n = newId('ntf');
    const prefix = `dlv_${n.slice(4)}`;
    const ordinals = [0, 1, 31, 32, 1000, 32_767].map((i) => deliveryId(n, i));
    assert.deepEqual(ordinals.slice(0, 4), [`${prefix}000`, `${prefix}001`, `${prefix}00Z`, `${prefix}010`]);
    const later = [deliveryId(n), deliveryId(n), deliveryId(n, 32_768), deliveryId(n, -1), deliveryId(n, 1.5)];
    for (const id of [...ordinals, ...later]) {
      assert.ok(id.startsWith(prefix) && id < `${prefix}~`, id);
      assert.equal(id.length, id.includes('_', 4) ? prefix.length + 27 : prefix.length + 3, id);
    }
    const all = [...ordinals, ...later];
    assert.deepEqual([...all].sort(), all, 'ordinals sort in order, later ids after them in creation order');
    assert.equal(new Set(all).size, all.length);
  });

  it('idTime rejects things that are not ids', () => {
    for (const s of ['', 'ntf_', 'ntf', 'ntf_0123456789ABCDEFGHJKMNPQR', 'ntf_0123456789ABCDEFGHJKMNPQRST', 'ntf_0123456789abcdefghjkmnpqrs', 'ntf_0123456789ABCDEFGHJKMNPQIL', '_01ARZ3NDEKTSV4RRFFQ69G5FAV', 'NTF_01ARZ3NDEKTSV4RRFFQ69G5FAV']) {
      assert.equal(idTime(s), undefined, s);
    }
    assert.equal(idTime('ntf_01ARYZ6S41TSV4RRFFQ69G5FAV'), 1469918176385); // decodeTime example of the ULID reference implementation
  });

  it('encode any time so that idTime recovers it and later times sort later (property)', () => {
    // Runs last: it feeds ulid() future times, which move its "last time" forward. Each run starts
    // above the last time used so far (ulid() keeps ids increasing when the clock goes back).
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 2 ** 40 }), { minLength: 2, maxLength: 20 }), (offsets) => {
        const start = idTime(`x_${ulid()}`)! + 1;
        const times = offsets.sort((x, y) => x - y).map((o) => start + o);
        const ids = times.map((t) => ulid(t));
        for (let i = 0; i < ids.length; i++) {
          assert.match(ids[i]!, ULID);
          assert.equal(idTime(`x_${ids[i]}`), times[i]);
          if (i > 0) assert.ok(ids[i - 1]! < ids[i]!);
        }
      }),
      { numRuns: 50 },
    );
  });
});
