// Daily windows in local wall-clock time (a recipient's quiet hours, a channel's blackout). Pure:
// instants are epoch milliseconds; time zones are IANA names resolved with luxon.
//
// A window {start: "HH:MM", end: "HH:MM"} is the half-open local interval [start, end) of every day:
// - start < end: within one day ("09:00"–"17:00" is 09:00 up to, not including, 17:00);
// - start > end: it crosses midnight ("22:00"–"08:00" is 22:00–24:00 and 00:00–08:00);
// - start == end: the EMPTY window (never inside). A whole day cannot be expressed.
// An instant is inside when the wall-clock time it shows in the zone (with the zone's offset at that
// instant) is inside. So on DST days local times in a spring-forward gap never occur, and local
// times in a fall-back overlap occur twice and are inside (or not) both times.
//
// windowEnd(at) is the earliest instant t >= at that is not inside: `at` itself when `at` is not
// inside; otherwise when the local clock reaches `end`. When the local `end` falls in a
// spring-forward gap, that is the first instant after the gap; when it occurs twice (fall back),
// the first occurrence after `at`. When the clock jumps back out of the window (a fall back across
// `start`) or forward into it again, the exact earliest instant is still returned.
// Assumes a zone changes its offset at most once within any 24 hours (true of every real zone).

import { IANAZone } from 'luxon';

/** A daily window in local wall-clock time, both ends "HH:MM". */
export interface DailyWindow {
  start: string;
  end: string;
}

/** JSON Schema pattern for "HH:MM" from 00:00 to 23:59 (what parseClock accepts). */
export const CLOCK_PATTERN = '^([01][0-9]|2[0-3]):([0-5][0-9])$';
const CLOCK = new RegExp(CLOCK_PATTERN);

const MINUTE = 60_000;
const DAY = 86_400_000;

/** Minutes after midnight of "HH:MM" (00:00–23:59, two digits each). Throws on anything else. */
export function parseClock(text: string): number {
  const m = typeof text === 'string' ? CLOCK.exec(text) : null;
  if (!m) throw new Error(`expected a local time "HH:MM" from 00:00 to 23:59, got ${JSON.stringify(text)}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** Whether luxon (and so Intl) knows the time zone, e.g. "Asia/Seoul". */
export function isValidTimeZone(tz: string): boolean {
  return known.has(tz) || (typeof tz === 'string' && tz !== '' && IANAZone.isValidZone(tz));
}

/** Valid zones seen so far (at most the few hundred that exist); validating costs an Intl object. */
const known = new Map<string, IANAZone>();

/** Field errors (path `${path}.start`, `${path}.end`) for a window, [] when valid. */
export function windowErrors(window: DailyWindow, path: string): { path: string; message: string }[] {
  const errors: { path: string; message: string }[] = [];
  for (const key of ['start', 'end'] as const) {
    try {
      parseClock(window[key]);
    } catch (e) {
      errors.push({ path: `${path}.${key}`, message: (e as Error).message });
    }
  }
  return errors;
}

function zone(timeZone: string): IANAZone {
  let z = known.get(timeZone);
  if (!z) {
    if (!isValidTimeZone(timeZone)) throw new Error(`unknown time zone ${JSON.stringify(timeZone)}`);
    z = IANAZone.create(timeZone);
    known.set(timeZone, z);
  }
  return z;
}

/** The zone's offset at `at`, in ms. */
function offsetMs(z: IANAZone, at: number): number {
  return Math.round(z.offset(at) * MINUTE);
}

function minuteOfDay(local: number): number {
  return Math.floor((((local % DAY) + DAY) % DAY) / MINUTE);
}

function contains(start: number, end: number, minute: number): boolean {
  if (start < end) return minute >= start && minute < end;
  if (start > end) return minute >= start || minute < end;
  return false;
}

function parseWindow(at: number, window: DailyWindow): [number, number] {
  if (!Number.isFinite(at)) throw new Error(`expected an instant in epoch milliseconds, got ${at}`);
  return [parseClock(window.start), parseClock(window.end)];
}

/** Whether the local wall-clock time at `at` in `timeZone` is inside the window. */
export function inWindow(at: number, window: DailyWindow, timeZone: string): boolean {
  const [start, end] = parseWindow(at, window);
  const z = zone(timeZone);
  return contains(start, end, minuteOfDay(at + offsetMs(z, at)));
}

/** The earliest instant >= `at` that is not inside the window (see the contract above). */
export function windowEnd(at: number, window: DailyWindow, timeZone: string): number {
  const [start, end] = parseWindow(at, window);
  const z = zone(timeZone);
  let t = at;
  // Each turn covers one stretch of constant offset; two turns suffice unless a jump lands inside
  // the window again, and a window leaves out at least one minute of every day.
  for (let turn = 0; turn < 8; turn++) {
    const offset = offsetMs(z, t);
    const local = t + offset;
    const minute = minuteOfDay(local);
    if (!contains(start, end, minute)) return t;
    const midnight = local - (((local % DAY) + DAY) % DAY);
    const endLocal = midnight + (start > end && minute >= start ? DAY : 0) + end * MINUTE;
    const candidate = endLocal - offset; // when the clock shows `end` if the offset stays
    if (offsetMs(z, candidate) === offset) return candidate;
    t = firstOffsetChange(z, t, candidate, offset);
  }
  throw new Error(`no end found for window ${window.start}–${window.end} in ${timeZone}`);
}

/** The first instant in (from, to] whose offset differs from `offset` (offsetMs(to) differs). */
function firstOffsetChange(z: IANAZone, from: number, to: number, offset: number): number {
  let lo = from;
  let hi = to;
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (offsetMs(z, mid) === offset) lo = mid;
    else hi = mid;
  }
  return hi;
}
