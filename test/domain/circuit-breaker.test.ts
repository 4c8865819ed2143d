import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CircuitBreaker } from '../../src/domain/circuit-breaker.ts';

const opts = { threshold: 3, cooldownMs: 1000, maxCooldownMs: 8000 };

describe('CircuitBreaker', () => {
  it('opens after threshold consecutive retryable failures; a success in between resets the count', () => {
    const b = new CircuitBreaker(opts);
    assert.equal(b.failure(0), false);
    assert.equal(b.failure(1), false);
    b.success();
    assert.equal(b.failure(2), false);
    assert.equal(b.failure(3), false);
    assert.equal(b.state(3), 'closed');
    assert.equal(b.failure(4), true);
    assert.equal(b.state(4), 'open');
    assert.equal(b.admit(5, 10), 0, 'an open circuit admits nothing');
    assert.equal(b.openUntil, 1004);
  });

  it('half-open after the cooldown admits exactly one probe at a time', () => {
    const b = new CircuitBreaker(opts);
    for (let i = 0; i < 3; i++) b.failure(0);
    assert.equal(b.state(999), 'open');
    assert.equal(b.state(1000), 'half_open');
    assert.equal(b.admit(1000, 10), 1);
    assert.equal(b.admit(1001, 10), 0, 'while the probe runs');
    b.cancelProbe();
    assert.equal(b.admit(1002, 10), 1, 'a cancelled probe frees the slot');
    b.success();
    assert.equal(b.state(1003), 'closed');
    assert.equal(b.admit(1003, 10), 10);
  });

  it('a failed probe reopens with the cooldown doubled, up to the maximum; success resets it', () => {
    const b = new CircuitBreaker(opts);
    for (let i = 0; i < 3; i++) b.failure(0);
    let t = 0;
    const cooldowns: number[] = [];
    for (let i = 0; i < 6; i++) {
      t = b.openUntil;
      assert.equal(b.admit(t, 5), 1);
      assert.equal(b.failure(t), true);
      cooldowns.push(b.openUntil - t);
    }
    assert.deepEqual(cooldowns, [2000, 4000, 8000, 8000, 8000, 8000]);
    assert.equal(b.admit(b.openUntil, 1), 1);
    b.success();
    for (let i = 0; i < 3; i++) b.failure(t + 100_000);
    assert.equal(b.openUntil - (t + 100_000), 1000, 'the cooldown starts over after a close');
  });

  it('property: never more than one attempt admitted while not closed', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant('fail'), fc.constant('ok'), fc.constant('cancel'), fc.integer({ min: 0, max: 3000 })), { maxLength: 200 }), (ops) => {
        const b = new CircuitBreaker(opts);
        let now = 0;
        let inFlightWhileNotClosed = 0;
        for (const op of ops) {
          if (typeof op === 'number') {
            now += op;
            const wasClosed = b.state(now) === 'closed';
            const n = b.admit(now, 5);
            if (!wasClosed) inFlightWhileNotClosed += n;
            if (inFlightWhileNotClosed > 1) return false;
          } else if (op === 'fail') {
            b.failure(now);
            inFlightWhileNotClosed = 0;
          } else if (op === 'ok') {
            b.success();
            inFlightWhileNotClosed = 0;
          } else {
            b.cancelProbe();
            inFlightWhileNotClosed = 0;
          }
        }
        return true;
      }),
    );
  });
});
