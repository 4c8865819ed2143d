import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { blackoutEnd, blackoutEndAll, blackoutErrors, inBlackout, type BlackoutWindow } from '../../src/domain/blackout.ts';

const at = (iso: string) => Date.parse(iso);
const kakaoNight: BlackoutWindow = { start: '21:00', end: '08:00', timeZone: 'Asia/Seoul' };

describe('blackout windows', () => {
  it('Kakao at night in Korea: 21:00–08:00 Asia/Seoul', () => {
    assert.equal(inBlackout(at('2026-05-04T11:59:00Z'), kakaoNight), false); // 20:59 KST
    assert.equal(inBlackout(at('2026-05-04T12:00:00Z'), kakaoNight), true); // 21:00 KST
    assert.equal(blackoutEnd(at('2026-05-04T13:00:00Z'), kakaoNight), at('2026-05-04T23:00:00Z')); // 22:00 -> 08:00 KST
    assert.equal(blackoutEnd(at('2026-05-04T20:00:00Z'), kakaoNight), at('2026-05-04T23:00:00Z')); // 05:00 -> 08:00 KST
    const noon = at('2026-05-04T03:00:00Z');
    assert.equal(blackoutEnd(noon, kakaoNight), noon);
  });

  it('the window is in its own zone, whatever the recipient', () => {
    // 21:30 in Berlin is 05:30 in Seoul the next morning (winter): inside the Korean night
    assert.equal(inBlackout(at('2026-01-10T20:30:00Z'), kakaoNight), true);
  });

  it('a window in a DST zone follows the transition (Berlin, 2026-03-29)', () => {
    const w: BlackoutWindow = { start: '23:00', end: '02:30', timeZone: 'Europe/Berlin' };
    assert.equal(blackoutEnd(at('2026-03-29T00:30:00Z'), w), at('2026-03-29T01:00:00Z')); // 02:30 skipped: 03:00 CEST
  });

  it('several windows: overlapping or chained ones are followed to the first free instant', () => {
    const berlinLate: BlackoutWindow = { start: '23:00', end: '02:00', timeZone: 'Europe/Berlin' };
    // 22:00 KST -> Korean night ends 08:00 KST (00:00 CET), inside Berlin's 23:00–02:00 -> 02:00 CET
    assert.equal(blackoutEndAll(at('2026-01-10T13:00:00Z'), [kakaoNight, berlinLate]), at('2026-01-11T01:00:00Z'));
    assert.equal(blackoutEndAll(at('2026-01-10T13:00:00Z'), [berlinLate, kakaoNight]), at('2026-01-11T01:00:00Z'));
    assert.equal(blackoutEndAll(at('2026-01-10T13:00:00Z'), []), at('2026-01-10T13:00:00Z'));
  });

  it('windows that leave no time free are an error, not a hang', () => {
    const a: BlackoutWindow = { start: '00:00', end: '12:00', timeZone: 'UTC' };
    const b: BlackoutWindow = { start: '12:00', end: '00:00', timeZone: 'UTC' };
    assert.throws(() => blackoutEndAll(at('2026-01-10T13:00:00Z'), [a, b]), /leave no time free/);
  });

  it('blackoutErrors checks the times and the zone', () => {
    assert.deepEqual(blackoutErrors(kakaoNight, 'body.channel_blackouts.kakao'), []);
    assert.deepEqual(
      blackoutErrors({ start: '9pm', end: '08:00', timeZone: 'Korea/Seoul' }, 'b').map((e) => e.path),
      ['b.start', 'b.timeZone'],
    );
  });

  it('property: blackoutEndAll is the first instant outside every window (minute granularity)', () => {
    const clock = fc.integer({ min: 0, max: 1439 }).map((m) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`);
    const window = fc.record({ start: clock, end: clock, timeZone: fc.constantFrom('Asia/Seoul', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe') });
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) }), fc.array(window, { maxLength: 3 }), (t, ws) => {
        let end: number;
        try {
          end = blackoutEndAll(t, ws);
        } catch (e) {
          if (/leave no time free/.test((e as Error).message)) return; // the random windows cover every time of day
          throw e;
        }
        assert.ok(end >= t);
        for (const w of ws) assert.equal(inBlackout(end, w), false);
        for (let s = t; s < end; s += 60_000) assert.ok(ws.some((w) => inBlackout(s, w)));
        if (end > t) assert.ok(ws.some((w) => inBlackout(end - 1, w)));
      }),
      { numRuns: 60 },
    );
  });
});
