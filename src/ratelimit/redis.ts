// The Redis rate limiter (REDIS_URL): buckets shared by every node of a deployment.
//
// Each decision is ONE Lua script run (EVALSHA, falling back to EVAL on NOSCRIPT: ioredis
// defineCommand), so it is atomic across nodes, including consumeMany over several keys. The
// script reads the time from the Redis server (TIME), not from the calling node, so nodes with
// skewed clocks agree; it mirrors src/domain/gcra.ts operation for operation. A bucket is one
// string key `<prefix><key>` = "<units> <at ms> <period ms>" with a TTL of the time until it is
// full again, so idle buckets vanish (a missing bucket is a full one). A refusal or a peek writes
// nothing. Redis Cluster would need consumeMany's keys in one hash slot ({…} in the keys); Herald
// uses a single Redis.
//
// Failure rule, when Redis cannot answer (not connected, an error, or no answer within
// `commandTimeoutMs`, default 500ms): the decision is made without it, marked `unchecked`, by
// `failMode`:
//   'open' (default)  allowed. A notification hub that stops sending, or an API that refuses every
//                     request, because its rate-limit store is down is worse than limits that do
//                     not hold for a while; Redis being down is already an incident.
//   'closed'          refused, retryAfterMs = the cooldown below.
// Each such decision counts in herald_ratelimit_unchecked_total{reason, outcome}; the first of an
// outage logs a warning and the first answer after it an info line. Nothing waits on a connection
// that is not ready: decisions are unchecked at once until it is (so also for the moment after
// start-up). After a timeout, Redis is not asked again for `cooldownMs` (default 1s), so a dead
// network path costs one timeout a second, not one per decision. The connection reconnects by
// itself with backoff (100ms doubling to 5s), as the bus does.

import type { Redis } from 'ioredis';
import { disconnectRedis, newRedis, redisOptions } from '../bus/redis-client.ts';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { checkBucket, checkTime, type Decision } from '../domain/gcra.ts';
import { checkDistinct, type LimitSpec, type ManyDecision, type RateLimiter } from './limiter.ts';

const COMMAND_TIMEOUT_MS = 500;
const COOLDOWN_MS = 1_000;
/** With caller time (tests), keys outlive their computed TTL by this: the server's expiry runs on its own clock. */
const CALLER_TIME_TTL_SLACK_MS = 3_600_000;

// KEYS: the buckets. ARGV: take ('1' or '0'), cost, now ('' = server TIME), TTL slack (ms), then
// limit and period per key. Returns {all (1/0), max retry, then per key: ok, remaining, reset, retry}.
// Numbers are doubles, as in JavaScript; the operations are those of gcra.ts refill/decide/decideMany.
const SCRIPT = `
local take = ARGV[1] == '1'
local cost = tonumber(ARGV[2])
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local slack = tonumber(ARGV[4])
local n = #KEYS
local limits, periods, units, ats = {}, {}, {}, {}
local all = true
local out = {0, 0}
local maxRetry = 0
for i = 1, n do
  local limit = tonumber(ARGV[3 + 2 * i])
  local period = tonumber(ARGV[4 + 2 * i])
  local cap = limit * period
  local u = cap
  local at = now
  local raw = redis.call('GET', KEYS[i])
  if raw then
    local su, sat, sp = string.match(raw, '^(%d+) (%d+) (%d+)$')
    if su then
      u = tonumber(su)
      sat = tonumber(sat)
      sp = tonumber(sp)
      if sp ~= period then u = math.floor((u * period) / sp) end
      if u > cap then u = cap end
      local elapsed = now - sat
      if elapsed >= period then
        u = cap
      elseif elapsed > 0 then
        u = math.min(cap, u + elapsed * limit)
      end
      at = math.max(sat, now)
    end
  end
  limits[i] = limit
  periods[i] = period
  units[i] = u
  ats[i] = at
  local need = cost * period
  if u < need then
    all = false
    local retry = math.ceil((need - u) / limit)
    if retry > maxRetry then maxRetry = retry end
  end
end
for i = 1, n do
  local limit, period, u = limits[i], periods[i], units[i]
  local cap = limit * period
  local need = cost * period
  local ok = u >= need
  local after = u
  if all and take then
    after = u - need
    if after >= cap then
      redis.call('DEL', KEYS[i])
    else
      local ttl = math.ceil((cap - after) / limit) + slack
      redis.call('SET', KEYS[i], string.format('%.0f %.0f %.0f', after, ats[i], period), 'PX', string.format('%.0f', ttl))
    end
  end
  local retry = 0
  if not ok then retry = math.ceil((need - u) / limit) end
  out[#out + 1] = ok and 1 or 0
  out[#out + 1] = math.floor(after / period)
  out[#out + 1] = math.ceil((cap - after) / limit)
  out[#out + 1] = retry
end
if all then out[1] = 1 else out[2] = maxRetry end
return out
`;

type Reason = 'disconnected' | 'timeout' | 'error' | 'closed';

interface ScriptClient {
  heraldRateLimit(numKeys: number, ...args: string[]): Promise<number[]>;
}

export interface RedisRateLimiterOptions {
  log: Logger;
  /** Registers herald_ratelimit_unchecked_total in this registry (Herald's Metrics has one). */
  metrics?: { registry: Registry };
  /** Key prefix (default `herald:rl:`). */
  prefix?: string;
  failMode?: 'open' | 'closed';
  commandTimeoutMs?: number;
  cooldownMs?: number;
  /** Tests only: decide at the caller's `now` when one is given, instead of the server's clock. */
  useCallerTime?: boolean;
}

