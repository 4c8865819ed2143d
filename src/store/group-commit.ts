// Group commit: concurrent callers' writes are gathered and written together, one transaction per
// batch, so the cost of a durable commit (an fsync) is shared by everyone in the batch.
//
// Contract: `submit(item)` resolves with that item's result only after the batch containing it has
// been written by `write`; if `write` throws, every item of that batch rejects with the error.
// A batch is flushed when `maxBatch` items are waiting, or at the next turn of the event loop
// (setImmediate), so a lone request is not delayed. At most one write runs at a time; items
// submitted meanwhile form the next batch.

export class GroupCommitter<T, R> {
  readonly #write: (items: T[]) => Promise<R[]>;
  readonly #maxBatch: number;
  #pending: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  #scheduled = false;
  #writing: Promise<void> | undefined;

  constructor(write: (items: T[]) => Promise<R[]>, maxBatch = 256) {
    this.#write = write;
    this.#maxBatch = maxBatch;
  }

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (this.#pending.length >= this.#maxBatch && !this.#writing) void this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          if (!this.#writing) void this.#flush();
        });
      }
    });
  }

  /** Resolves once everything submitted so far has been written (or has failed). */
  async drain(): Promise<void> {
    while (this.#pending.length > 0 || this.#writing) {
      if (this.#writing) await this.#writing;
      else await this.#flush();
    }
  }

  async #flush(): Promise<void> {
    if (this.#pending.length === 0) return;
    const batch = this.#pending.splice(0, this.#maxBatch);
    let done!: () => void;
    this.#writing = new Promise<void>((r) => (done = r));
    try {
      const results = await this.#write(batch.map((b) => b.item));
      batch.forEach((b, i) => b.resolve(results[i]!));
    } catch (err) {
      for (const b of batch) b.reject(err);
    } finally {
      this.#writing = undefined;
      done();
    }
    if (this.#pending.length > 0) void this.#flush();
  }
}
