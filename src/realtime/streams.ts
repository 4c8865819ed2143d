// Channels as streams: every channel of an organization (`<workspace>/<channel>`, the stream key)
// has an epoch and a running offset; each publication takes the next offset and is kept in a
// bounded history (at most `size` publications, none older than `ageMs`) for recovery.
//
// Contract:
//   publish(key, data)   assigns the next offset, stores it in the history and hands it to every
//                        node's `onPublication` listener (this node's too), in offset order per key
//                        as far as one node sees.
//   position(key, since) the stream's {epoch, offset} now, creating the stream (offset 0, a new
//                        epoch) if it has none, and the publications after `since` when it can
//                        give them all: `recovered` is true only when `since.epoch` is the
//                        stream's epoch and every publication after `since.offset` is still in
//                        the history. A stream whose history was lost (Redis restarted, a key
//                        expired, an in-process node restarted) gets a new epoch, so a client
//                        never takes a gap for continuity.
//
// In-process (no REDIS_URL) the streams live in this process. With REDIS_URL each stream is two
// keys, `<prefix>rt:<key>:m` (hash: epoch, offset) and `<prefix>rt:<key>:h` (list of
// "<offset>|<ms>|<data>"), and a publish is one Lua script (one round trip) that increments the
// offset, appends and trims the history and PUBLISHes the publication on the bus topic
// `realtime.pub`, so any node serves any client.

import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.ts';
import { disconnectRedis, newRedis, redisOptions } from '../bus/redis-client.ts';

export interface Publication {
  readonly offset: number;
  readonly epoch: string;
  /** The data as JSON text. */
  readonly data: string;
}

export interface Position {
  readonly epoch: string;
  readonly offset: number;
  readonly recovered: boolean;
  /** Publications after `since`, oldest first (empty unless recovered). */
  readonly missed: readonly Publication[];
}

export interface Streams {
  publish(key: string, data: string): Promise<{ offset: number; epoch: string }>;
  position(key: string, since: { offset: number; epoch: string } | undefined): Promise<Position>;
  /** Sets the one listener of every publication, from any node. */
  onPublication(listener: (key: string, p: Publication) => void): void;
  close(): Promise<void>;
}

export interface HistoryLimits {
  readonly size: number;
  readonly ageMs: number;
}

const newEpoch = () => randomBytes(6).toString('base64url');

/** What position() answers from a stream's state and the history entries it holds (oldest first). */
function positionOf(epoch: string, offset: number, history: readonly { offset: number; at: number; data: string }[], since: { offset: number; epoch: string } | undefined, limits: HistoryLimits, now: number): Position {
  if (!since) return { epoch, offset, recovered: false, missed: [] };
  if (since.epoch !== epoch || since.offset > offset) return { epoch, offset, recovered: false, missed: [] };
  if (since.offset === offset) return { epoch, offset, recovered: true, missed: [] };
  const oldest = now - limits.ageMs;
  const missed = history.filter((e) => e.offset > since.offset && e.at >= oldest);
  // Complete only when the history reaches back to the first publication after `since`.
  if (missed.length !== offset - since.offset || missed[0]!.offset !== since.offset + 1) return { epoch, offset, recovered: false, missed: [] };
  return { epoch, offset, recovered: true, missed: missed.map((e) => ({ offset: e.offset, epoch, data: e.data })) };
}

export class InProcessStreams implements Streams {
  readonly #limits: HistoryLimits;
  readonly #streams = new Map<string, { epoch: string; offset: number; history: { offset: number; at: number; data: string }[] }>();
  #listener: (key: string, p: Publication) => void = () => undefined;

  constructor(limits: HistoryLimits) {
    this.#limits = limits;
  }

