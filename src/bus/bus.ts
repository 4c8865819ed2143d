// The bus: best-effort messages between the Herald processes of one deployment. In-process
// (InProcessBus, below) when one process is all there is; Redis pub/sub (bus/redis.ts) when
// REDIS_URL is set.
//
// Nothing on the bus may be needed for correctness: a message can be lost (the bus is down, a
// node is reconnecting), so every user keeps a fallback that converges without it (e.g. the API
// key cache expires on its own). Used for: API key cache invalidation (KEYS_INVALIDATE).

import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';

/** Topic of API key revocations: every node drops its cached keys. The message is unused. */
export const KEYS_INVALIDATE = 'keys.invalidate';

export interface Subscription {
  /** Called with each message published on the topic, by any node (this one included). */
  onMessage: (message: string) => void;
  /**
   * Called when messages of this topic may have been missed: each time the bus (re)connects, once
   * the subscription is active on it (for a subscription made before the first connection, that
   * connection counts too). Never called by a bus that cannot lose messages (in-process).
   */
  onGap?: () => void;
}

export interface Bus {
  /** `redis` or `in-process`. */
  readonly kind: string;
  /** Whether a message published now would go out (always true in-process). */
  readonly connected: boolean;
  /**
   * Sends `message` to every subscriber of `topic` on every node. Never throws or rejects: while
   * the bus is down the message is dropped and logged. Resolves once it was handed to the bus (or
   * dropped).
   */
  publish(topic: string, message: string): Promise<void>;
  /** Subscribes; returns the function that unsubscribes. A throwing handler is logged, not fatal. */
  subscribe(topic: string, subscription: Subscription): () => void;
  /** Disconnects; later publishes are dropped. Safe to call more than once. */
  close(): Promise<void>;
}

/** The bus of a single process: an EventEmitter. Delivery is synchronous and never lost. */
export class InProcessBus implements Bus {
  readonly kind = 'in-process';
  readonly connected = true;
  readonly #events = new EventEmitter().setMaxListeners(0);
  readonly #log: Logger | undefined;
  #closed = false;

  constructor(opts: { log?: Logger } = {}) {
    this.#log = opts.log;
  }

  async publish(topic: string, message: string): Promise<void> {
    if (!this.#closed) this.#events.emit(topic, message);
  }

  subscribe(topic: string, subscription: Subscription): () => void {
    const listener = (message: string) => {
      try {
        subscription.onMessage(message);
      } catch (err) {
        this.#log?.error({ err, topic }, 'bus subscriber failed');
      }
    };
    this.#events.on(topic, listener);
    return () => void this.#events.off(topic, listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#events.removeAllListeners();
  }
}
