const UNITS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
/** Units from largest to smallest: a compound duration names each at most once, in this order. */
const ORDER = ['d', 'h', 'm', 's', 'ms'];

/**
 * Parses "250ms", "5s", "5m", "2h", "1d", "1.5h", "0", or a compound of those from the largest unit
 * down ("1h30m", "1m30s500ms", as formatDuration writes them) into milliseconds. Throws on anything else.
 */
export function parseDuration(input: string): number {
  let ms = parsed.get(input);
  if (ms === undefined) {
    ms = parse(input);
    if (parsed.size >= 1000) parsed.clear();
    parsed.set(input, ms);
  }
  return ms;
}

/** Recent results: request bodies name the same few durations ("1d" is a send's default dedupe window). */
const parsed = new Map<string, number>();

function parse(input: string): number {
  const s = input.trim();
  if (s === '0') return 0;
  const fail = () => new Error(`expected a duration such as 500ms, 5s, 5m, 2h, 1d or 1h30m, got "${input}"`);
  if (!/^(\d+(?:\.\d+)?(ms|s|m|h|d))+$/.test(s)) throw fail();
  let total = 0;
  let last = -1;
  for (const [, n, unit] of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) {
    const rank = ORDER.indexOf(unit!);
    if (rank <= last) throw fail(); // "30m1h", "1h1h"
    last = rank;
    total += Number(n) * UNITS[unit!]!;
  }
  return Math.round(total);
}

/**
 * The canonical form of a duration, the one Herald shows everywhere (`herald config`, the API,
 * error messages, the docs): the largest units first, each a whole number and used at most once,
 * none past its next unit ("1m", not "60s"; "1d", not "24h"; "1h30m"; "1s500ms"; "250ms"; "0ms").
 * Exact: parseDuration(formatDuration(ms)) === ms for every whole number of milliseconds, and
 * formatDuration(parseDuration(s)) === s for every canonical s.
 */
export function formatDuration(ms: number): string {
  let rest = Math.round(ms);
  if (rest < 1000) return `${rest}ms`;
  const parts: string[] = [];
  for (const unit of ORDER) {
    const size = UNITS[unit]!;
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}