export class RedisRateLimiter implements RateLimiter {
  readonly kind = 'redis';
  readonly #client: Redis;
  readonly #log: Logger;
  readonly #prefix: string;
  readonly #failMode: 'open' | 'closed';
  readonly #cooldownMs: number;
  readonly #useCallerTime: boolean;
  readonly #unchecked: Counter<'reason' | 'outcome'> | undefined;
  #closed = false;
  /** No Redis call before this (after a timeout). */
  #skipUntil = 0;
  /** An outage was reported and has not ended yet. */
  #down = false;

  constructor(url: string, opts: RedisRateLimiterOptions) {
    this.#log = opts.log;
    this.#prefix = opts.prefix ?? 'herald:rl:';
    this.#failMode = opts.failMode ?? 'open';
    this.#cooldownMs = opts.cooldownMs ?? COOLDOWN_MS;
    this.#useCallerTime = opts.useCallerTime ?? false;
    this.#client = newRedis(url, redisOptions('herald-ratelimit', opts.commandTimeoutMs ?? COMMAND_TIMEOUT_MS));
    this.#client.defineCommand('heraldRateLimit', { lua: SCRIPT });
    this.#client.on('error', () => undefined); // reported per decision (#unavailable), once per outage
    if (opts.metrics) {
      const name = 'herald_ratelimit_unchecked_total';
      this.#unchecked =
        (opts.metrics.registry.getSingleMetric(name) as Counter<'reason' | 'outcome'> | undefined) ??
        new Counter({
          name,
          help: 'Rate-limit decisions made without Redis (unreachable, error, timeout), by reason and outcome (allowed: fail-open, refused: fail-closed)',
          labelNames: ['reason', 'outcome'],
          registers: [opts.metrics.registry],
        });
    }
  }

  /** Whether the connection to Redis is up (decisions are unchecked while it is not). */
  get connected(): boolean {
    return this.#client.status === 'ready';
  }

  async consume(key: string, limit: number, periodMs: number, cost = 1, now?: number): Promise<Decision> {
    const many = await this.#run([{ key, limit, periodMs }], cost, now, true);
    return many.decisions[0]!;
  }

  async peek(key: string, limit: number, periodMs: number, cost = 1, now?: number): Promise<Decision> {
    const many = await this.#run([{ key, limit, periodMs }], cost, now, false);
    return many.decisions[0]!;
  }

  consumeMany(specs: readonly LimitSpec[], cost = 1, now?: number): Promise<ManyDecision> {
    return this.#run(specs, cost, now, true);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await disconnectRedis(this.#client);
  }

  async #run(specs: readonly LimitSpec[], cost: number, now: number | undefined, take: boolean): Promise<ManyDecision> {
    if (now !== undefined) checkTime(now);
    for (const s of specs) checkBucket(s.limit, s.periodMs, cost);
    checkDistinct(specs);
    if (specs.length === 0) return { allowed: true, retryAfterMs: 0, decisions: [] };
    if (this.#closed) return this.#unavailable(specs, cost, 'closed');
    if (this.#client.status !== 'ready') return this.#unavailable(specs, cost, 'disconnected');
    if (Date.now() < this.#skipUntil) return this.#unavailable(specs, cost, 'timeout');
    const callerTime = this.#useCallerTime && now !== undefined;
    const args = [
      ...specs.map((s) => this.#prefix + s.key),
      take ? '1' : '0',
      String(cost),
      callerTime ? String(now) : '',
      String(callerTime ? CALLER_TIME_TTL_SLACK_MS : 0),
      ...specs.flatMap((s) => [String(s.limit), String(s.periodMs)]),
    ];
    let reply: number[];
    try {
      reply = await (this.#client as unknown as ScriptClient).heraldRateLimit(specs.length, ...args);
    } catch (err) {
      const timedOut = /timed? ?out/i.test((err as Error).message);
      if (timedOut) this.#skipUntil = Date.now() + this.#cooldownMs;
      return this.#unavailable(specs, cost, timedOut ? 'timeout' : 'error', err);
    }
    if (this.#down) {
      this.#down = false;
      this.#log.info('rate limiter: Redis answers again; limits apply');
    }
    const decisions = specs.map((s, i): Decision => {
      const [ok, remaining, resetMs, retryAfterMs] = reply.slice(2 + 4 * i, 6 + 4 * i) as [number, number, number, number];
      return { allowed: ok === 1, remaining, resetMs, retryAfterMs, limit: s.limit };
    });
    return { allowed: reply[0] === 1, retryAfterMs: reply[1]!, decisions };
  }

  /** A decision by the failure rule; reports the first of an outage. */
  #unavailable(specs: readonly LimitSpec[], cost: number, reason: Reason, err?: unknown): ManyDecision {
    const allowed = this.#failMode === 'open';
    if (reason !== 'closed') {
      this.#unchecked?.inc({ reason, outcome: allowed ? 'allowed' : 'refused' });
      if (!this.#down) {
        this.#down = true;
        const message = allowed ? 'rate limiter: Redis unavailable; allowing without limits (fail-open) until it answers' : 'rate limiter: Redis unavailable; refusing (fail-closed) until it answers';
        this.#log.warn({ err, reason }, message);
      }
    }
    const retryAfterMs = allowed ? 0 : this.#cooldownMs;
    const decisions = specs.map(
      (s): Decision => ({ allowed, remaining: allowed ? s.limit - cost : 0, resetMs: 0, retryAfterMs, limit: s.limit, unchecked: true }),
    );
    return { allowed, retryAfterMs, decisions, unchecked: true };
  }
}
