import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IANAZone } from 'luxon';
import { CLOCK_PATTERN, inWindow, isValidTimeZone, parseClock, windowEnd, windowErrors } from '../../src/domain/quiet-hours.ts';

const at = (iso: string) => Date.parse(iso);
const MIN = 60_000;
const HOUR = 3_600_000;
const night = { start: '22:00', end: '08:00' };

describe('parseClock', () => {
  it('reads HH:MM as minutes after midnight', () => {
    assert.equal(parseClock('00:00'), 0);
    assert.equal(parseClock('08:30'), 510);
    assert.equal(parseClock('22:00'), 1320);
    assert.equal(parseClock('23:59'), 1439);
  });

  it('refuses anything else with a clear error', () => {
    for (const bad of ['24:00', '7:00', '07:60', '0700', '', ' 07:00', '07:00 ', '07:00:00', '-1:00', '１２:００']) {
      assert.throws(() => parseClock(bad), /expected a local time "HH:MM" from 00:00 to 23:59/, bad);
    }
    assert.throws(() => parseClock(undefined as unknown as string), /HH:MM/);
  });

  it('CLOCK_PATTERN accepts exactly what parseClock accepts', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 6 }), fc.stringMatching(/^\d{1,3}:\d{1,3}$/)), (s) => {
        let ok = true;
        try {
          parseClock(s);
        } catch {
          ok = false;
        }
        assert.equal(new RegExp(CLOCK_PATTERN).test(s), ok);
      }),
    );
  });

  it('windowErrors names each bad end', () => {
    assert.deepEqual(windowErrors(night, 'body.quiet_hours'), []);
    assert.deepEqual(
      windowErrors({ start: '25:00', end: '8:00' }, 'body.quiet_hours').map((e) => e.path),
      ['body.quiet_hours.start', 'body.quiet_hours.end'],
    );
  });
});

