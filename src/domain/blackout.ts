// Channel blackout windows: daily local times when a channel must not deliver, for vendor or legal
// rules (e.g. Kakao AlimTalk not at night in Korea: {start: "21:00", end: "08:00", timeZone:
// "Asia/Seoul"}). Pure. A window is a quiet-hours DailyWindow in its own fixed zone, with the same
// semantics (half-open [start, end), crossing midnight when start > end, empty when start == end,
// DST gaps and overlaps as in quiet-hours.ts).
//
// blackoutEnd(at, window) is the earliest instant >= at outside the window (`at` when outside).
// blackoutEndAll(at, windows) is the earliest instant >= at outside every window (windows that
// overlap or chain are followed); it throws when they leave no time free within a week.

import { inWindow, isValidTimeZone, windowEnd, windowErrors, type DailyWindow } from './quiet-hours.ts';

export interface BlackoutWindow extends DailyWindow {
  timeZone: string;
}

/** Whether `at` falls inside the blackout window. */
export function inBlackout(at: number, window: BlackoutWindow): boolean {
  return inWindow(at, window, window.timeZone);
}

/** The earliest instant >= `at` outside the blackout window. */
export function blackoutEnd(at: number, window: BlackoutWindow): number {
  return windowEnd(at, window, window.timeZone);
}

const WEEK = 7 * 86_400_000;

/** The earliest instant >= `at` outside every window. */
export function blackoutEndAll(at: number, windows: readonly BlackoutWindow[]): number {
  let t = at;
  for (;;) {
    const before = t;
    for (const w of windows) t = blackoutEnd(t, w);
    if (t === before) return t;
    if (t - at > WEEK) throw new Error('the blackout windows leave no time free');
  }
}

/** Field errors (`${path}.start`, `.end`, `.timeZone`) for a blackout window; [] when valid. */
export function blackoutErrors(window: BlackoutWindow, path: string): { path: string; message: string }[] {
  const errors = windowErrors(window, path);
  if (!isValidTimeZone(window.timeZone)) {
    errors.push({ path: `${path}.timeZone`, message: `${JSON.stringify(window.timeZone)} is not an IANA time zone` });
  }
  return errors;
}
