const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "250ms", "5s", "5m", "2h", "1d", "1.5h" or "0" into milliseconds. Throws on anything else. */
export function parseDuration(input: string): number {
  const s = input.trim();
  if (s === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(s);
  if (!m) throw new Error(`expected a duration such as 500ms, 5s, 5m, 2h or 1d, got "${input}"`);
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}

/** Formats milliseconds compactly ("1h30m", "5s", "250ms"). */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  let rest = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}
