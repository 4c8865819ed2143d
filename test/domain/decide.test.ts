import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decideRecipient, type DecideInput, type KindRules } from '../../src/domain/decide.ts';

const transactional: KindRules = { mandatory: false, channels: null, quietHours: 'defer', blackout: 'defer' };
const NOW = Date.parse('2026-11-22T14:00:00Z'); // 23:00 in Seoul
const night = { start: '22:00', end: '08:00' };
const base = (over: Partial<DecideInput> = {}): DecideInput => ({ kind: transactional, configured: ['webhook', 'email', 'sms', 'fcm'], now: NOW, ...over });
const brief = (ds: { channel: string; status: string; reason: string | null; deviceId?: string }[]) => ds.map((d) => [d.channel, d.status, d.reason, ...(d.deviceId ? [d.deviceId] : [])]);

describe('decideRecipient', () => {
  it('default channels: every reachable one, now; unreachable ones are left out silently', () => {
    const out = decideRecipient(base(), { id: 'a', reachable: new Set(['email', 'webhook']) });
    assert.deepEqual(brief(out.deliveries), [['webhook', 'pending', null], ['email', 'pending', null]]);
    assert.equal(out.reachable, true);
  });

  it('explicit channels record why a channel is not used; a recipient with nothing usable is unreachable', () => {
    const out = decideRecipient(base({ requested: ['sms', 'push' as never] }), { id: 'a', reachable: new Set(['email']) });
    assert.deepEqual(brief(out.deliveries), [['sms', 'skipped', 'no_address'], ['push', 'skipped', 'channel_not_configured']]);
    assert.equal(out.reachable, false);
  });

  it('device channels expand to one delivery per device', () => {
    const out = decideRecipient(base({ requested: ['fcm'] }), { id: 'a', reachable: new Set(), devices: new Map([['fcm', ['d1', 'd2']]]) });
    assert.deepEqual(brief(out.deliveries), [['fcm', 'pending', null, 'd1'], ['fcm', 'pending', null, 'd2']]);
  });

  it('opting out skips every channel as opted_out, and is not "unreachable"', () => {
    const out = decideRecipient(base(), { id: 'a', reachable: new Set(['email']), preference: { allowed: false } });
    assert.deepEqual(brief(out.deliveries), [['email', 'skipped', 'opted_out']]);
    assert.equal(out.reachable, true);
  });

  it('quiet hours in the recipient\'s zone: defer to the window end, drop, ignore; mandatory kinds go through', () => {
    const r = { id: 'a', reachable: new Set(['email']), quietHours: night, timeZone: 'Asia/Seoul' };
    const deferred = decideRecipient(base(), r).deliveries[0]!;
    assert.deepEqual([deferred.status, deferred.reason, new Date(deferred.runAt).toISOString()], ['scheduled', 'quiet_hours', '2026-11-22T23:00:00.000Z']);
    assert.deepEqual(brief(decideRecipient(base({ kind: { ...transactional, quietHours: 'drop' } }), r).deliveries), [['email', 'skipped', 'quiet_hours']]);
    assert.deepEqual(brief(decideRecipient(base({ kind: { ...transactional, quietHours: 'ignore' } }), r).deliveries), [['email', 'pending', null]]);
    assert.deepEqual(brief(decideRecipient(base({ kind: { ...transactional, mandatory: true } }), { ...r, preference: { allowed: false } }).deliveries), [['email', 'pending', null]]);
    // The same instant is 14:00 in UTC: not quiet for a recipient there.
    assert.deepEqual(brief(decideRecipient(base(), { ...r, timeZone: 'UTC' }).deliveries), [['email', 'pending', null]]);
  });

  it('send_at inside quiet hours goes at the end of that night', () => {
    const sendAt = Date.parse('2026-11-23T15:30:00Z'); // 00:30 Seoul, the next night
    const d = decideRecipient(base({ sendAt }), { id: 'a', reachable: new Set(['email']), quietHours: night, timeZone: 'Asia/Seoul' }).deliveries[0]!;
    assert.deepEqual([d.status, d.reason, new Date(d.runAt).toISOString()], ['scheduled', 'quiet_hours', '2026-11-23T23:00:00.000Z']);
  });

  it('channel blackout: defer waits for its end; fallback skips it when another channel goes, else waits', () => {
    const blackouts = { sms: { start: '21:00', end: '08:00', timeZone: 'Asia/Seoul' } };
    const both = { id: 'a', reachable: new Set(['email', 'sms']) };
    const deferred = decideRecipient(base({ blackouts }), both).deliveries;
    assert.deepEqual(brief(deferred), [['email', 'pending', null], ['sms', 'scheduled', 'blackout']]);
    assert.equal(new Date(deferred[1]!.runAt).toISOString(), '2026-11-22T23:00:00.000Z');
    const fallback = { ...transactional, blackout: 'fallback' as const };
    assert.deepEqual(brief(decideRecipient(base({ blackouts, kind: fallback }), both).deliveries), [['email', 'pending', null], ['sms', 'skipped', 'blackout']]);
    assert.deepEqual(brief(decideRecipient(base({ blackouts, kind: fallback }), { id: 'a', reachable: new Set(['sms']) }).deliveries), [['sms', 'scheduled', 'blackout']]);
  });

  it('property: every delivery is pending, scheduled or skipped, never before now; a pending one is due now', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 86_400_000 * 3 }),
        fc.subarray(['webhook', 'email', 'sms', 'fcm']),
        fc.constantFrom('defer', 'drop', 'ignore'),
        fc.boolean(),
        fc.constantFrom('Asia/Seoul', 'Europe/Berlin', 'America/New_York', 'UTC'),
        (offset, reachable, quiet, mandatory, tz) => {
          const out = decideRecipient(base({ now: NOW + offset, kind: { ...transactional, quietHours: quiet as never, mandatory } }), { id: 'a', reachable: new Set(reachable), quietHours: night, timeZone: tz });
          return out.deliveries.every((d) => d.runAt >= NOW + offset && (d.status !== 'pending' || d.runAt === NOW + offset) && (!mandatory || d.status === 'pending'));
        },
      ),
    );
  });
});
