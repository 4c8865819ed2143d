// The deployment's rate limiter: shared through Redis when REDIS_URL is set (limits hold across
// nodes; fail-open when Redis is down, see redis.ts), else in-process.

import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config.ts';
import type { RateLimiter } from './limiter.ts';
import { MemoryRateLimiter } from './memory.ts';
import { RedisRateLimiter } from './redis.ts';

export type { Decision, LimitSpec, ManyDecision, RateLimiter } from './limiter.ts';

export function createRateLimiter(config: Pick<Config, 'redisUrl'> & Partial<Pick<Config, 'redisPrefix'>>, opts: { log: Logger; metrics?: { registry: Registry } }): RateLimiter {
  if (config.redisUrl) return new RedisRateLimiter(config.redisUrl.href, { log: opts.log, metrics: opts.metrics, prefix: `${config.redisPrefix ?? 'herald:'}rl:` });
  return new MemoryRateLimiter();
}
