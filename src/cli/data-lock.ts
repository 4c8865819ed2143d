// One server per SQLite data directory.
//
// The lock is an open `BEGIN EXCLUSIVE` transaction on `herald.lock`, a SQLite database used for
// nothing else: SQLite takes it as a POSIX advisory lock (fcntl), which the kernel drops when the
// holding process ends in any way, kill -9 and power loss included, so a crash never leaves a lock
// that blocks the next start, and no PID has to be guessed stale. SQLite also tracks its locks per
// file within a process, so a second server in the same process is refused too. `herald.pid` holds
// the holder's PID for the refusal message only; it is written after the lock is taken and may be
// stale or missing, which never decides anything.
//
// Advisory locks hold between processes on one machine (and containers sharing its kernel); a data
// directory on a network file system without working fcntl locks is not protected.

import BetterSqlite3 from 'better-sqlite3';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE = 'herald.lock';
export const PID_FILE = 'herald.pid';

/** The data directory is held by another process. */
export class DataDirLocked extends Error {
  /** The holder's PID as it wrote it, if it did. */
  readonly pid: number | undefined;
  readonly dataPath: string;
  constructor(dataPath: string, pid: number | undefined) {
    super(`the data directory ${dataPath} is in use by ${pid === undefined ? 'another Herald server' : `another Herald server (PID ${pid})`}`);
    this.pid = pid;
    this.dataPath = dataPath;
  }
}

export interface DataDirLock {
  /** Ends the lock (idempotent). The process ending ends it too. */
  release(): void;
}

/**
 * Takes the data directory's lock, creating the directory; throws DataDirLocked at once (no
 * waiting) when another process or connection holds it. `holder` is the PID recorded for others.
 */
export function lockDataDir(dataPath: string, holder = process.pid): DataDirLock {
  mkdirSync(dataPath, { recursive: true });
  const db = new BetterSqlite3(join(dataPath, LOCK_FILE), { timeout: 0 });
  try {
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) throw new DataDirLocked(dataPath, lockHolder(dataPath));
    throw err;
  }
  const pidFile = join(dataPath, PID_FILE);
  writeFileSync(pidFile, `${holder}\n`);
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      if (lockHolder(dataPath) === holder) rmSync(pidFile, { force: true });
      db.close();
    },
  };
}

/** The PID in `herald.pid`, if it holds one. */
export function lockHolder(dataPath: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataPath, PID_FILE), 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process (or connection) holds the lock now, and who; never takes it for longer than the check. */
export function probeDataDir(dataPath: string): { locked: false } | { locked: true; pid: number | undefined } {
  try {
    lockDataDir(dataPath, process.pid).release();
    return { locked: false };
  } catch (err) {
    if (err instanceof DataDirLocked) return { locked: true, pid: err.pid };
    throw err;
  }
}
