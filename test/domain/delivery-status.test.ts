import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DELIVERY_STATUSES, summarizeNotification, type DeliveryStatus, type StatusCounts } from '../../src/domain/delivery-status.ts';

describe('summarizeNotification', () => {
  const cases: [StatusCounts, string][] = [
    [{ pending: 1 }, 'accepted'],
    [{ pending: 3 }, 'accepted'],
    [{ sending: 1 }, 'in_progress'],
    [{ failed: 1 }, 'in_progress'],
    [{ pending: 1, sending: 1 }, 'in_progress'],
    [{ pending: 1, sent: 1 }, 'in_progress'],
    [{ failed: 1, exhausted: 1 }, 'in_progress'],
    [{ sending: 2, sent: 5, exhausted: 1 }, 'in_progress'],
    [{ sent: 1 }, 'sent'],
    [{ sent: 2, skipped: 1 }, 'sent'],
    [{ sent: 1, exhausted: 1 }, 'partial'],
    [{ sent: 1, discarded: 1 }, 'partial'],
    [{ sent: 3, exhausted: 1, skipped: 2 }, 'partial'],
    [{ exhausted: 1 }, 'failed'],
    [{ discarded: 1 }, 'failed'],
    [{ exhausted: 1, discarded: 1, skipped: 1 }, 'failed'],
    [{ skipped: 1 }, 'skipped'],
    [{ skipped: 4 }, 'skipped'],
    [{ sent: 1, pending: 0, failed: 0 }, 'sent'], // explicit zeros count as absent
  ];
  for (const [counts, expected] of cases) {
    it(`${JSON.stringify(counts)} -> ${expected}`, () => {
      assert.equal(summarizeNotification(counts), expected);
    });
  }

  it('is consistent with the definitions for any mix (property)', () => {
    const counts = fc.record(Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, fc.nat({ max: 5 })])) as Record<DeliveryStatus, fc.Arbitrary<number>>, {
      requiredKeys: [],
    });
    fc.assert(
      fc.property(counts, (c) => {
        const n = (s: DeliveryStatus) => c[s] ?? 0;
        const status = summarizeNotification(c);
        const waiting = n('pending') + n('scheduled') + n('throttled') + n('standby');
        const active = waiting + n('sending') + n('failed');
        const total = DELIVERY_STATUSES.reduce((a, s) => a + n(s), 0);
        if (active > 0) {
          assert.ok(status === 'accepted' || status === 'in_progress', status);
          // accepted only while no delivery has been attempted or finished
          assert.equal(status === 'accepted', waiting === total);
          return;
        }
        if (total === 0) return; // no deliveries: not a state the store produces
        const ok = n('sent') + n('delivered') + n('read') + n('acknowledged') + n('digested');
        const problems = n('exhausted') + n('discarded') + n('undelivered');
        if (ok > 0) assert.equal(status, problems > 0 ? 'partial' : 'sent');
        else if (problems > 0) assert.equal(status, 'failed');
        else if (n('cancelled') > 0) assert.equal(status, 'cancelled');
        else assert.equal(status, 'skipped');
      }),
    );
  });
});
