import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decideChannels, validatePreferences, type ChannelInput } from '../../src/domain/preferences.ts';

const configured = ['webhook', 'email', 'sms', 'push'];
const base = (over: Partial<ChannelInput> = {}): ChannelInput => ({
  kind: { mandatory: false, channels: null, routing: 'all' },
  configured,
  reachable: new Set(['email', 'sms', 'push']),
  ...over,
});
const send = (channel: string) => ({ channel, decision: 'send' as const });
const skip = (channel: string, reason: string) => ({ channel, decision: 'skip' as const, reason });

describe('decideChannels', () => {
  it('no kind channels: every configured channel in configured order, unreachable ones skipped', () => {
    assert.deepEqual(decideChannels(base()), {
      channels: [skip('webhook', 'no_address'), send('email'), send('sms'), send('push')],
      optedOut: false,
    });
  });

  it('kind channels restrict and order the candidates', () => {
    const kind = { mandatory: false, channels: ['sms', 'email', 'kakao'], routing: 'all' as const };
    assert.deepEqual(decideChannels(base({ kind })).channels, [send('sms'), send('email'), skip('kakao', 'channel_not_configured')]);
  });

  it('requested channels override the kind channels (duplicates collapsed)', () => {
    const kind = { mandatory: false, channels: ['sms'], routing: 'all' as const };
    assert.deepEqual(decideChannels(base({ kind, requested: ['push', 'webhook', 'push'] })).channels, [send('push'), skip('webhook', 'no_address')]);
    assert.deepEqual(decideChannels(base({ kind, requested: [] })), { channels: [], optedOut: false });
  });

  it('opting out of a kind skips every candidate as opted_out', () => {
    assert.deepEqual(decideChannels(base({ preference: { allowed: false } })), {
      channels: ['webhook', 'email', 'sms', 'push'].map((c) => skip(c, 'opted_out')),
      optedOut: true,
    });
  });

  it('a mandatory kind bypasses opt-out and channel preferences', () => {
    const kind = { mandatory: true, channels: ['email', 'sms'], routing: 'all' as const };
    assert.deepEqual(decideChannels(base({ kind, preference: { allowed: false, channels: ['push'] } })), {
      channels: [send('email'), send('sms')],
      optedOut: false,
    });
  });

  it('a channel preference restricts within the kind, keeping the kind order', () => {
    const kind = { mandatory: false, channels: ['email', 'sms', 'push'], routing: 'all' as const };
    assert.deepEqual(decideChannels(base({ kind, preference: { channels: ['push', 'email'] } })), {
      channels: [send('email'), skip('sms', 'opted_out'), send('push')],
      optedOut: false,
    });
    // a preferred channel outside the kind's channels does not add it
    assert.deepEqual(decideChannels(base({ kind, preference: { channels: ['webhook'] } })).optedOut, true);
  });

  it('a channel preference also restricts requested channels; an empty list opts out of all', () => {
    assert.deepEqual(decideChannels(base({ requested: ['email', 'sms'], preference: { allowed: true, channels: ['sms'] } })).channels, [
      skip('email', 'opted_out'),
      send('sms'),
    ]);
    assert.equal(decideChannels(base({ preference: { channels: [] } })).optedOut, true);
  });

  it('opted out of some channels and unreachable on the rest is not optedOut', () => {
    const out = decideChannels(base({ preference: { channels: ['webhook'] }, requested: ['webhook', 'email'] }));
    assert.deepEqual(out, { channels: [skip('webhook', 'no_address'), skip('email', 'opted_out')], optedOut: false });
  });

  it('first routing: only the highest-priority sendable channel; the other sendable ones are not_first, in order', () => {
    const kind = { mandatory: false, channels: ['webhook', 'kakao', 'sms', 'email', 'push'], routing: 'first' as const };
    assert.deepEqual(decideChannels(base({ kind, preference: { channels: ['webhook', 'kakao', 'sms', 'email'] } })).channels, [
      skip('webhook', 'no_address'),
      skip('kakao', 'channel_not_configured'),
      send('sms'),
      skip('email', 'not_first'),
      skip('push', 'opted_out'),
    ]);
  });

  it('first routing with nothing sendable sends nothing', () => {
    const kind = { mandatory: false, channels: ['webhook'], routing: 'first' as const };
    assert.deepEqual(decideChannels(base({ kind })).channels, [skip('webhook', 'no_address')]);
  });

  const channel = fc.constantFrom<string>('webhook', 'email', 'sms', 'push', 'kakao');
  const input = fc.record({
    kind: fc.record({
      mandatory: fc.boolean(),
      channels: fc.option(fc.uniqueArray(channel, { maxLength: 5 }), { nil: null }),
      routing: fc.constantFrom('all' as const, 'first' as const),
    }),
    requested: fc.option(fc.array(channel, { maxLength: 5 }), { nil: undefined }),
    configured: fc.uniqueArray(channel, { maxLength: 5 }),
    reachable: fc.uniqueArray(channel, { maxLength: 5 }).map((a) => new Set(a)),
    preference: fc.option(fc.record({ allowed: fc.option(fc.boolean(), { nil: undefined }), channels: fc.option(fc.uniqueArray(channel), { nil: undefined }) }, { requiredKeys: [] }), {
      nil: undefined,
    }),
  });

  it('property: mandatory kinds are never opted out', () => {
    fc.assert(
      fc.property(input, (i) => {
        const out = decideChannels({ ...i, kind: { ...i.kind, mandatory: true } });
        assert.equal(out.optedOut, false);
        assert.ok(out.channels.every((d) => d.reason !== 'opted_out'));
      }),
    );
  });

  it('property: with first routing at most one send, and it comes before every not_first', () => {
    fc.assert(
      fc.property(input, (i) => {
        const out = decideChannels({ ...i, kind: { ...i.kind, routing: 'first' } });
        const sends = out.channels.flatMap((d, n) => (d.decision === 'send' ? [n] : []));
        assert.ok(sends.length <= 1);
        const notFirst = out.channels.flatMap((d, n) => (d.reason === 'not_first' ? [n] : []));
        if (notFirst.length) assert.ok(sends.length === 1 && sends[0]! < notFirst[0]!);
        // first sends exactly what `all` would send first, and `all` sends what first sends or defers
        const all = decideChannels({ ...i, kind: { ...i.kind, routing: 'all' } });
        assert.deepEqual(
          all.channels.filter((d) => d.decision === 'send').map((d) => d.channel),
          out.channels.filter((d) => d.decision === 'send' || d.reason === 'not_first').map((d) => d.channel),
        );
      }),
    );
  });

  it('property: one decision per candidate, in candidate order, each with the right reason', () => {
    fc.assert(
      fc.property(input, (i) => {
        const out = decideChannels(i);
        const candidates = [...new Set(i.requested ?? i.kind.channels ?? i.configured)];
        assert.deepEqual(out.channels.map((d) => d.channel), candidates);
        const honour = !i.kind.mandatory && i.preference;
        for (const d of out.channels) {
          const optedOut = !!honour && (i.preference!.allowed === false || (i.preference!.channels !== undefined && !i.preference!.channels.includes(d.channel)));
          if (optedOut) assert.equal(d.reason, 'opted_out');
          else if (!i.configured.includes(d.channel)) assert.equal(d.reason, 'channel_not_configured');
          else if (!i.reachable.has(d.channel)) assert.equal(d.reason, 'no_address');
          else assert.ok(d.decision === 'send' || d.reason === 'not_first');
          assert.equal(d.decision === 'send', d.reason === undefined);
        }
        assert.equal(out.optedOut, candidates.length > 0 && out.channels.every((d) => d.reason === 'opted_out'));
      }),
    );
  });
});

