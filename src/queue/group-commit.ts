// Group commit: concurrent callers' writes are gathered and written together, one transaction per
// batch, so the cost of a durable commit (an fsync) is shared by everyone in the batch.
//
// Contract: `submit(item)` resolves with that item's result only after the batch containing it has
// been written by `write`; if `write` throws, every item of that batch rejects with the error.
// A batch is flushed when `maxBatch` items are waiting, or at the next turn of the event loop
// (setImmediate), so a lone request is not delayed. At most `maxInFlight` writes run at a time;
// items submitted meanwhile wait and form the next batch.
//
// maxInFlight 1 (the default) makes batches as large as the write's latency allows. More lets the
// caller keep working while a commit is in progress: the SQLite writer thread, which itself merges
// the batches queued for it into one transaction (sqlite-writer.ts), so the event loop never waits
// for an fsync with nothing to do.

export class GroupCommitter<T, R> {
  readonly #write: (items: T[]) => Promise<R[]>;
  readonly #maxBatch: number;
  readonly #maxInFlight: number;
  #pending: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  #scheduled = false;
  #inFlight = 0;
  #idle: (() => void)[] = [];

  constructor(write: (items: T[]) => Promise<R[]>, opts: { maxBatch?: number; maxInFlight?: number } = {}) {
    this.#write = write;
    this.#maxBatch = opts.maxBatch ?? 256;
    this.#maxInFlight = opts.maxInFlight ?? 1;
  }

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (this.#pending.length >= this.#maxBatch && this.#inFlight < this.#maxInFlight) this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          if (this.#inFlight < this.#maxInFlight) this.#flush();
        });
      }
    });
  }

  /** Resolves once everything submitted so far has been written (or has failed). */
  async drain(): Promise<void> {
    while (this.#pending.length > 0 || this.#inFlight > 0) {
      if (this.#inFlight > 0) await new Promise<void>((r) => this.#idle.push(r));
      else this.#flush();
    }
  }

  #flush(): void {
    if (this.#pending.length === 0) return;
    const batch = this.#pending.splice(0, this.#maxBatch);
    this.#inFlight++;
    void this.#run(batch);
  }

  async #run(batch: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[]): Promise<void> {
    try {
      const results = await this.#write(batch.map((b) => b.item));
      batch.forEach((b, i) => b.resolve(results[i]!));
    } catch (err) {
      for (const b of batch) b.reject(err);
    } finally {
      this.#inFlight--;
      for (const wake of this.#idle.splice(0)) wake();
    }
    if (this.#pending.length > 0 && this.#inFlight < this.#maxInFlight) this.#flush();
  }
}
