// How Herald talks to Redis, for every user of it (the bus, rate limits): fail fast, never queue.
//
// Contract: a command sent while the connection is down fails at once (no offline queue, no
// retries per request, unanswered commands are not resent after a reconnect), and one that gets no
// answer fails after `commandTimeoutMs`; the connection itself is re-established in the background,
// 100 ms after a loss and doubling to at most 5 s. Callers decide what a failure means (the bus
// drops a message, rate limits fail open).

import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;
const CONNECT_TIMEOUT_MS = 5_000;
const KEEPALIVE_MS = 10_000;
const CLOSE_WAIT_MS = 1_000;

/**
 * A new ioredis client. ioredis is loaded with the first client: a process without REDIS_URL never
 * loads it.
 */
export function newRedis(url: string, options: RedisOptions): Redis {
  const { Redis: Client } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
  return new Client(url, options);
}

export function redisOptions(connectionName: string, commandTimeoutMs: number): RedisOptions {
  return {
    connectionName,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: commandTimeoutMs,
    keepAlive: KEEPALIVE_MS,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(BACKOFF_MIN_MS * 2 ** Math.min(times - 1, 16), BACKOFF_MAX_MS),
  };
}

/** Closes the connection and waits (at most a second) until it has ended. */
export async function disconnectRedis(c: Redis): Promise<void> {
  if (c.status === 'end') return;
  const ended = new Promise<void>((resolve) => {
    const t = setTimeout(resolve, CLOSE_WAIT_MS);
    c.once('end', () => {
      clearTimeout(t);
      resolve();
    });
  });
  c.disconnect();
  await ended;
}
