// How many SMS segments a text takes, and how to shorten it to a number of segments.
//
// Encoding (3GPP TS 23.038): a text is GSM-7 when every character is in the GSM 03.38 basic set
// or its extension table, otherwise UCS-2.
//   GSM-7  units are septets: basic characters cost 1; the extension characters ^ { } \ [ ~ ] | €
//          and form feed cost 2 (ESC + code). One segment holds 160 septets; a concatenated
//          message holds 153 per segment (the UDH takes 7), and an escape pair is never split.
//   UCS-2  units are UTF-16 code units (a character outside the BMP, e.g. most emoji, costs 2, as
//          carriers send UTF-16). One segment holds 70; concatenated 67, and a surrogate pair is
//          never split.
// An empty text has 0 segments. Segmenting is greedy: each character goes into the current
// segment if it fits whole, else starts the next.
// Truncation keeps the longest prefix (whole code points) that fits with an ellipsis appended:
// "..." when the prefix is GSM-7 ("…" is not in GSM-7), "…" when it is UCS-2; trailing white space
// before the ellipsis is dropped. A text that already fits is returned unchanged.

export type SmsEncoding = 'GSM-7' | 'UCS-2';

export interface SmsMeasure {
  encoding: SmsEncoding;
  /** Septets (GSM-7) or UTF-16 code units (UCS-2). */
  units: number;
  segments: number;
  /** Units per segment: 160/70 for a single segment, 153/67 when concatenated. */
  perSegment: number;
}

export const SMS_LIMITS = {
  'GSM-7': { single: 160, concatenated: 153 },
  'UCS-2': { single: 70, concatenated: 67 },
} as const;

const GSM_BASIC = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
const GSM_EXTENSION = new Set('^{}\\[~]|€\f');

/** Septets of one character in GSM-7, or 0 when it is not in GSM-7. */
function gsmCost(ch: string): number {
  if (GSM_BASIC.has(ch)) return 1;
  if (GSM_EXTENSION.has(ch)) return 2;
  return 0;
}

export function isGsm7(text: string): boolean {
  for (const ch of text) if (gsmCost(ch) === 0) return false;
  return true;
}

function costs(text: string, encoding: SmsEncoding): number[] {
  const out: number[] = [];
  for (const ch of text) out.push(encoding === 'GSM-7' ? gsmCost(ch) : ch.length);
  return out;
}

function count(cost: readonly number[], encoding: SmsEncoding): SmsMeasure {
  const limits = SMS_LIMITS[encoding];
  let units = 0;
  for (const c of cost) units += c;
  if (units === 0) return { encoding, units, segments: 0, perSegment: limits.single };
  if (units <= limits.single) return { encoding, units, segments: 1, perSegment: limits.single };
  let segments = 1;
  let used = 0;
  for (const c of cost) {
    if (used + c > limits.concatenated) {
      segments++;
      used = 0;
    }
    used += c;
  }
  return { encoding, units, segments, perSegment: limits.concatenated };
}

export function measureSms(text: string): SmsMeasure {
  const encoding: SmsEncoding = isGsm7(text) ? 'GSM-7' : 'UCS-2';
  return count(costs(text, encoding), encoding);
}

/** `text` if it fits in `maxSegments`, else its longest fitting prefix plus an ellipsis. */
export function truncateSms(text: string, maxSegments: number): string {
  if (!Number.isInteger(maxSegments) || maxSegments < 1) throw new RangeError(`maxSegments must be a positive integer, got ${maxSegments}`);
  if (measureSms(text).segments <= maxSegments) return text;
  const chars = Array.from(text);
  const candidate = (n: number): string => {
    const prefix = chars.slice(0, n).join('').trimEnd();
    return prefix + (isGsm7(prefix) ? '...' : '…');
  };
  const fits = (n: number): boolean => measureSms(candidate(n)).segments <= maxSegments;
  let lo = 0;
  let hi = chars.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  while (lo > 0 && !fits(lo)) lo--;
  return candidate(lo);
}
