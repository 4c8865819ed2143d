// The SQLite writer: a worker thread with its own connection that performs every hot-path write:
// accept batches (sqlite-accept.ts) and the queue's claims, outcomes and lease releases
// (sqlite-queue.ts). Their SQLite work, the inserts and the fsync run on another core while the
// event loop keeps serving HTTP and deliveries, and the event loop never waits for SQLite's write
// lock (with two connections writing, one would sleep in SQLite's busy handler whenever the other
// is mid-transaction: a blocked event loop on the main connection).
//
// Messages in: {id, op: 'accept', batch} (a PackedBatch), {id, op: 'claim', args},
// {id, op: 'settle', items}, {id, op: 'release', owners, now}. Out: {id, result} or {id, error}.
// What queued while the thread was busy is taken together (up to MERGE_ITEMS accept items): the
// accept batches among it are merged into one transaction, one fsync (group commit), then the
// other operations run in their order of arrival, each its own transaction. An operation's caller
// waits for its own reply only, so accepts going first reorders nothing anyone observes.
//
// Main-thread side: SqliteWriter. If the thread dies, its pending calls reject (those requests get
// an error, never a 202; a claim's rows come back when their lease ends) and the next call starts
// a new thread.
//
// Idleness: after IDLE_STOP_MS (HERALD_SQLITE_WRITER_IDLE; 0: never) with no call in flight the
// thread is stopped (a V8 isolate and its connection: about 13 MB of RSS, bench/idle.ts) and the
// next call starts it again, which costs that call the thread's start (0.1-0.3 s measured on a
// busy 2-core machine). Idle polls of the queue are not calls:
// SqliteAdapter.claim reads on the main connection first and calls only when something is due. The
// thread checkpoints once more as it stops; writes the main connection makes while it is stopped
// wait in the WAL for the next start.

import BetterSqlite3 from 'better-sqlite3';
import { isMainThread, parentPort, receiveMessageOnPort, Worker, workerData } from 'node:worker_threads';
import { releaseFreedMemory } from '../memory.ts';
import type { AcceptItem, AcceptOutcome, ClaimedDelivery, SettleItem } from './adapter.ts';
import { configureConnection, packBatch, prepareAcceptWrite, type PackedBatch } from './sqlite-accept.ts';
import { prepareQueue } from './sqlite-queue.ts';

/** How often the thread checkpoints the WAL, and the WAL size at which a commit does it anyway. */
export const CHECKPOINT_INTERVAL_MS = 1000;
const BACKSTOP_CHECKPOINT_PAGES = 20_000;

/** How long the thread may have no call in flight before it is stopped (see Idleness above). */
export const IDLE_STOP_MS = 30_000;

/** Accept items one transaction of the thread takes at most, merging queued batches. */
export const MERGE_ITEMS = 1024;

/** Accept items travel packed (PackedBatch): a few JSON strings, cheaper to pass between threads than a cloned object graph. */
type Operation =
  | { op: 'accept'; batch: PackedBatch }
  | { op: 'claim'; args: [channel: string, owner: string, limit: number, now: number, leaseMs: number] }
  | { op: 'settle'; items: SettleItem[] }
  | { op: 'release'; owners: string[]; now: number };
type Request = Operation & { id: number };
type Stop = { op: 'stop' };
type Reply = { id: number; result: unknown } | { id: number; error: { message: string; code?: string } };

const errorOf = (err: unknown): { message: string; code?: string } => {
  const e = err as { message: string; code?: string };
  return { message: e.message, ...(e.code !== undefined && { code: e.code }) };
};

if (!isMainThread && (workerData as { heraldSqliteWriter?: string } | undefined)?.heraldSqliteWriter) {
  const db = new BetterSqlite3((workerData as { heraldSqliteWriter: string }).heraldSqliteWriter);
  configureConnection(db);
  // WAL checkpoints (copying committed pages back into the database file) run here, off the event
  // loop: the main connection never checkpoints (SqliteAdapter), this thread does a PASSIVE one
  // every CHECKPOINT_INTERVAL_MS, which never waits for readers or writers, and on commit only once
  // the WAL has BACKSTOP_CHECKPOINT_PAGES pages (the timer fell behind). One larger checkpoint a
  // second costs less than SQLite's default of one per 1000 pages: pages changed again in between
  // are copied once.
  db.pragma(`wal_autocheckpoint = ${BACKSTOP_CHECKPOINT_PAGES}`);
  const checkpoints = setInterval(() => {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // SQLITE_BUSY or a transient I/O error: the next tick (or the backstop) tries again.
    }
  }, CHECKPOINT_INTERVAL_MS);
  const write = prepareAcceptWrite(db);
  const queue = prepareQueue(db);
  const port = parentPort!;
  const run = (r: Exclude<Request, { op: 'accept' }>): unknown => {
    switch (r.op) {
      case 'claim':
        return queue.claim(...r.args);
      case 'settle':
        return queue.settle(r.items);
      case 'release':
        return queue.release(r.owners, r.now);
    }
  };
  port.on('message', (first: Request | Stop) => {
    // Sent alone, with no call in flight (SqliteWriter's idle stop): close the connection after a
    // last checkpoint and let the thread end.
    if (first.op === 'stop') {
      clearInterval(checkpoints);
      try {
        db.pragma('wal_checkpoint(PASSIVE)');
      } catch {
        // The next thread's checkpoints take it up.
      }
      db.close();
      port.close();
      return;
    }
    const accepts: Extract<Request, { op: 'accept' }>[] = [];
    const others: Exclude<Request, { op: 'accept' }>[] = [];
    let count = 0;
    for (let r: Request | undefined = first; r; ) {
      if (r.op === 'accept') {
        accepts.push(r);
        count += r.batch.count;
      } else {
        others.push(r);
      }
      if (count >= MERGE_ITEMS) break;
      r = receiveMessageOnPort(port)?.message as Request | undefined;
    }
    // Group commit: if the merged transaction fails, every batch in it fails.
    if (accepts.length > 0) {
      try {
        const outcomes = write(accepts.map((r) => r.batch));
        accepts.forEach((r, i) => port.postMessage({ id: r.id, result: outcomes[i]! } satisfies Reply));
      } catch (err) {
        const error = errorOf(err);
        for (const r of accepts) port.postMessage({ id: r.id, error } satisfies Reply);
      }
    }
    for (const r of others) {
      try {
        port.postMessage({ id: r.id, result: run(r) } satisfies Reply);
      } catch (err) {
        port.postMessage({ id: r.id, error: errorOf(err) } satisfies Reply);
      }
    }
  });
  port.postMessage({ ready: true });
}

