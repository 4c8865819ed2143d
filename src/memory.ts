// Returning freed memory to the operating system. glibc's malloc keeps what a process frees in the
// middle of its heap resident (only the top is trimmed); a Herald server frees about 15 MB that
// way when start-up ends (Node's compile-cache buffers, written out then: app.ts) and more when the
// SQLite writer thread stops (its isolate). `malloc_trim(0)` hands those pages back. Node has no
// binding for it, so a ten-line addon does (native/malloc-trim, an optional dependency built at
// install): where it could not be built, or the C library is not glibc, this does nothing.

import { createRequire } from 'node:module';

let trim: (() => boolean) | null | undefined;

/** Hands the C heap's free pages back to the system; whether any were (false without the addon). */
export function releaseFreedMemory(): boolean {
  if (trim === undefined) {
    try {
      trim = (createRequire(import.meta.url)('herald-malloc-trim') as { trim: () => boolean }).trim;
    } catch {
      trim = null;
    }
  }
  return trim ? trim() : false;
}
