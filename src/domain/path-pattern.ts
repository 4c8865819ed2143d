// Source path globs, as subscriptions select inbound events by path (`/github/acme/*`, `/stripe/**`).
//
// A pattern is a path of segments separated by `/`, starting with `/`. A segment is literal text
// (letters, digits, `-_.`), or contains `*`, which matches any run of characters within one segment
// (`/github/acme-*`), or is exactly `**`, which matches zero or more whole segments
// (`/stripe/**` matches `/stripe`, `/stripe/live` and `/stripe/live/eu`). Matching is exact
// otherwise (case-sensitive, no trailing-slash leniency). Compiled to RE2 (linear time).

import { RE2JS } from 're2js';

export const MAX_PATH_PATTERN_LENGTH = 256;
const SEGMENT = /^[A-Za-z0-9_.*-]+$/;

export class PathPatternError extends Error {}

/** Validates a glob and returns its matcher; throws PathPatternError saying what is wrong. */
export function compilePathPattern(pattern: string): (path: string) => boolean {
  if (pattern.length > MAX_PATH_PATTERN_LENGTH) throw new PathPatternError(`a path pattern is at most ${MAX_PATH_PATTERN_LENGTH} characters`);
  if (!pattern.startsWith('/')) throw new PathPatternError('a path pattern starts with "/" (e.g. /github/acme/*)');
  const segments = pattern === '/' ? [] : pattern.slice(1).split('/');
  let re = '^';
  for (const seg of segments) {
    if (seg === '') throw new PathPatternError('a path pattern has no empty segments ("//" or a trailing "/")');
    if (!SEGMENT.test(seg)) throw new PathPatternError(`segment "${seg}" may hold only letters, digits, "-", "_", "." and "*"`);
    if (seg === '**') {
      re += '(?:/[^/]+)*';
      continue;
    }
    if (seg.includes('**')) throw new PathPatternError(`"**" is a whole segment of its own (in "${seg}")`);
    re += '/' + seg.split('*').map(escape).join('[^/]*');
  }
  if (segments.length === 0) re += '/';
  const compiled = RE2JS.compile(re + '$');
  return (path) => compiled.matches(path);
}

function escape(s: string): string {
  return s.replace(/[.\\+?^$()[\]{}|*-]/g, '\\$&');
}
