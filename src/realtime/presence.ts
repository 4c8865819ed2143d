// Presence: which recipients have a live real-time session, across all nodes.
//
// Contract (key: `<workspace>/<recipient>`, session: a connection's session id):
//   join(key, session)   the session counts as online until `ttlMs` after its last join or
//                        refresh; answers whether the recipient had no live session before.
//   leave(key, session)  the session stops counting; answers whether the recipient has none left.
//   refresh(entries)     renews each session's expiry (a node does this for its sessions every
//                        ttl/4, so a node that dies without leave has its sessions expire within
//                        ttl).
//   online(keys)         whether each recipient has a live session now.
//
// In-process (no REDIS_URL): sets of sessions, nothing expires (the process is all there is).
// With REDIS_URL: one sorted set per recipient, `<prefix>rt:presence:<key>`, members the sessions
// scored by their expiry (ms); expired members are pruned on join and leave, not counted by
// online, and the key itself expires `ttlMs` after its last write.

import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { disconnectRedis, newRedis, redisOptions } from '../bus/redis-client.ts';

export interface Presence {
  readonly ttlMs: number;
  join(key: string, session: string): Promise<boolean>;
  leave(key: string, session: string): Promise<boolean>;
  refresh(entries: readonly { key: string; session: string }[]): Promise<void>;
  online(keys: readonly string[]): Promise<boolean[]>;
  close(): Promise<void>;
}

export class InProcessPresence implements Presence {
  readonly ttlMs: number;
  readonly #sessions = new Map<string, Set<string>>();

  constructor(ttlMs: number) {
    this.ttlMs = ttlMs;
  }

  async join(key: string, session: string): Promise<boolean> {
    let s = this.#sessions.get(key);
    if (!s) this.#sessions.set(key, (s = new Set()));
    const was = s.size > 0;
    s.add(session);
    return !was;
  }

  async leave(key: string, session: string): Promise<boolean> {
    const s = this.#sessions.get(key);
    if (!s) return true;
    s.delete(session);
    if (s.size === 0) this.#sessions.delete(key);
    return s.size === 0;
  }

  async refresh(): Promise<void> {}

  async online(keys: readonly string[]): Promise<boolean[]> {
    return keys.map((k) => (this.#sessions.get(k)?.size ?? 0) > 0);
  }

  async close(): Promise<void> {}
}

// KEYS[1] the set; ARGV: session, now, expiry, ttl. Answers 1 when no live session was there before.
const JOIN = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local before = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if before == 0 then return 1 else return 0 end`;
// KEYS[1] the set; ARGV: session, now. Answers 1 when no live session is left.
const LEAVE = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) == 0 then return 1 else return 0 end`;

type RedisWithScripts = Redis & {
  rtJoin(key: string, session: string, now: number, expiry: number, ttl: number): Promise<number>;
  rtLeave(key: string, session: string, now: number): Promise<number>;
};

export class RedisPresence implements Presence {
  readonly ttlMs: number;
  readonly #redis: RedisWithScripts;
  readonly #prefix: string;

  constructor(url: string, opts: { prefix: string; ttlMs: number; log: Logger }) {
    this.ttlMs = opts.ttlMs;
    this.#prefix = `${opts.prefix}rt:presence:`;
    const redis = newRedis(url, redisOptions('herald-presence', 2_000));
    redis.on('error', (err: Error) => opts.log.debug({ err: err.message }, 'presence redis connection error'));
    redis.defineCommand('rtJoin', { numberOfKeys: 1, lua: JOIN });
    redis.defineCommand('rtLeave', { numberOfKeys: 1, lua: LEAVE });
    this.#redis = redis as RedisWithScripts;
  }

  async join(key: string, session: string): Promise<boolean> {
    const now = Date.now();
    return (await this.#redis.rtJoin(this.#prefix + key, session, now, now + this.ttlMs, this.ttlMs)) === 1;
  }

  async leave(key: string, session: string): Promise<boolean> {
    return (await this.#redis.rtLeave(this.#prefix + key, session, Date.now())) === 1;
  }

  async refresh(entries: readonly { key: string; session: string }[]): Promise<void> {
    if (entries.length === 0) return;
    const expiry = Date.now() + this.ttlMs;
    const p = this.#redis.pipeline();
    for (const e of entries) p.zadd(this.#prefix + e.key, expiry, e.session).pexpire(this.#prefix + e.key, this.ttlMs);
    await p.exec();
  }

  async online(keys: readonly string[]): Promise<boolean[]> {
    if (keys.length === 0) return [];
    const now = Date.now();
    const p = this.#redis.pipeline();
    for (const k of keys) p.zcount(this.#prefix + k, `(${now}`, '+inf');
    const r = (await p.exec()) ?? [];
    return r.map(([err, n]) => !err && Number(n) > 0);
  }

  async close(): Promise<void> {
    await disconnectRedis(this.#redis);
  }
}
