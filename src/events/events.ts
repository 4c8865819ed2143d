// Events: the one port through which Herald announces what happened, to listeners in this process
// and, with Redis (REDIS_URL), on every node of the deployment.
//
// Contract:
// - Best effort. The store is the truth: an event may be lost (the bus is down, a node is
//   reconnecting, a node crashed between its commit and its announcement), so a listener that
//   needs certainty re-reads the store (a gap on the bus is reported through `onGap`).
// - An event is announced after the change it describes is committed, never before.
// - `emit` never blocks and never throws: listeners of this node are called synchronously, in
//   order, with each event; a throwing listener is logged. Listeners must not block either (start
//   async work and return). With Redis, what was emitted during one turn of the event loop is
//   published as one bus message at its end; other nodes call their listeners with it. A node
//   does not hear its own messages from the bus.
// - Emitters announce in batches (one `emit` per settle group, per callback, per operator action),
//   so announcing costs one call per batch, and the bus one message per turn, not one per row.
// - Order: events of one `emit` keep their order; batches of different nodes are not ordered
//   with respect to each other.
//
// The events themselves are types in domain/events.ts.

import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.ts';
import type { EventType, HeraldEvent } from '../domain/events.ts';

export type { DeliveryRef, EventOf, EventPayloads, EventType, HeraldEvent } from '../domain/events.ts';

/** The bus topic carrying event batches between nodes. */
export const EVENTS_TOPIC = 'events';

export interface EventListener {
  /**
   * Called with each event, from this node and (with Redis) from the others; `local` tells which.
   * Work that must happen once per event (an operator alert) is done by the node that emitted it.
   */
  onEvent: (event: HeraldEvent, local: boolean) => void;
  /** Called when events from other nodes may have been missed (the bus reconnected). */
  onGap?: () => void;
  /** The event types it wants; absent: all. Emitters skip building events nobody wants (`wants`). */
  types?: readonly EventType[];
}

interface Batch {
  node: string;
  events: HeraldEvent[];
}

export class Events {
  readonly #node: string;
  readonly #bus: Bus | undefined;
  readonly #log: Logger | undefined;
  readonly #listeners = new Set<EventListener>();
  #unsubscribe: (() => void) | undefined;
  /** Emitted this turn, not yet published. */
  #outbox: HeraldEvent[] = [];
  #flush: NodeJS.Immediate | undefined;

  /**
   * `node`: this process's id (batches carry it, so a node skips its own). `bus`: the Redis bus to
   * share events across nodes; none (or an in-process bus) keeps them in this process.
   */
  constructor(opts: { node: string; bus?: Bus | undefined; log?: Logger | undefined }) {
    this.#node = opts.node;
    this.#bus = opts.bus && opts.bus.kind !== 'in-process' ? opts.bus : undefined;
    this.#log = opts.log;
    this.#unsubscribe = this.#bus?.subscribe(EVENTS_TOPIC, {
      onMessage: (message) => this.#received(message),
      onGap: () => {
        for (const l of [...this.#listeners]) this.#call(() => l.onGap?.());
      },
    });
  }

  /**
   * Whether an event of `type` emitted now would reach anyone: another node through the bus, or a
   * listener here that wants it. Emitters on the hot path check this before building events.
   */
  wants(type: EventType): boolean {
    if (this.#bus) return true;
    for (const l of this.#listeners) if (!l.types || l.types.includes(type)) return true;
    return false;
  }

  /** Announces committed changes (see the contract above). */
  emit(events: readonly HeraldEvent[]): void {
    if (events.length === 0) return;
    this.#dispatch(events, true);
    if (!this.#bus) return;
    for (const e of events) this.#outbox.push(e);
    this.#flush ??= setImmediate(() => this.#publish());
  }

  #publish(): void {
    this.#flush = undefined;
    const batch: Batch = { node: this.#node, events: this.#outbox };
    this.#outbox = [];
    if (batch.events.length > 0) void this.#bus?.publish(EVENTS_TOPIC, JSON.stringify(batch));
  }

  /** Listens to every event; returns the function that stops listening. */
  listen(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** Publishes what is pending and stops listening to the bus (call before closing the bus). */
  close(): void {
    if (this.#flush) {
      clearImmediate(this.#flush);
      this.#publish();
    }
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#listeners.clear();
  }

  #received(message: string): void {
    let batch: Batch;
    try {
      batch = JSON.parse(message) as Batch;
    } catch (err) {
      this.#log?.warn({ err }, 'events: unreadable batch on the bus');
      return;
    }
    if (batch.node === this.#node || !Array.isArray(batch.events)) return;
    this.#dispatch(batch.events, false);
  }

  #dispatch(events: readonly HeraldEvent[], local: boolean): void {
    if (this.#listeners.size === 0) return;
    const listeners = [...this.#listeners];
    for (const e of events) for (const l of listeners) if (!l.types || l.types.includes(e.type)) this.#call(() => l.onEvent(e, local));
  }

  #call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#log?.error({ err }, 'event listener failed');
    }
  }
}
