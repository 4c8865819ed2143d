import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TokenBucket } from '../../src/domain/token-bucket.ts';

describe('TokenBucket', () => {
  it('starts full, refills at the rate, never beyond capacity', () => {
    const b = new TokenBucket(10, 5, 0);
    assert.equal(b.take(0, 8), 5);
    assert.equal(b.take(0, 1), 0);
    assert.equal(b.msUntilNext(0), 100);
    assert.equal(b.take(250, 10), 2);
    assert.equal(b.available(10_000), 5);
  });

  it('gives back unused tokens, up to capacity', () => {
    const b = new TokenBucket(1, 3, 0);
    assert.equal(b.take(0, 3), 3);
    b.giveBack(2);
    assert.equal(b.available(0), 2);
    b.giveBack(10);
    assert.equal(b.available(0), 3);
  });

  it('refuses a non-positive rate or a capacity below 1', () => {
    assert.throws(() => new TokenBucket(0, 1, 0), RangeError);
    assert.throws(() => new TokenBucket(1, 0.5, 0), RangeError);
  });

  it('property: over any window, no more than capacity + rate × seconds are taken', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.1, max: 1000, noNaN: true }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 100 })), { maxLength: 100 }),
        (rate, capacity, steps) => {
          const b = new TokenBucket(rate, capacity, 0);
          let now = 0;
          let taken = 0;
          for (const [dt, want] of steps) {
            now += dt;
            const got = b.take(now, want);
            if (got < 0 || got > want) return false;
            taken += got;
          }
          return taken <= capacity + (rate * now) / 1000 + 1e-9;
        },
      ),
    );
  });
});