describe('validatePreferences', () => {
  const kinds = { security: { mandatory: true }, transactional: { mandatory: false }, marketing: { mandatory: false } };

  it('accepts opting out of optional kinds, channel lists, and quiet hours', () => {
    assert.deepEqual(
      validatePreferences(kinds, {
        kinds: { marketing: { allowed: false }, transactional: { channels: ['email'] }, security: { allowed: true, channels: ['sms'] } },
        quiet_hours: { start: '22:00', end: '08:00' },
      }),
      [],
    );
    assert.deepEqual(validatePreferences(kinds, {}), []);
    assert.deepEqual(validatePreferences(kinds, { quiet_hours: null }), []);
  });

  it('refuses opting out of a mandatory kind', () => {
    assert.deepEqual(validatePreferences(kinds, { kinds: { security: { allowed: false } } }), [
      { path: 'body.kinds.security.allowed', message: '"security" is mandatory: it cannot be turned off' },
    ]);
  });

  it('refuses unknown kinds (including inherited names) and bad quiet hours, under the given path', () => {
    assert.deepEqual(
      validatePreferences(kinds, { kinds: { newsletter: { allowed: true }, toString: {} }, quiet_hours: { start: '22:00', end: '8:00' } }, 'prefs').map((e) => e.path),
      ['prefs.kinds.newsletter', 'prefs.kinds.toString', 'prefs.quiet_hours.end'],
    );
  });

  it('property: an error for a kind exactly when it is unknown or a mandatory one is turned off', () => {
    const name = fc.constantFrom('security', 'transactional', 'marketing', 'other');
    fc.assert(
      fc.property(fc.dictionary(name, fc.record({ allowed: fc.option(fc.boolean(), { nil: undefined }) }, { requiredKeys: [] })), (prefKinds) => {
        const errors = validatePreferences(kinds, { kinds: prefKinds });
        const expected = Object.entries(prefKinds).filter(([k, p]) => k === 'other' || (k === 'security' && p.allowed === false));
        assert.equal(errors.length, expected.length);
      }),
    );
  });
});
