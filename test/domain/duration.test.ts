import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatDuration, parseDuration } from '../../src/domain/duration.ts';

describe('parseDuration', () => {
  const ok: [string, number][] = [
    ['0', 0],
    ['0ms', 0],
    ['250ms', 250],
    ['5s', 5_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1.5h', 5_400_000],
    ['0.5s', 500],
    [' 30s ', 30_000],
    ['1h30m', 5_400_000],
    ['1m30s500ms', 90_500],
    ['2d3h', 183_600_000],
  ];
  for (const [s, ms] of ok) {
    it(`"${s}" = ${ms}ms`, () => assert.equal(parseDuration(s), ms));
  }

  it('rejects anything else, naming the input', () => {
    for (const s of ['', ' ', '5', '-5s', '5 s', '5S', '5sec', 'five', '1e3ms', '.5s', '5.s', 's', 'ms', '1h 30m', '30m1h', '1h1h', 'NaN', 'Infinity', '0x10s']) {
      assert.throws(() => parseDuration(s), (e: Error) => e.message.includes(`"${s}"`), JSON.stringify(s));
    }
  });
});

describe('formatDuration', () => {
  const cases: [number, string][] = [
    [0, '0ms'],
    [250, '250ms'],
    [999, '999ms'],
    [1_000, '1s'],
    [5_000, '5s'],
    [90_000, '1m30s'],
    [300_000, '5m'],
    [5_400_000, '1h30m'],
    [86_400_000, '1d'],
    [90_061_000, '1d1h1m1s'],
    [1_500, '1s500ms'],
    [60_001, '1m1ms'],
  ];
  for (const [ms, s] of cases) {
    it(`${ms}ms -> "${s}"`, () => assert.equal(formatDuration(ms), s));
  }

  it('is exact: parseDuration(formatDuration(ms)) === ms (property)', () => {
    // `herald config` shows durations with formatDuration; what it shows must mean what is configured
    fc.assert(fc.property(fc.integer({ min: 0, max: 365 * 86_400_000 }), (ms) => assert.equal(parseDuration(formatDuration(ms)), ms)));
  });

  it('is canonical: formatting a canonical duration\'s value gives it back, and the docs\' forms are canonical', () => {
    for (const s of ['1m', '1d', '5s', '5m', '30m', '2h', '5h', '10h', '15s', '30s', '1s', '10s', '250ms', '1h', '7d', '30d', '1h30m', '1s500ms', '0ms']) {
      assert.equal(formatDuration(parseDuration(s)), s);
    }
    // Other spellings of the same value come back in the one form.
    for (const [s, canonical] of [['60s', '1m'], ['24h', '1d'], ['90m', '1h30m'], ['1.5h', '1h30m'], ['3600s', '1h'], ['0', '0ms'], ['1000ms', '1s']]) {
      assert.equal(formatDuration(parseDuration(s!)), canonical);
    }
  });

  it('is canonical (property): format(parse(format(ms))) === format(ms)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 365 * 86_400_000 }), (ms) => assert.equal(formatDuration(parseDuration(formatDuration(ms))), formatDuration(ms))));
  });

  it('is compact: canonical units never repeat or overflow (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 365 * 86_400_000 }), (ms) => {
        const s = formatDuration(ms);
        assert.match(s, /^(\d+d)?(([1-9]|1\d|2[0-3])h)?(([1-9]|[1-5]\d)m)?(([1-9]|[1-5]\d)s)?(([1-9]\d{0,2})ms)?$/);
      }),
    );
  });
});
