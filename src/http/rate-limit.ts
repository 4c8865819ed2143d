// Per-API-key request limits (HERALD_KEY_RATE_LIMIT) with the RateLimit-Policy and RateLimit
// fields of draft-ietf-httpapi-ratelimit-headers-11 (structured-field lists; the older drafts'
// RateLimit-Limit/-Remaining/-Reset are not sent).
//
// Runs on authenticated routes after authentication: each request takes one token from its
// principal's bucket (`key:<key id>`, auth/principal.ts actorOf; a key is limited across all its requests, whatever the route).
//   allowed:  RateLimit-Policy: "default";q=<limit>;w=<window s>
//             RateLimit: "default";r=<tokens left>;t=<s until the bucket is full again, rounded up>
//   refused:  429 rate_limited, Retry-After: <s until a token is back, rounded up, at least 1>,
//             RateLimit: "default";r=0;t=<the same> (the draft: Retry-After not before t ends)
//   unchecked (the store unreachable; see src/ratelimit/redis.ts): no RateLimit fields; allowed
//             or refused by the limiter's failure rule (fail-open by default).

import type { onRequestHookHandler } from 'fastify';
import { actorOf } from '../auth/principal.ts';
import { Problem } from '../errors.ts';
import { createRateLimiter } from '../ratelimit/index.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import type { Services } from '../services.ts';
import type { Api } from './api.ts';

/** The policy's name in the fields. */
export const KEY_POLICY = 'default';

/** The onRequest hook that limits each API key to `limit` requests per `periodMs` (whole seconds). */
export function keyRateLimitHook(limiter: RateLimiter, limit: number, periodMs: number): onRequestHookHandler {
  const window = Math.ceil(periodMs / 1000);
  const policy = `"${KEY_POLICY}";q=${limit};w=${window}`;
  return async (request, reply) => {
    const d = await limiter.consume(actorOf(request.principal), limit, periodMs);
    if (d.allowed) {
      if (!d.unchecked) {
        reply.header('ratelimit-policy', policy);
        reply.header('ratelimit', `"${KEY_POLICY}";r=${d.remaining};t=${Math.ceil(d.resetMs / 1000)}`);
      }
      return;
    }
    const seconds = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
    const headers: Record<string, string> = { 'retry-after': String(seconds) };
    if (!d.unchecked) {
      headers['ratelimit-policy'] = policy;
      headers.ratelimit = `"${KEY_POLICY}";r=0;t=${seconds}`;
    }
    const detail = d.unchecked
      ? `The rate limit could not be checked; retry in ${seconds}s`
      : `This API key may make ${limit} requests per ${window}s; retry in ${seconds}s`;
    throw new Problem('rate_limited', detail, { headers });
  };
}

/**
 * The per-key limit's onRequest hook for the /v1 scope `api` (to run after authentication), if
 * HERALD_KEY_RATE_LIMIT is set. Uses `limiter` when given (the deployment's shared one; its owner
 * closes it); otherwise creates one from the configuration and closes it when `api` closes.
 */
export function keyRateLimit(api: Api, services: Services, limiter?: RateLimiter): onRequestHookHandler | undefined {
  const setting = services.config.keyRateLimit;
  if (!setting) return undefined;
  let use = limiter;
  if (!use) {
    const own = createRateLimiter(services.config, { log: services.log, metrics: services.metrics });
    api.addHook('onClose', async () => own.close());
    use = own;
  }
  return keyRateLimitHook(use, setting.limit, setting.periodMs);
}