describe('isValidTimeZone', () => {
  it('knows IANA zones and nothing else', () => {
    for (const z of ['Asia/Seoul', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Pacific/Chatham', 'UTC']) assert.ok(isValidTimeZone(z), z);
    for (const z of ['', 'Mars/Olympus', 'Seoul', 'Asia/Seoul ']) assert.ok(!isValidTimeZone(z), z);
  });

  it('an unknown zone is a clear error, not a silent answer', () => {
    assert.throws(() => inWindow(0, night, 'Mars/Olympus'), /unknown time zone "Mars\/Olympus"/);
    assert.throws(() => windowEnd(0, night, ''), /unknown time zone/);
    assert.throws(() => inWindow(0, { start: '22:00', end: '8' }, 'UTC'), /HH:MM/);
    assert.throws(() => windowEnd(Number.NaN, night, 'UTC'), /epoch milliseconds/);
  });
});

describe('inWindow', () => {
  it('a window across midnight (Asia/Seoul, +09:00, no DST)', () => {
    assert.equal(inWindow(at('2026-01-15T12:59:59.999Z'), night, 'Asia/Seoul'), false); // 21:59:59.999
    assert.equal(inWindow(at('2026-01-15T13:00:00Z'), night, 'Asia/Seoul'), true); // 22:00
    assert.equal(inWindow(at('2026-01-15T15:00:00Z'), night, 'Asia/Seoul'), true); // 00:00
    assert.equal(inWindow(at('2026-01-15T22:59:59.999Z'), night, 'Asia/Seoul'), true); // 07:59:59.999
    assert.equal(inWindow(at('2026-01-15T23:00:00Z'), night, 'Asia/Seoul'), false); // 08:00, end excluded
  });

  it('a window within one day', () => {
    const work = { start: '09:00', end: '17:00' };
    assert.equal(inWindow(at('2026-06-01T06:59:00Z'), work, 'Europe/Berlin'), false); // 08:59 CEST
    assert.equal(inWindow(at('2026-06-01T07:00:00Z'), work, 'Europe/Berlin'), true); // 09:00
    assert.equal(inWindow(at('2026-06-01T14:59:00Z'), work, 'Europe/Berlin'), true); // 16:59
    assert.equal(inWindow(at('2026-06-01T15:00:00Z'), work, 'Europe/Berlin'), false); // 17:00
  });

  it('start == end is the empty window', () => {
    for (let t = at('2026-03-08T00:00:00Z'); t < at('2026-03-09T00:00:00Z'); t += 15 * MIN) {
      assert.equal(inWindow(t, { start: '08:00', end: '08:00' }, 'America/New_York'), false);
    }
  });

  it('uses the offset in force at the instant (same UTC time, summer vs winter in Berlin)', () => {
    const evening = { start: '21:30', end: '22:30' };
    assert.equal(inWindow(at('2026-01-10T20:45:00Z'), evening, 'Europe/Berlin'), true); // 21:45 CET
    assert.equal(inWindow(at('2026-07-10T20:45:00Z'), evening, 'Europe/Berlin'), false); // 22:45 CEST
  });

  it('a repeated hour is inside both times it occurs (Berlin, 2026-10-25)', () => {
    const w = { start: '02:00', end: '02:30' };
    assert.equal(inWindow(at('2026-10-25T00:10:00Z'), w, 'Europe/Berlin'), true); // 02:10 CEST
    assert.equal(inWindow(at('2026-10-25T00:40:00Z'), w, 'Europe/Berlin'), false); // 02:40 CEST
    assert.equal(inWindow(at('2026-10-25T01:10:00Z'), w, 'Europe/Berlin'), true); // 02:10 CET
  });
});

describe('windowEnd', () => {
  it('outside the window it is `at` itself', () => {
    const t = at('2026-01-15T05:00:00Z'); // 14:00 KST
    assert.equal(windowEnd(t, night, 'Asia/Seoul'), t);
    assert.equal(windowEnd(t, { start: '14:00', end: '14:00' }, 'Asia/Seoul'), t);
  });

  it('before midnight it is the next morning, after midnight the same morning (Seoul)', () => {
    assert.equal(windowEnd(at('2026-01-15T14:30:00Z'), night, 'Asia/Seoul'), at('2026-01-15T23:00:00Z')); // 23:30 -> 08:00 next day
    assert.equal(windowEnd(at('2026-01-15T18:00:00Z'), night, 'Asia/Seoul'), at('2026-01-15T23:00:00Z')); // 03:00 -> 08:00
    assert.equal(windowEnd(at('2026-01-15T13:00:00Z'), night, 'Asia/Seoul'), at('2026-01-15T23:00:00Z')); // exactly 22:00
  });

  it('a window ending at midnight ends at the next local midnight', () => {
    assert.equal(windowEnd(at('2026-01-15T12:00:00Z'), { start: '20:00', end: '00:00' }, 'Asia/Seoul'), at('2026-01-15T15:00:00Z'));
  });

  it('New York spring forward (2026-03-08, 02:00 EST -> 03:00 EDT at 07:00Z)', () => {
    const ny = 'America/New_York';
    // end 02:30 does not exist that night: the first instant after the gap (03:00 EDT)
    assert.equal(windowEnd(at('2026-03-08T06:30:00Z'), { start: '22:00', end: '02:30' }, ny), at('2026-03-08T07:00:00Z'));
    assert.equal(windowEnd(at('2026-03-08T06:30:00Z'), { start: '01:00', end: '02:00' }, ny), at('2026-03-08T07:00:00Z'));
    // a window containing the skipped hour lasts one hour less
    assert.equal(windowEnd(at('2026-03-08T03:00:00Z'), { start: '22:00', end: '08:00' }, ny), at('2026-03-08T12:00:00Z'));
    assert.equal(windowEnd(at('2026-03-08T06:30:00Z'), { start: '01:00', end: '04:00' }, ny), at('2026-03-08T08:00:00Z'));
  });

  it('New York fall back (2026-11-01, 02:00 EDT -> 01:00 EST at 06:00Z)', () => {
    const ny = 'America/New_York';
    const w = { start: '22:00', end: '01:30' };
    assert.equal(windowEnd(at('2026-11-01T05:00:00Z'), w, ny), at('2026-11-01T05:30:00Z')); // 01:00 EDT -> first 01:30 (EDT)
    assert.equal(inWindow(at('2026-11-01T06:10:00Z'), w, ny), true); // 01:10 EST: the repeated hour is inside again
    assert.equal(windowEnd(at('2026-11-01T06:10:00Z'), w, ny), at('2026-11-01T06:30:00Z')); // -> 01:30 EST
    // a window containing the repeated hour lasts one hour more
    assert.equal(windowEnd(at('2026-11-01T03:00:00Z'), { start: '22:00', end: '08:00' }, ny), at('2026-11-01T13:00:00Z'));
  });

  it('Berlin spring forward (2026-03-29, 02:00 CET -> 03:00 CEST at 01:00Z)', () => {
    const b = 'Europe/Berlin';
    assert.equal(windowEnd(at('2026-03-29T00:30:00Z'), { start: '23:00', end: '02:30' }, b), at('2026-03-29T01:00:00Z'));
    assert.equal(windowEnd(at('2026-03-28T23:00:00Z'), { start: '23:00', end: '03:00' }, b), at('2026-03-29T01:00:00Z'));
    assert.equal(windowEnd(at('2026-03-28T22:00:00Z'), night, b), at('2026-03-29T06:00:00Z')); // 23:00 CET -> 08:00 CEST, 8 h
  });

  it('Berlin spring forward: a window whose left-out time is skipped runs on to the next day', () => {
    // 02:30–02:00 leaves out only 02:00–02:30, which does not occur on 2026-03-29
    const w = { start: '02:30', end: '02:00' };
    const t = at('2026-03-28T23:00:00Z'); // 00:00 CET, inside
    const end = windowEnd(t, w, 'Europe/Berlin');
    assert.equal(end, at('2026-03-30T00:00:00Z')); // 02:00 CEST on 2026-03-30
    assert.equal(inWindow(at('2026-03-29T01:00:00Z'), w, 'Europe/Berlin'), true); // 03:00 CEST right after the gap
  });

  it('Berlin fall back (2026-10-25, 03:00 CEST -> 02:00 CET at 01:00Z)', () => {
    const b = 'Europe/Berlin';
    const w = { start: '22:00', end: '02:30' };
    assert.equal(windowEnd(at('2026-10-25T00:10:00Z'), w, b), at('2026-10-25T00:30:00Z')); // 02:10 CEST -> first 02:30
    assert.equal(windowEnd(at('2026-10-25T01:10:00Z'), w, b), at('2026-10-25T01:30:00Z')); // 02:10 CET -> second 02:30
    assert.equal(windowEnd(at('2026-10-24T21:00:00Z'), night, b), at('2026-10-25T07:00:00Z')); // 23:00 CEST -> 08:00 CET, 11 h
    // the clock jumping back from 03:00 to 02:00 leaves a 02:15–04:00 window at once
    assert.equal(windowEnd(at('2026-10-25T00:30:00Z'), { start: '02:15', end: '04:00' }, b), at('2026-10-25T01:00:00Z'));
    assert.equal(windowEnd(at('2026-10-25T00:30:00Z'), { start: '01:00', end: '04:00' }, b), at('2026-10-25T03:00:00Z'));
  });

  it('Australia/Lord_Howe: 30-minute DST', () => {
    const lh = 'Australia/Lord_Howe';
    // 2026-10-04 02:00 +10:30 -> 02:30 +11:00 (15:30Z): end 02:15 is skipped
    assert.equal(windowEnd(at('2026-10-03T15:00:00Z'), { start: '22:00', end: '02:15' }, lh), at('2026-10-03T15:30:00Z'));
    // 2026-04-05 02:00 +11:00 -> 01:30 +10:30 (15:00Z): end 01:45 occurs twice
    assert.equal(windowEnd(at('2026-04-04T14:40:00Z'), { start: '22:00', end: '01:45' }, lh), at('2026-04-04T14:45:00Z'));
    assert.equal(windowEnd(at('2026-04-04T15:05:00Z'), { start: '22:00', end: '01:45' }, lh), at('2026-04-04T15:15:00Z'));
    assert.equal(windowEnd(at('2026-04-04T11:00:00Z'), night, lh), at('2026-04-04T21:30:00Z')); // 22:00 +11 -> 08:00 +10:30
  });

  it('Pacific/Chatham: +12:45/+13:45, transitions at 02:45 local', () => {
    const ch = 'Pacific/Chatham';
    // 2026-09-27 02:45 +12:45 -> 03:45 +13:45 (14:00Z): end 03:00 is skipped
    assert.equal(windowEnd(at('2026-09-26T13:30:00Z'), { start: '23:00', end: '03:00' }, ch), at('2026-09-26T14:00:00Z'));
    // 2026-04-05 03:45 +13:45 -> 02:45 +12:45 (14:00Z): end 03:00 occurs twice
    assert.equal(windowEnd(at('2026-04-04T13:00:00Z'), { start: '23:00', end: '03:00' }, ch), at('2026-04-04T13:15:00Z'));
    assert.equal(windowEnd(at('2026-04-04T14:05:00Z'), { start: '23:00', end: '03:00' }, ch), at('2026-04-04T14:15:00Z'));
    // 03:02–03:01 leaves out only 03:01–03:02, which does not occur on 2026-09-27: the window runs
    // on to 03:01 +13:45 on 2026-09-28 (found by the property below, seed 577005487)
    const t = 1790421359999; // 2026-09-26T11:15:59.999Z, 00:00:59.999 +12:45
    assert.equal(windowEnd(t, { start: '03:02', end: '03:01' }, ch), at('2026-09-27T13:16:00Z'));
  });
});

describe('windowEnd properties', () => {
  const ZONES = ['Asia/Seoul', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Pacific/Chatham', 'America/Sao_Paulo', 'Asia/Kolkata', 'UTC'];
  const clock = fc.integer({ min: 0, max: 1439 }).map((m) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`);
  const window = fc.record({ start: clock, end: clock });

  // DST transitions of the zones in 2025–2027 (hourly scan, then to the ms), so instants can be drawn near them.
  const transitions: { zone: string; at: number }[] = [];
  for (const zone of ZONES) {
    const z = IANAZone.create(zone);
    for (let t = Date.UTC(2025, 0, 1); t < Date.UTC(2028, 0, 1); t += HOUR) {
      if (z.offset(t) !== z.offset(t + HOUR)) {
        let lo = t;
        let hi = t + HOUR;
        while (hi - lo > 1) {
          const mid = lo + Math.floor((hi - lo) / 2);
          if (z.offset(mid) === z.offset(t)) lo = mid;
          else hi = mid;
        }
        transitions.push({ zone, at: hi });
      }
    }
  }

  const anyInstant = fc.record({ zone: fc.constantFrom(...ZONES), at: fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2050, 0, 1) }) });
  const nearTransition = fc
    .tuple(fc.constantFrom(...transitions), fc.integer({ min: -30 * HOUR, max: 30 * HOUR }))
    .map(([tr, d]) => ({ zone: tr.zone, at: tr.at + d }));

  /** windowEnd is the earliest instant >= at outside the window (checked every minute and 1 ms before it). */
  const check = ({ zone, at: t }: { zone: string; at: number }, w: { start: string; end: string }) => {
    const end = windowEnd(t, w, zone);
    assert.ok(end >= t);
    assert.equal(inWindow(end, w, zone), false, 'still inside at windowEnd');
    assert.equal(windowEnd(end, w, zone), end);
    if (end > t) {
      // Past a day only when the left-out time falls in a DST gap that day (e.g. Chatham's 03:01,
      // 2026-09-27: 02:45 jumps to 03:45); then the window runs on to the next day's.
      assert.ok(end - t <= 50 * HOUR, 'a window never lasts more than two days and a DST hour');
      for (let s = t; s < end; s += MIN) assert.equal(inWindow(s, w, zone), true, `left the window at ${new Date(s).toISOString()} before ${new Date(end).toISOString()}`);
      assert.equal(inWindow(end - 1, w, zone), true, 'not the earliest instant');
    } else {
      assert.equal(inWindow(t, w, zone), false);
    }
  };

  it('found DST transitions in every zone that has them', () => {
    for (const zone of ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Pacific/Chatham']) {
      assert.equal(transitions.filter((x) => x.zone === zone).length, 6, zone);
    }
    assert.equal(transitions.filter((x) => x.zone === 'Asia/Seoul').length, 0);
  });

  it('random instants, zones and windows', () => {
    fc.assert(fc.property(anyInstant, window, check), { numRuns: 150 });
  });

  it('instants within 30 hours of a DST transition', () => {
    fc.assert(fc.property(nearTransition, window, check), { numRuns: 250 });
  });

  it('every IANA zone (2000–2040)', () => {
    const all = fc.record({ zone: fc.constantFrom(...Intl.supportedValuesOf('timeZone')), at: fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 0, 1) }) });
    fc.assert(fc.property(all, window, check), { numRuns: 100 });
  });
});
