// The dead-letter queue: exhausted deliveries and the operator actions on them.
// (Implementation in progress; see http/dlq.ts.)

import type { Logger } from 'pino';
import type { StoreAdapter } from '../store/adapter.ts';

export class DlqService {
  readonly #store: StoreAdapter;
  readonly #log: Logger;
  readonly #onReplayed: (channels: Set<string>) => void;

  constructor(opts: { store: StoreAdapter; log: Logger; onReplayed: (channels: Set<string>) => void }) {
    this.#store = opts.store;
    this.#log = opts.log;
    this.#onReplayed = opts.onReplayed;
  }

  /** Resumes bulk jobs left running by a previous process. */
  async start(): Promise<void> {
    void this.#store;
    void this.#log;
    void this.#onReplayed;
  }

  /** Stops running bulk jobs at a safe point. */
  async stop(): Promise<void> {}
}
