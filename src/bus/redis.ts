// The bus over Redis pub/sub (ioredis), for deployments of more than one process (REDIS_URL).
//
// Two connections: one publishes, one subscribes (a subscribed connection can do nothing else).
// Each reconnects by itself with exponential backoff (100ms doubling to 5s) for as long as the
// bus is open; a node therefore starts, serves and delivers while Redis is down, and picks the bus
// up when Redis returns. While the publishing connection is down, publish() drops the message and
// logs it (commands are never queued for later). After the subscribing connection comes back its
// topics are subscribed again and then every subscription's onGap runs, since messages sent in
// between are lost: Redis pub/sub keeps nothing for absent subscribers.
//
// Channels are `<prefix><topic>` (prefix `herald:`). Redis pub/sub ignores the database number
// of the URL: deployments sharing one Redis hear each other's messages unless given distinct
// prefixes.

import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Bus, Subscription } from './bus.ts';
import { disconnectRedis, newRedis, redisOptions } from './redis-client.ts';

/** A command (PUBLISH, SUBSCRIBE) not answered within this fails instead of waiting on a dead link. */
const COMMAND_TIMEOUT_MS = 2_000;

export class RedisBus implements Bus {
  readonly kind = 'redis';
  readonly #pub: Redis;
  readonly #sub: Redis;
  readonly #prefix: string;
  readonly #log: Logger;
  readonly #topics = new Map<string, Set<Subscription>>();
  #closed = false;

  constructor(url: string, opts: { log: Logger; prefix?: string }) {
    this.#log = opts.log;
    this.#prefix = opts.prefix ?? 'herald:';
    const options = (connectionName: string): RedisOptions => ({
      ...redisOptions(connectionName, COMMAND_TIMEOUT_MS),
      autoResubscribe: false, // done in #onSubReady, which then reports the gap
    });
    this.#pub = newRedis(url, options('herald-bus-pub'));
    this.#sub = newRedis(url, options('herald-bus-sub'));
    this.#watch(this.#pub, 'publisher');
    this.#watch(this.#sub, 'subscriber');
    this.#sub.on('ready', () => void this.#onSubReady());
    this.#sub.on('message', (channel: string, message: string) => {
      if (!channel.startsWith(this.#prefix)) return;
      const topic = channel.slice(this.#prefix.length);
      for (const s of [...(this.#topics.get(topic) ?? [])]) this.#call(topic, () => s.onMessage(message));
    });
  }

  get connected(): boolean {
    return this.#pub.status === 'ready';
  }

  async publish(topic: string, message: string): Promise<void> {
    if (this.#closed) return;
    if (this.#pub.status !== 'ready') {
      this.#log.warn({ topic, status: this.#pub.status }, 'redis bus is not connected: message dropped');
      return;
    }
    try {
      await this.#pub.publish(this.#prefix + topic, message);
    } catch (err) {
      this.#log.warn({ err, topic }, 'redis bus publish failed: message dropped');
    }
  }

  subscribe(topic: string, subscription: Subscription): () => void {
    let subs = this.#topics.get(topic);
    if (!subs) {
      this.#topics.set(topic, (subs = new Set()));
      if (this.#sub.status === 'ready') {
        this.#sub.subscribe(this.#prefix + topic).catch((err: unknown) => this.#resubscribeLater(err));
      }
    }
    subs.add(subscription);
    return () => {
      if (!subs.delete(subscription) || subs.size > 0 || this.#topics.get(topic) !== subs) return;
      this.#topics.delete(topic);
      if (this.#sub.status === 'ready') this.#sub.unsubscribe(this.#prefix + topic).catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([this.#pub, this.#sub].map(disconnectRedis));
  }

  /** Subscribes every topic on the (re)connected subscriber, then reports the gap to each. */
  async #onSubReady(): Promise<void> {
    const topics = [...this.#topics.keys()];
    if (topics.length === 0) return;
    const before = topics.flatMap((t) => [...this.#topics.get(t)!].map((s) => ({ topic: t, s })));
    try {
      await this.#sub.subscribe(...topics.map((t) => this.#prefix + t));
    } catch (err) {
      this.#resubscribeLater(err);
      return;
    }
    for (const { topic, s } of before) if (s.onGap) this.#call(topic, s.onGap);
  }

  /** A SUBSCRIBE failed on a live connection: reconnect, so that #onSubReady tries again. */
  #resubscribeLater(err: unknown): void {
    if (this.#closed) return;
    this.#log.warn({ err }, 'redis bus subscribe failed; reconnecting');
    this.#sub.disconnect(true);
  }

  #call(topic: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#log.error({ err, topic }, 'bus subscriber failed');
    }
  }

  /** Logs each connection's transitions once (not every failed reconnection attempt). */
  #watch(c: Redis, role: string): void {
    let up = false;
    let reported = false;
    c.on('ready', () => {
      if (reported) this.#log.info({ role }, 'redis bus connected again');
      up = true;
      reported = false;
    });
    c.on('close', () => {
      if (this.#closed || !up) return;
      up = false;
      reported = true;
      this.#log.warn({ role }, 'redis bus disconnected; reconnecting in the background');
    });
    c.on('error', (err: Error) => {
      if (this.#closed || reported) return;
      reported = true;
      this.#log.warn({ err, role }, 'redis bus unreachable; retrying in the background');
    });
  }
}
