import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isGsm7, measureSms, truncateSms } from '../../src/domain/sms-segments.ts';

// GSM 03.38 basic set (0x1B ESC excluded) and extension table, written out from the 3GPP table.
const GSM_BASIC_TABLE = [
  '@£$¥èéùìòÇ\nØø\rÅå',
  'Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ',
  ' !"#¤%&\'()*+,-./',
  '0123456789:;<=>?',
  '¡ABCDEFGHIJKLMNO',
  'PQRSTUVWXYZÄÖÑÜ§',
  '¿abcdefghijklmno',
  'pqrstuvwxyzäöñüà',
].join('');
const GSM_EXTENSION_TABLE = '\f^{}\\[~]|€';

const ELLIPSIS_GSM = '...';
const ELLIPSIS_UCS = '…';

/** Text from a mix of GSM basic, extension, BMP non-GSM and astral characters. */
const mixedText = fc.string({
  unit: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...GSM_BASIC_TABLE) },
    { weight: 2, arbitrary: fc.constantFrom(...GSM_EXTENSION_TABLE) },
    { weight: 1, arbitrary: fc.constantFrom('ç', 'α', '你', '…', '\t', '`', 'ñ', '\u00a0') },
    { weight: 1, arbitrary: fc.constantFrom('😀', '𝄞', '🇰🇷') },
  ),
  maxLength: 1200,
});
const gsmOnlyText = fc.string({ unit: fc.oneof(fc.constantFrom(...GSM_BASIC_TABLE), fc.constantFrom(...GSM_EXTENSION_TABLE)), maxLength: 1200 });
const anyText = fc.oneof(mixedText, gsmOnlyText, fc.string({ unit: 'grapheme', maxLength: 400 }));

describe('measureSms', () => {
  it('treats every basic-table character as 1 septet and every extension character as 2', () => {
    assert.equal([...GSM_BASIC_TABLE].length, 127);
    assert.deepEqual(measureSms(GSM_BASIC_TABLE), { encoding: 'GSM-7', units: 127, segments: 1, perSegment: 160 });
    for (const ch of GSM_EXTENSION_TABLE) assert.deepEqual(measureSms(ch), { encoding: 'GSM-7', units: 2, segments: 1, perSegment: 160 }, JSON.stringify(ch));
  });

  it('falls back to UCS-2 for any character outside GSM-7', () => {
    for (const ch of ['ç', 'α', '你', '…', '\t', '`', '\u00a0', 'Ä́']) {
      assert.equal(isGsm7(`abc${ch}`), false, JSON.stringify(ch));
      assert.equal(measureSms(`abc${ch}`).encoding, 'UCS-2', JSON.stringify(ch));
    }
    assert.equal(measureSms('Ç').encoding, 'GSM-7');
    assert.equal(measureSms('😀').units, 2);
  });

  it('uses 160 septets for one segment and 153 per concatenated segment', () => {
    assert.equal(measureSms('').segments, 0);
    assert.deepEqual(measureSms('a'.repeat(160)), { encoding: 'GSM-7', units: 160, segments: 1, perSegment: 160 });
    assert.deepEqual(measureSms('a'.repeat(161)), { encoding: 'GSM-7', units: 161, segments: 2, perSegment: 153 });
    assert.equal(measureSms('a'.repeat(306)).segments, 2);
    assert.equal(measureSms('a'.repeat(307)).segments, 3);
    assert.equal(measureSms('a'.repeat(1530)).segments, 10);
    assert.equal(measureSms('€'.repeat(80)).segments, 1);
    assert.deepEqual(measureSms('€'.repeat(81)), { encoding: 'GSM-7', units: 162, segments: 2, perSegment: 153 });
  });

  it('never splits an escape pair across segments', () => {
    // 306 septets would fill two segments exactly, but the € straddles the first boundary.
    const text = `${'a'.repeat(152)}€${'a'.repeat(152)}`;
    assert.equal(measureSms(text).units, 306);
    assert.equal(measureSms(text).segments, 3);
    assert.equal(measureSms(`${'a'.repeat(151)}€${'a'.repeat(153)}`).segments, 2);
  });

  it('uses 70 code units for one UCS-2 segment and 67 per concatenated segment, never splitting a surrogate pair', () => {
    assert.deepEqual(measureSms('你'.repeat(70)), { encoding: 'UCS-2', units: 70, segments: 1, perSegment: 70 });
    assert.deepEqual(measureSms('你'.repeat(71)), { encoding: 'UCS-2', units: 71, segments: 2, perSegment: 67 });
    assert.equal(measureSms('你'.repeat(134)).segments, 2);
    assert.equal(measureSms('你'.repeat(135)).segments, 3);
    assert.equal(measureSms('😀'.repeat(35)).segments, 1);
    assert.equal(measureSms('😀'.repeat(36)).segments, 2);
    const straddling = `ç${'a'.repeat(65)}😀${'a'.repeat(66)}`;
    assert.equal(measureSms(straddling).units, 134);
    assert.equal(measureSms(straddling).segments, 3);
  });

  it('never counts fewer segments for a longer prefix', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const chars = Array.from(text);
        let prev = 0;
        for (let n = 0; n <= chars.length; n += Math.max(1, Math.floor(chars.length / 40))) {
          const s = measureSms(chars.slice(0, n).join('')).segments;
          assert.ok(s >= prev, `prefix of ${n}: ${s} < ${prev}`);
          prev = s;
        }
        assert.ok(measureSms(text).segments >= prev);
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with a character-by-character segmenter written from the rules', () => {
    const reference = (text: string): number => {
      const gsm = [...text].every((c) => GSM_BASIC_TABLE.includes(c) || GSM_EXTENSION_TABLE.includes(c));
      const cost = [...text].map((c) => (gsm ? (GSM_EXTENSION_TABLE.includes(c) ? 2 : 1) : c.length));
      const total = cost.reduce((a, b) => a + b, 0);
      if (total === 0) return 0;
      if (total <= (gsm ? 160 : 70)) return 1;
      const cap = gsm ? 153 : 67;
      const segs: number[] = [0];
      for (const c of cost) {
        if (segs[segs.length - 1]! + c > cap) segs.push(0);
        segs[segs.length - 1]! += c;
      }
      return segs.length;
    };
    fc.assert(fc.property(anyText, (text) => measureSms(text).segments === reference(text)), { numRuns: 500 });
  });
});

