import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decideRetry, JITTER, parseRetryAfter, type FailureKind } from '../../src/domain/retry.ts';

const SCHEDULE = [5_000, 300_000, 1_800_000];

describe('decideRetry', () => {
  it('gives 1 + schedule.length attempts', () => {
    for (const schedule of [[], [100], [100, 200, 300], SCHEDULE]) {
      let attempts = 0;
      for (;;) {
        attempts++;
        const d = decideRetry({ attempts, schedule, kind: 'retryable', random: 0.5 });
        if (d.outcome === 'exhausted') break;
        assert.ok(attempts < 100, 'never exhausts');
      }
      assert.equal(attempts, 1 + schedule.length, `schedule ${JSON.stringify(schedule)}`);
    }
  });

  it('uses schedule[attempts - 1] as the base delay (random 0.5 = no jitter)', () => {
    assert.deepEqual(decideRetry({ attempts: 1, schedule: SCHEDULE, kind: 'retryable', random: 0.5 }), { outcome: 'retry', delayMs: 5_000 });
    assert.deepEqual(decideRetry({ attempts: 2, schedule: SCHEDULE, kind: 'retryable', random: 0.5 }), { outcome: 'retry', delayMs: 300_000 });
    assert.deepEqual(decideRetry({ attempts: 3, schedule: SCHEDULE, kind: 'rate_limited', random: 0.5 }), { outcome: 'retry', delayMs: 1_800_000 });
    assert.deepEqual(decideRetry({ attempts: 4, schedule: SCHEDULE, kind: 'retryable', random: 0.5 }), { outcome: 'exhausted' });
  });

  it('jitters each delay within ±20% (property)', () => {
    assert.equal(JITTER, 0.2);
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 30 * 86_400_000 }), { minLength: 1, maxLength: 10 }),
        fc.nat(),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.constantFrom<FailureKind>('retryable', 'rate_limited'),
        (schedule, i, random, kind) => {
          const attempts = (i % schedule.length) + 1;
          const base = schedule[attempts - 1]!;
          const d = decideRetry({ attempts, schedule, kind, random });
          assert.equal(d.outcome, 'retry');
          if (d.outcome !== 'retry') return;
          assert.ok(Number.isInteger(d.delayMs));
          assert.ok(d.delayMs >= Math.floor(base * 0.8) && d.delayMs <= Math.ceil(base * 1.2), `${d.delayMs} outside ±20% of ${base}`);
        },
      ),
    );
  });

  it('spreads delays across the jitter range (not a constant)', () => {
    const lo = decideRetry({ attempts: 1, schedule: [10_000], kind: 'retryable', random: 0 });
    const hi = decideRetry({ attempts: 1, schedule: [10_000], kind: 'retryable', random: 0.999999 });
    assert.deepEqual(lo, { outcome: 'retry', delayMs: 8_000 });
    assert.deepEqual(hi, { outcome: 'retry', delayMs: 12_000 });
    // Without an injected random, real randomness is used: 50 draws are not all equal.
    const draws = new Set(Array.from({ length: 50 }, () => (decideRetry({ attempts: 1, schedule: [10_000], kind: 'retryable' }) as { delayMs: number }).delayMs));
    assert.ok(draws.size > 1);
  });

  it('exhausts a permanent failure immediately, whatever the schedule', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 10 }), fc.integer({ min: 1, max: 20 }), fc.option(fc.nat()), (schedule, attempts, retryAfterMs) => {
        assert.deepEqual(decideRetry({ attempts, schedule, kind: 'permanent', retryAfterMs: retryAfterMs ?? undefined }), { outcome: 'exhausted' });
      }),
    );
  });

  it('honours Retry-After within [jittered, 2 × scheduled] (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 86_400_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.integer({ min: 0, max: 10 * 86_400_000 }),
        fc.constantFrom<FailureKind>('retryable', 'rate_limited'),
        (base, random, retryAfterMs, kind) => {
          const plain = decideRetry({ attempts: 1, schedule: [base], kind, random });
          const withHeader = decideRetry({ attempts: 1, schedule: [base], kind, random, retryAfterMs });
          assert.equal(plain.outcome, 'retry');
          assert.equal(withHeader.outcome, 'retry');
          if (plain.outcome !== 'retry' || withHeader.outcome !== 'retry') return;
          const jittered = plain.delayMs;
          // never sooner than the jittered schedule, never later than twice the scheduled delay
          assert.ok(withHeader.delayMs >= jittered, `${withHeader.delayMs} < jittered ${jittered}`);
          assert.ok(withHeader.delayMs <= Math.max(2 * base, jittered), `${withHeader.delayMs} > 2 × ${base}`);
          // and within those bounds, exactly what the receiver asked for
          const expected = Math.min(Math.max(retryAfterMs, jittered), Math.max(2 * base, jittered));
          assert.equal(withHeader.delayMs, expected);
        },
      ),
    );
  });

  it('Retry-After examples', () => {
    const r = (retryAfterMs: number) => decideRetry({ attempts: 1, schedule: [10_000], kind: 'rate_limited', random: 0.5, retryAfterMs });
    assert.deepEqual(r(1_000), { outcome: 'retry', delayMs: 10_000 }); // sooner than the schedule: schedule wins
    assert.deepEqual(r(15_000), { outcome: 'retry', delayMs: 15_000 }); // within bounds: honoured
    assert.deepEqual(r(3_600_000), { outcome: 'retry', delayMs: 20_000 }); // capped at 2 × scheduled
  });

  it('a Retry-After cannot extend the number of attempts', () => {
    assert.deepEqual(decideRetry({ attempts: 2, schedule: [100], kind: 'rate_limited', retryAfterMs: 1000 }), { outcome: 'exhausted' });
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2025, 0, 15, 12, 0, 0);

  it('parses delta-seconds', () => {
    assert.equal(parseRetryAfter('0', now), 0);
    assert.equal(parseRetryAfter('1', now), 1000);
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(' 30 ', now), 30_000);
  });

  it('parses HTTP dates relative to now', () => {
    assert.equal(parseRetryAfter('Wed, 15 Jan 2025 12:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Wed, 15 Jan 2025 13:00:00 GMT', now), 3_600_000);
    // A date in the past means "now", never a negative delay.
    assert.equal(parseRetryAfter('Tue, 14 Jan 2025 12:00:00 GMT', now), 0);
  });

  it('ignores absent and unparseable values', () => {
    assert.equal(parseRetryAfter(undefined, now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
    assert.equal(parseRetryAfter('', now), undefined);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter('next tuesday-ish', now), undefined);
  });

  it('never returns a negative or non-finite delay (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        const v = parseRetryAfter(s, now);
        if (v !== undefined) assert.ok(v >= 0 && Number.isFinite(v), `${JSON.stringify(s)} -> ${v}`);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), (n) => {
        assert.equal(parseRetryAfter(String(n), now), n * 1000);
      }),
    );
  });
});