export class SqliteWriterError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code?: string) {
    super(message);
    this.name = 'SqliteWriterError';
    this.code = code;
  }
}

export class SqliteWriter {
  readonly #path: string;
  #worker: Worker | undefined;
  #ready: Promise<void> | undefined;
  #next = 1;
  #closing = false;
  #idleTimer: NodeJS.Timeout | undefined;
  readonly #idleStopMs: number;
  readonly #pending = new Map<number, { resolve: (result: unknown) => void; reject: (e: Error) => void }>();

  constructor(path: string, opts: { idleStopMs?: number } = {}) {
    this.#path = path;
    this.#idleStopMs = opts.idleStopMs ?? IDLE_STOP_MS;
  }

  /** Whether the thread is running (or starting); false once stopped for idleness or closed. */
  get running(): boolean {
    return this.#worker !== undefined;
  }

  /** Starts the thread; resolves once its connection is open and statements are prepared. */
  start(): Promise<void> {
    if (this.#ready) return this.#ready;
    const worker = new Worker(new URL(import.meta.url), { workerData: { heraldSqliteWriter: this.#path } });
    this.#worker = worker;
    this.#ready = new Promise<void>((resolve, reject) => {
      worker.once('message', () => {
        if (this.#pending.size === 0) this.#armIdleStop();
        resolve();
      });
      worker.once('error', reject);
    });
    worker.on('message', (m: Reply | { ready: true }) => {
      if (!('id' in m)) return;
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (this.#pending.size === 0) this.#armIdleStop();
      if ('result' in m) p.resolve(m.result);
      else p.reject(new SqliteWriterError(m.error.message, m.error.code));
    });
    worker.on('exit', (code) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#ready = undefined;
      const err = new SqliteWriterError(`the SQLite writer thread exited (code ${code})`, 'SQLITE_WRITER_EXITED');
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    });
    return this.#ready;
  }

  async write(items: AcceptItem[]): Promise<AcceptOutcome[]> {
    // Packed before the write is pending: if packing throws, nothing waits for a reply that never comes.
    return this.#call({ op: 'accept', batch: packBatch(items) }) as Promise<AcceptOutcome[]>;
  }

  claim(channel: string, owner: string, limit: number, now: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    return this.#call({ op: 'claim', args: [channel, owner, limit, now, leaseMs] }) as Promise<ClaimedDelivery[]>;
  }

  settle(items: SettleItem[]): Promise<number> {
    return this.#call({ op: 'settle', items }) as Promise<number>;
  }

  release(owners: string[], now: number): Promise<number> {
    return this.#call({ op: 'release', owners, now }) as Promise<number>;
  }

  /** Sends `op` to the thread (started if it is not running); resolves with its reply. */
  async #call(op: Operation): Promise<unknown> {
    if (this.#closing) throw new SqliteWriterError('the store is closing', 'SQLITE_WRITER_CLOSED');
    await this.start();
    clearTimeout(this.#idleTimer);
    const id = this.#next++;
    return new Promise<unknown>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker!.postMessage({ ...op, id } satisfies Request);
    });
  }

  /**
   * Stops the thread once IDLE_STOP_MS pass with no call in flight. The thread is dropped at once
   * (a call from then on starts a new one) and told to stop; it holds no transaction, since every
   * call it was given has been answered.
   */
  #armIdleStop(): void {
    clearTimeout(this.#idleTimer);
    if (this.#idleStopMs === 0) return;
    this.#idleTimer = setTimeout(() => {
      const w = this.#worker;
      if (this.#closing || this.#pending.size > 0 || !w) return;
      this.#worker = undefined;
      this.#ready = undefined;
      w.postMessage({ op: 'stop' } satisfies Stop);
      // The thread's isolate and connection are freed as it ends: give those pages back.
      w.once('exit', () => releaseFreedMemory());
      // Backstop: a thread that does not end by itself is ended.
      setTimeout(() => void w.terminate(), 10_000).unref();
    }, this.#idleStopMs);
    this.#idleTimer.unref();
  }

  /** Waits for pending calls, then stops the thread. */
  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#idleTimer);
    while (this.#pending.size > 0) await new Promise((r) => setTimeout(r, 5));
    const w = this.#worker;
    this.#worker = undefined;
    this.#ready = undefined;
    await w?.terminate();
  }
}