describe('truncateSms', () => {
  it('cuts GSM-7 text to the limit with "..."', () => {
    const out = truncateSms('a'.repeat(400), 1);
    assert.equal(out, `${'a'.repeat(157)}${ELLIPSIS_GSM}`);
    assert.deepEqual(measureSms(out), { encoding: 'GSM-7', units: 160, segments: 1, perSegment: 160 });
    assert.equal(truncateSms('a'.repeat(400), 2), `${'a'.repeat(303)}${ELLIPSIS_GSM}`);
  });

  it('cuts UCS-2 text with "…" and never leaves half a surrogate pair', () => {
    assert.equal(truncateSms('ç'.repeat(100), 1), `${'ç'.repeat(69)}${ELLIPSIS_UCS}`);
    const emoji = truncateSms('😀'.repeat(100), 1);
    assert.equal(emoji, `${'😀'.repeat(34)}${ELLIPSIS_UCS}`);
    assert.ok(emoji.isWellFormed());
  });

  it('chooses the ellipsis by the kept prefix: a GSM-7 prefix of a UCS-2 text keeps GSM-7 capacity', () => {
    assert.equal(truncateSms(`${'a'.repeat(100)}${'ç'.repeat(100)}`, 1), `${'a'.repeat(100)}${ELLIPSIS_GSM}`);
  });

  it('drops white space before the ellipsis', () => {
    // The 157 characters that fit with "..." end in a space.
    assert.equal(truncateSms(`${'a'.repeat(156)} ${'b'.repeat(100)}`, 1), `${'a'.repeat(156)}${ELLIPSIS_GSM}`);
    assert.equal(truncateSms(`${'你'.repeat(68)}\u3000${'你'.repeat(100)}`, 1), `${'你'.repeat(68)}${ELLIPSIS_UCS}`);
  });

  it('rejects a limit below one segment', () => {
    assert.throws(() => truncateSms('abc', 0), RangeError);
    assert.throws(() => truncateSms('abc', 1.5), RangeError);
  });

  it('always fits, is a prefix plus the ellipsis of its encoding, and leaves fitting text alone', () => {
    fc.assert(
      fc.property(anyText, fc.integer({ min: 1, max: 10 }), (text, max) => {
        const out = truncateSms(text, max);
        const m = measureSms(out);
        assert.ok(m.segments <= max, `${m.segments} segments > ${max}`);
        if (measureSms(text).segments <= max) {
          assert.equal(out, text);
          return;
        }
        const ellipsis = m.encoding === 'GSM-7' ? ELLIPSIS_GSM : ELLIPSIS_UCS;
        assert.ok(out.endsWith(ellipsis), JSON.stringify(out.slice(-5)));
        const kept = out.slice(0, -ellipsis.length);
        assert.ok(text.startsWith(kept));
        assert.equal(kept, kept.trimEnd());
        if (text.isWellFormed()) assert.ok(out.isWellFormed());
        // Idempotent: what came out already fits.
        assert.equal(truncateSms(out, max), out);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps the longest prefix that fits (one more character would not)', () => {
    fc.assert(
      fc.property(gsmOnlyText.filter((t) => !/\s/.test(t)), fc.integer({ min: 1, max: 4 }), (text, max) => {
        const out = truncateSms(text, max);
        if (out === text) return;
        const kept = Array.from(out.slice(0, -ELLIPSIS_GSM.length));
        const longer = Array.from(text).slice(0, kept.length + 1).join('') + ELLIPSIS_GSM;
        assert.ok(measureSms(longer).segments > max);
      }),
      { numRuns: 300 },
    );
  });
});