  #stream(key: string) {
    let s = this.#streams.get(key);
    if (!s) this.#streams.set(key, (s = { epoch: newEpoch(), offset: 0, history: [] }));
    return s;
  }

  async publish(key: string, data: string): Promise<{ offset: number; epoch: string }> {
    const s = this.#stream(key);
    const now = Date.now();
    const offset = ++s.offset;
    if (this.#limits.size > 0) {
      s.history.push({ offset, at: now, data });
      const oldest = now - this.#limits.ageMs;
      let drop = Math.max(0, s.history.length - this.#limits.size);
      while (drop < s.history.length && s.history[drop]!.at < oldest) drop++;
      if (drop) s.history.splice(0, drop);
    }
    this.#listener(key, { offset, epoch: s.epoch, data });
    return { offset, epoch: s.epoch };
  }

  async position(key: string, since: { offset: number; epoch: string } | undefined): Promise<Position> {
    const s = this.#stream(key);
    return positionOf(s.epoch, s.offset, s.history, since, this.#limits, Date.now());
  }

  onPublication(listener: (key: string, p: Publication) => void): void {
    this.#listener = listener;
  }

  async close(): Promise<void> {}
}

/** The bus topic publications travel on (the Lua script PUBLISHes to `<prefix>realtime.pub`). */
export const PUBLICATION_TOPIC = 'realtime.pub';

// KEYS: meta hash, history list. ARGV: data, now ms, history size, history age ms, new epoch,
// meta TTL ms, pub/sub channel, stream key. Returns {epoch, offset}.
const PUBLISH = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[5]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
local size = tonumber(ARGV[3])
if size > 0 then
  redis.call('RPUSH', KEYS[2], offset .. '|' .. ARGV[2] .. '|' .. ARGV[1])
  redis.call('LTRIM', KEYS[2], -size, -1)
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
redis.call('PUBLISH', ARGV[7], ARGV[8] .. '\\n' .. epoch .. '\\n' .. offset .. '\\n' .. ARGV[1])
return {epoch, offset}
`;

// KEYS: meta hash, history list. ARGV: new epoch, meta TTL ms, the client's epoch ('' = none).
// Returns {epoch, offset, history entries (only when the client's epoch is the stream's)}.
const POSITION = `
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'offset', 0)
  redis.call('DEL', KEYS[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local offset = tonumber(redis.call('HGET', KEYS[1], 'offset') or '0')
local entries = {}
if ARGV[3] == epoch then entries = redis.call('LRANGE', KEYS[2], 0, -1) end
return {epoch, offset, entries}
`;

type RedisWithScripts = Redis & {
  rtPublish(meta: string, hist: string, ...args: (string | number)[]): Promise<[string, number]>;
  rtPosition(meta: string, hist: string, ...args: (string | number)[]): Promise<[string, number, string[]]>;
};

/** A stream's meta hash lives at least this long after its last publish (its epoch with it). */
const META_TTL_MIN_MS = 86_400_000;

export class RedisStreams implements Streams {
  readonly #redis: RedisWithScripts;
  readonly #prefix: string;
  readonly #limits: HistoryLimits;
  readonly #unsubscribe: () => void;
  #listener: (key: string, p: Publication) => void = () => undefined;

  constructor(url: string, opts: { prefix: string; limits: HistoryLimits; bus: Bus; log: Logger }) {
    this.#prefix = opts.prefix;
    this.#limits = opts.limits;
    const redis = newRedis(url, redisOptions('herald-realtime', 2_000));
    redis.on('error', (err: Error) => opts.log.debug({ err: err.message }, 'realtime redis connection error'));
    redis.defineCommand('rtPublish', { numberOfKeys: 2, lua: PUBLISH });
    redis.defineCommand('rtPosition', { numberOfKeys: 2, lua: POSITION });
    this.#redis = redis as RedisWithScripts;
    this.#unsubscribe = opts.bus.subscribe(PUBLICATION_TOPIC, {
      onMessage: (message) => {
        const a = message.indexOf('\n');
        const b = message.indexOf('\n', a + 1);
        const c = message.indexOf('\n', b + 1);
        if (a < 0 || b < 0 || c < 0) return;
        this.#listener(message.slice(0, a), { epoch: message.slice(a + 1, b), offset: Number(message.slice(b + 1, c)), data: message.slice(c + 1) });
      },
    });
  }

  #keys(key: string): [string, string] {
    return [`${this.#prefix}rt:${key}:m`, `${this.#prefix}rt:${key}:h`];
  }

  async publish(key: string, data: string): Promise<{ offset: number; epoch: string }> {
    const [meta, hist] = this.#keys(key);
    const metaTtl = Math.max(META_TTL_MIN_MS, this.#limits.ageMs);
    const [epoch, offset] = await this.#redis.rtPublish(meta, hist, data, Date.now(), this.#limits.size, this.#limits.ageMs, newEpoch(), metaTtl, `${this.#prefix}${PUBLICATION_TOPIC}`, key);
    return { epoch, offset: Number(offset) };
  }

  async position(key: string, since: { offset: number; epoch: string } | undefined): Promise<Position> {
    const [meta, hist] = this.#keys(key);
    const [epoch, offset, entries] = await this.#redis.rtPosition(meta, hist, newEpoch(), Math.max(META_TTL_MIN_MS, this.#limits.ageMs), since?.epoch ?? '');
    const history = entries.map((e) => {
      const a = e.indexOf('|');
      const b = e.indexOf('|', a + 1);
      return { offset: Number(e.slice(0, a)), at: Number(e.slice(a + 1, b)), data: e.slice(b + 1) };
    });
    return positionOf(epoch, Number(offset), history, since, this.#limits, Date.now());
  }

  onPublication(listener: (key: string, p: Publication) => void): void {
    this.#listener = listener;
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    await disconnectRedis(this.#redis);
  }
}
