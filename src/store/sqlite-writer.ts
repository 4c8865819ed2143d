// The SQLite accept writer: a worker thread with its own connection that performs accept batches
// (sqlite-accept.ts), so their inserts and fsync run on another core while the event loop keeps
// serving HTTP. Messages: {id, batch} (a PackedBatch) in; {id, outcomes} or {id, error} out.
// Batches that arrive while a transaction commits are merged into the next one.
//
// Main-thread side: SqliteWriter.write(items) resolves with the outcomes once the batch is
// committed. If the thread dies, its pending writes reject (those requests get an error, never a
// 202) and the next write starts a new thread.

import BetterSqlite3 from 'better-sqlite3';
import { isMainThread, parentPort, receiveMessageOnPort, Worker, workerData } from 'node:worker_threads';
import type { AcceptItem, AcceptOutcome } from './adapter.ts';
import { configureConnection, packBatch, prepareAcceptWrite, type PackedBatch } from './sqlite-accept.ts';

/** How often the thread checkpoints the WAL, and the WAL size at which a commit does it anyway. */
export const CHECKPOINT_INTERVAL_MS = 1000;
const BACKSTOP_CHECKPOINT_PAGES = 20_000;

/** Items one transaction of the thread takes at most, merging queued batches. */
export const MERGE_ITEMS = 1024;

/** Items travel packed (PackedBatch): a few JSON strings, cheaper to pass between threads than a cloned object graph. */
type Request = { id: number; batch: PackedBatch };
type Reply = { id: number; outcomes: AcceptOutcome[] } | { id: number; error: { message: string; code?: string } };

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
  setInterval(() => {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // SQLITE_BUSY or a transient I/O error: the next tick (or the backstop) tries again.
    }
  }, CHECKPOINT_INTERVAL_MS);
  const write = prepareAcceptWrite(db);
  const port = parentPort!;
  // Group commit across requests: the batches that queued up while the previous transaction was
  // committing are merged into one transaction (up to MERGE_ITEMS items), and each gets its own
  // reply. If the merged transaction fails, every batch in it fails.
  port.on('message', (first: Request) => {
    const requests = [first];
    let count = first.batch.count;
    while (count < MERGE_ITEMS) {
      const next = receiveMessageOnPort(port)?.message as Request | undefined;
      if (!next) break;
      requests.push(next);
      count += next.batch.count;
    }
    try {
      const outcomes = write(requests.map((r) => r.batch));
      requests.forEach((r, i) => port.postMessage({ id: r.id, outcomes: outcomes[i]! } satisfies Reply));
    } catch (err) {
      const e = err as { message: string; code?: string };
      const error = { message: e.message, ...(e.code !== undefined && { code: e.code }) };
      for (const r of requests) port.postMessage({ id: r.id, error } satisfies Reply);
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
  readonly #pending = new Map<number, { resolve: (o: AcceptOutcome[]) => void; reject: (e: Error) => void }>();

  constructor(path: string) {
    this.#path = path;
  }

  /** Starts the thread; resolves once its connection is open and statements are prepared. */
  start(): Promise<void> {
    if (this.#ready) return this.#ready;
    const worker = new Worker(new URL(import.meta.url), { workerData: { heraldSqliteWriter: this.#path } });
    this.#worker = worker;
    this.#ready = new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    worker.on('message', (m: Reply | { ready: true }) => {
      if (!('id' in m)) return;
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if ('outcomes' in m) p.resolve(m.outcomes);
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
    if (this.#closing) throw new SqliteWriterError('the store is closing', 'SQLITE_WRITER_CLOSED');
    await this.start();
    // Packed before the write is pending: if packing throws, nothing waits for a reply that never comes.
    const batch = packBatch(items);
    const id = this.#next++;
    return new Promise<AcceptOutcome[]>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker!.postMessage({ id, batch } satisfies Request);
    });
  }

  /** Waits for pending writes, then stops the thread. */
  async close(): Promise<void> {
    this.#closing = true;
    while (this.#pending.size > 0) await new Promise((r) => setTimeout(r, 5));
    const w = this.#worker;
    this.#worker = undefined;
    this.#ready = undefined;
    await w?.terminate();
  }
}
