import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { planDeliveries } from '../../src/domain/routing.ts';

type C = 'webhook' | 'email' | 'sms';
const r = (id: string, ...reachable: C[]) => ({ id, reachable: new Set<C>(reachable) });

describe('planDeliveries', () => {
  it('default channels: every configured channel the recipient has an address on, in configured order', () => {
    const plan = planDeliveries<C>({ recipients: [r('a', 'email', 'webhook'), r('b', 'email')], configured: ['webhook', 'email'] });
    assert.deepEqual(plan.deliveries, [
      { recipientId: 'a', channel: 'webhook' },
      { recipientId: 'a', channel: 'email' },
      { recipientId: 'b', channel: 'email' },
    ]);
    assert.deepEqual(plan.unreachable, []);
  });

  it('default channels: channels without an address are silently left out, not skipped', () => {
    const plan = planDeliveries<C>({ recipients: [r('a', 'webhook')], configured: ['webhook', 'email'] });
    assert.deepEqual(plan.deliveries, [{ recipientId: 'a', channel: 'webhook' }]);
  });

  it('default channels: a recipient reachable only on an unconfigured channel is unreachable', () => {
    const plan = planDeliveries<C>({ recipients: [r('a', 'sms'), r('b', 'webhook')], configured: ['webhook'] });
    assert.deepEqual(plan.deliveries, [{ recipientId: 'b', channel: 'webhook' }]);
    assert.deepEqual(plan.unreachable, ['a']);
  });

  it('explicit channels: only those, with skips recorded and their reasons', () => {
    const plan = planDeliveries<C>({
      recipients: [r('a', 'email', 'webhook'), r('b', 'webhook')],
      requested: ['email', 'sms'],
      configured: ['webhook', 'email'],
    });
    assert.deepEqual(plan.deliveries, [
      { recipientId: 'a', channel: 'email' },
      { recipientId: 'a', channel: 'sms', skip: 'channel_not_configured' },
      { recipientId: 'b', channel: 'email', skip: 'no_address' },
      { recipientId: 'b', channel: 'sms', skip: 'channel_not_configured' },
    ]);
    assert.deepEqual(plan.unreachable, ['b']);
  });

  it('explicit channels: duplicates are collapsed', () => {
    const plan = planDeliveries<C>({ recipients: [r('a', 'email')], requested: ['email', 'email'], configured: ['email'] });
    assert.deepEqual(plan.deliveries, [{ recipientId: 'a', channel: 'email' }]);
  });

  it('explicit channels: a channel that is configured but not requested is not used', () => {
    const plan = planDeliveries<C>({ recipients: [r('a', 'email', 'webhook')], requested: ['email'], configured: ['webhook', 'email'] });
    assert.deepEqual(plan.deliveries, [{ recipientId: 'a', channel: 'email' }]);
  });

  it('nothing configured: everyone is unreachable', () => {
    const plan = planDeliveries<C>({ recipients: [r('a', 'email'), r('b')], configured: [] });
    assert.deepEqual(plan, { deliveries: [], unreachable: ['a', 'b'] });
  });

  it('invariants (property)', () => {
    const channel = fc.constantFrom<C>('webhook', 'email', 'sms');
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ id: fc.string({ minLength: 1, maxLength: 4 }), reachable: fc.uniqueArray(channel) }), { selector: (x) => x.id, maxLength: 6 }),
        fc.option(fc.array(channel, { minLength: 1, maxLength: 4 }), { nil: undefined }),
        fc.uniqueArray(channel),
        (rs, requested, configured) => {
          const recipients = rs.map((x) => ({ id: x.id, reachable: new Set(x.reachable) }));
          const plan = planDeliveries({ recipients, requested, configured });
          for (const rec of recipients) {
            const mine = plan.deliveries.filter((d) => d.recipientId === rec.id);
            const pending = mine.filter((d) => !d.skip);
            // pending exactly where the channel is a candidate, configured and reachable
            const candidates = requested ? [...new Set(requested)] : configured;
            assert.deepEqual(pending.map((d) => d.channel), candidates.filter((c) => configured.includes(c) && rec.reachable.has(c)));
            // skips only for explicit requests, and with the right reason
            for (const d of mine.filter((d) => d.skip)) {
              assert.ok(requested, 'skip without an explicit request');
              assert.equal(d.skip, configured.includes(d.channel) ? 'no_address' : 'channel_not_configured');
            }
            if (requested) assert.equal(mine.length, new Set(requested).size);
            // no duplicate channel per recipient
            assert.equal(new Set(mine.map((d) => d.channel)).size, mine.length);
            assert.equal(plan.unreachable.includes(rec.id), pending.length === 0);
          }
        },
      ),
    );
  });
});

describe('planDeliveries with devices', () => {
  type P = 'webhook' | 'fcm' | 'apns';
  it('one delivery per device, in device order; a device channel without devices is no_address', () => {
    const plan = planDeliveries<P>({
      recipients: [
        { id: 'a', reachable: new Set<P>(['webhook']), devices: new Map<P, string[]>([['fcm', ['d1', 'd2']], ['apns', []]]) },
        { id: 'b', reachable: new Set<P>(), devices: new Map<P, string[]>([['fcm', []], ['apns', ['d3']]]) },
      ],
      requested: ['fcm', 'apns'],
      configured: ['webhook', 'fcm', 'apns'],
    });
    assert.deepEqual(plan.deliveries, [
      { recipientId: 'a', channel: 'fcm', deviceId: 'd1' },
      { recipientId: 'a', channel: 'fcm', deviceId: 'd2' },
      { recipientId: 'a', channel: 'apns', skip: 'no_address' },
      { recipientId: 'b', channel: 'fcm', skip: 'no_address' },
      { recipientId: 'b', channel: 'apns', deviceId: 'd3' },
    ]);
    assert.deepEqual(plan.unreachable, []);
  });

  it('a recipient whose only devices are on an unconfigured platform is unreachable', () => {
    const plan = planDeliveries<P>({
      recipients: [{ id: 'a', reachable: new Set<P>(), devices: new Map<P, string[]>([['apns', ['d1']]]) }],
      configured: ['webhook', 'fcm'],
    });
    assert.deepEqual(plan.deliveries, []);
    assert.deepEqual(plan.unreachable, ['a']);
  });
});
