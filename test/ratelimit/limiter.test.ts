// The rate limiters. One behavioural suite runs against the in-process limiter and the Redis one
// (driven at the caller's time, so it is deterministic); random sequences check that the two
// decide identically; then each on its own: the in-process limiter's bounded memory and
// properties of the rule; the Redis limiter on the server's clock (refill, idle keys vanishing),
// concurrency from two clients (two nodes), and Redis cut or blackholed (fail-open, no hang;
// fail-closed when asked).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { Decision, RateLimiter } from '../../src/ratelimit/limiter.ts';
import { MemoryRateLimiter } from '../../src/ratelimit/memory.ts';
import { RedisRateLimiter } from '../../src/ratelimit/redis.ts';
import { createRateLimiter } from '../../src/ratelimit/index.ts';
import { waitFor } from '../helpers/herald.ts';
import { ensureRedis, redisTarget, TEST_REDIS_URL } from '../helpers/redis.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

const quiet = pino({ level: process.env.HERALD_TEST_LOG ?? 'silent' });
const T0 = 1_700_000_000_000;
const DAY = 86_400_000;

function uniquePrefix(): string {
  return `herald-test-rl-${randomBytes(5).toString('hex')}:`;
}
const newKey = () => `k-${randomBytes(6).toString('hex')}`;

function proxiedRedisUrl(proxy: TcpProxy): string {
  const u = new URL(TEST_REDIS_URL);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.href;
}

async function openRedis(opts: Partial<ConstructorParameters<typeof RedisRateLimiter>[1]> = {}, url = TEST_REDIS_URL): Promise<RedisRateLimiter> {
  const rl = new RedisRateLimiter(url, { log: quiet, prefix: uniquePrefix(), ...opts });
  await waitFor(() => rl.connected, 10_000, 'the rate limiter to connect to Redis');
  return rl;
}

const ok = (remaining: number, resetMs: number, limit: number): Decision => ({ allowed: true, remaining, resetMs, retryAfterMs: 0, limit });
const no = (remaining: number, resetMs: number, retryAfterMs: number, limit: number): Decision => ({ allowed: false, remaining, resetMs, retryAfterMs, limit });

/** The behavioural suite, at caller time: `open` gives a fresh limiter honouring `now`. */
function behaviour(name: string, open: () => Promise<RateLimiter>): void {
  describe(`${name} limiter: decisions`, () => {
    let rl: RateLimiter;
    before(async () => {
      rl = await open();
    });
    after(() => rl?.close());

    it('grants exactly the limit, then refuses with the wait until one token is back, taking nothing', async () => {
      const key = newKey();
      for (let i = 0; i < 5; i++) assert.deepEqual(await rl.consume(key, 5, 1000, 1, T0), ok(4 - i, (i + 1) * 200, 5));
      assert.deepEqual(await rl.consume(key, 5, 1000, 1, T0), no(0, 1000, 200, 5));
      // 199 ms regain 0.995 tokens: still refused, 1 ms to go; a refusal took nothing.
      assert.deepEqual(await rl.consume(key, 5, 1000, 1, T0 + 199), no(0, 801, 1, 5));
      assert.deepEqual(await rl.consume(key, 5, 1000, 1, T0 + 200), ok(0, 1000, 5));
    });

    it('refills continuously, never beyond the limit', async () => {
      const key = newKey();
      assert.deepEqual(await rl.consume(key, 10, 1000, 10, T0), ok(0, 1000, 10));
      assert.deepEqual(await rl.peek(key, 10, 1000, 1, T0 + 350), ok(3, 650, 10));
      assert.deepEqual(await rl.consume(key, 10, 1000, 4, T0 + 350), no(3, 650, 50, 10));
      assert.deepEqual(await rl.consume(key, 10, 1000, 3, T0 + 350), ok(0, 950, 10));
      // Long idle: full, not more.
      assert.deepEqual(await rl.peek(key, 10, 1000, 1, T0 + 60_000), ok(10, 0, 10));
      assert.deepEqual(await rl.consume(key, 10, 1000, 10, T0 + 60_000), ok(0, 1000, 10));
      assert.equal((await rl.consume(key, 10, 1000, 1, T0 + 60_000)).allowed, false);
    });

    it('is exact at rates that are not whole milliseconds per token (3 per second)', async () => {
      const key = newKey();
      assert.deepEqual(await rl.consume(key, 3, 1000, 3, T0), ok(0, 1000, 3));
      assert.deepEqual(await rl.consume(key, 3, 1000, 1, T0 + 333), no(0, 667, 1, 3)); // 0.999 tokens
      assert.deepEqual(await rl.consume(key, 3, 1000, 1, T0 + 334), ok(0, 1000, 3)); // 1.002 tokens, 0.002 left
      assert.deepEqual(await rl.peek(key, 3, 1000, 1, T0 + 667), ok(1, 667, 3)); // 1.001
    });

    it('peek and cost 0 take nothing', async () => {
      const key = newKey();
      assert.deepEqual(await rl.consume(key, 4, 1000, 3, T0), ok(1, 750, 4));
      assert.deepEqual(await rl.peek(key, 4, 1000, 1, T0), ok(1, 750, 4));
      assert.deepEqual(await rl.peek(key, 4, 1000, 2, T0), no(1, 750, 250, 4));
      assert.deepEqual(await rl.consume(key, 4, 1000, 0, T0), ok(1, 750, 4));
      assert.deepEqual(await rl.consume(key, 4, 1000, 1, T0), ok(0, 1000, 4));
    });

    it('consumeMany takes from every bucket or from none', async () => {
      const channel = { key: newKey(), limit: 2, periodMs: 1000 };
      const kind = { key: newKey(), limit: 5, periodMs: 1000 };
      for (let i = 0; i < 2; i++) {
        const d = await rl.consumeMany([channel, kind], 1, T0);
        assert.equal(d.allowed, true);
        assert.deepEqual(d.decisions, [ok(1 - i, (i + 1) * 500, 2), ok(4 - i, (i + 1) * 200, 5)]);
      }
      const refused = await rl.consumeMany([channel, kind], 1, T0);
      assert.equal(refused.allowed, false);
      assert.equal(refused.retryAfterMs, 500);
      // The kind's bucket had a token but gave none.
      assert.deepEqual(refused.decisions, [no(0, 1000, 500, 2), ok(3, 400, 5)]);
      for (let i = 0; i < 3; i++) assert.equal((await rl.consume(kind.key, 5, 1000, 1, T0)).allowed, true);
      assert.equal((await rl.consume(kind.key, 5, 1000, 1, T0)).allowed, false);
      // Refused on both: the longest wait.
      const both = await rl.consumeMany([channel, kind], 2, T0 + 100);
      assert.equal(both.allowed, false);
      assert.equal(both.retryAfterMs, 900);
      assert.deepEqual(await rl.consumeMany([], 1, T0), { allowed: true, retryAfterMs: 0, decisions: [] });
    });

    it('rescales a bucket whose period changed to the same tokens; a clock going back regains nothing', async () => {
      const key = newKey();
      await rl.consume(key, 4, 1000, 2, T0);
      assert.deepEqual(await rl.peek(key, 4, 2000, 1, T0), ok(2, 1000, 4));
      const back = newKey();
      await rl.consume(back, 2, 1000, 2, T0 + 5000);
      assert.deepEqual(await rl.consume(back, 2, 1000, 1, T0), no(0, 1000, 500, 2));
      assert.equal((await rl.consume(back, 2, 1000, 1, T0 + 5499)).allowed, false);
      assert.equal((await rl.consume(back, 2, 1000, 1, T0 + 5500)).allowed, true);
    });

    it('refuses arguments it cannot decide exactly, before asking anything', async () => {
      const key = newKey();
      await assert.rejects(rl.consume(key, 0, 1000), RangeError);
      await assert.rejects(rl.consume(key, 1.5, 1000), RangeError);
      await assert.rejects(rl.consume(key, 5, 0), RangeError);
      await assert.rejects(rl.consume(key, 5, 10.5), RangeError);
      await assert.rejects(rl.consume(key, 2 ** 30, 2 ** 30), RangeError);
      await assert.rejects(rl.consume(key, 5, 1000, 6), RangeError);
      await assert.rejects(rl.consume(key, 5, 1000, -1), RangeError);
      await assert.rejects(rl.consume(key, 5, 1000, 1, -5), RangeError);
      await assert.rejects(
        rl.consumeMany([
          { key, limit: 1, periodMs: 1000 },
          { key, limit: 1, periodMs: 1000 },
        ]),
        RangeError,
      );
    });

    it('consumeMany is atomic under concurrency: 300 concurrent on limits 50 and 100 grant exactly 50 from each', async () => {
      const a = { key: newKey(), limit: 50, periodMs: DAY };
      const b = { key: newKey(), limit: 100, periodMs: DAY };
      const results = await Promise.all(Array.from({ length: 300 }, () => rl.consumeMany([a, b], 1, T0)));
      assert.equal(results.filter((r) => r.allowed).length, 50);
      assert.equal((await rl.peek(b.key, 100, DAY, 1, T0)).remaining, 50);
    });
  });
}

behaviour('in-process', async () => new MemoryRateLimiter());
behaviour('Redis', async () => {
  await ensureRedis();
  return openRedis({ useCallerTime: true });
});

describe('in-process and Redis limiters agree', () => {
  let redis: RedisRateLimiter;
  before(async () => {
    await ensureRedis();
    redis = await openRedis({ useCallerTime: true });
  });
  after(() => redis?.close());

  it('property: any sequence of consume, consumeMany and peek gets identical decisions from both', async () => {
    const op = fc.record({
      dt: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 3000 })),
      which: fc.subarray([0, 1, 2], { minLength: 1 }),
      cost: fc.integer({ min: 0, max: 3 }),
      kind: fc.constantFrom('consume', 'peek'),
      period: fc.constantFrom(0, 1), // index into each bucket's two periods: a period change now and then
    });
    const buckets = fc.tuple(
      ...[0, 1, 2].map(() => fc.record({ limit: fc.integer({ min: 3, max: 7 }), periods: fc.tuple(fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 1, max: 2000 })) })),
    );
    await fc.assert(
      fc.asyncProperty(buckets, fc.array(op, { minLength: 1, maxLength: 25 }), async (bs, ops) => {
        const memory = new MemoryRateLimiter();
        const keys = bs.map(() => newKey());
        let now = T0;
        try {
          for (const o of ops) {
            now += o.dt;
            const specs = o.which.map((i) => ({ key: keys[i]!, limit: bs[i]!.limit, periodMs: bs[i]!.periods[o.period]! }));
            if (o.kind === 'peek') {
              const s = specs[0]!;
              assert.deepEqual(await redis.peek(s.key, s.limit, s.periodMs, o.cost, now), await memory.peek(s.key, s.limit, s.periodMs, o.cost, now));
            } else {
              assert.deepEqual(await redis.consumeMany(specs, o.cost, now), await memory.consumeMany(specs, o.cost, now));
            }
          }
        } finally {
          await memory.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('in-process limiter', () => {
  it('1000 concurrent consumes of a limit of 100 grant exactly 100', async () => {
    const rl = new MemoryRateLimiter();
    const key = newKey();
    const results = await Promise.all(Array.from({ length: 1000 }, () => rl.consume(key, 100, DAY, 1, T0)));
    assert.equal(results.filter((d) => d.allowed).length, 100);
    await rl.close();
  });

  it('holds only buckets that are not full: dropped once refilled, and the least recently changed beyond maxKeys', async () => {
    const rl = new MemoryRateLimiter({ maxKeys: 3 });
    for (const k of ['a', 'b', 'c']) await rl.consume(k, 5, 1000, 1, T0);
    assert.equal(rl.size, 3);
    rl.sweep(T0 + 199);
    assert.equal(rl.size, 3);
    rl.sweep(T0 + 200);
    assert.equal(rl.size, 0);
    // Dropped means full: the same decision as a bucket never seen.
    assert.deepEqual(await rl.consume('a', 5, 1000, 1, T0 + 200), ok(4, 200, 5));

    for (const k of ['b', 'c', 'd']) await rl.consume(k, 5, 1000, 5, T0 + 300);
    assert.equal(rl.size, 3);
    assert.equal((await rl.peek('a', 5, 1000, 1, T0 + 300)).remaining, 5, 'a, least recently changed, was evicted');
    assert.equal((await rl.peek('b', 5, 1000, 1, T0 + 300)).remaining, 0);
    await rl.close();
  });

  it('property: over any span, grants never exceed the limit plus what the span refills', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 5000 }),
        fc.array(fc.record({ dt: fc.integer({ min: 0, max: 400 }), cost: fc.integer({ min: 0, max: 20 }) }), { minLength: 1, maxLength: 60 }),
        async (limit, periodMs, steps) => {
          const rl = new MemoryRateLimiter();
          const granted: { at: number; cost: number }[] = [];
          let now = T0;
          for (const s of steps) {
            now += s.dt;
            const cost = Math.min(s.cost, limit);
            const d = await rl.consume('k', limit, periodMs, cost, now);
            if (d.allowed) granted.push({ at: now, cost });
            else {
              // Waiting exactly retryAfterMs is enough, and not a millisecond less.
              assert.equal((await rl.peek('k', limit, periodMs, cost, now + d.retryAfterMs)).allowed, true);
              assert.equal((await rl.peek('k', limit, periodMs, cost, now + d.retryAfterMs - 1)).allowed, false);
            }
            assert.ok(d.remaining >= 0 && d.remaining <= limit && d.resetMs >= 0 && d.resetMs <= periodMs);
          }
          for (let i = 0; i < granted.length; i++) {
            let sum = 0;
            for (let j = i; j < granted.length; j++) {
              sum += granted[j]!.cost;
              assert.ok(sum <= limit + Math.floor(((granted[j]!.at - granted[i]!.at) * limit) / periodMs), 'more granted than the bucket allows');
            }
          }
          await rl.close();
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('Redis limiter on the server clock', () => {
  let a: RedisRateLimiter;
  let b: RedisRateLimiter;
  let raw: Redis;
  const prefix = uniquePrefix();

  before(async () => {
    await ensureRedis();
    a = await openRedis({ prefix });
    b = await openRedis({ prefix });
    raw = new Redis(TEST_REDIS_URL, { lazyConnect: true });
    await raw.connect();
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    raw?.disconnect();
  });

  it('refills on the server clock, gives its buckets a TTL, and drops them once full', async () => {
    const key = newKey();
    assert.equal((await a.consume(key, 2, 3000, 2)).allowed, true);
    const pttl = await raw.pttl(prefix + key);
    assert.ok(pttl > 0 && pttl <= 3000, `TTL ${pttl} ms: the time until the bucket is full`);
    const refused = await a.consume(key, 2, 3000);
    assert.equal(refused.allowed, false);
    assert.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= 1500, `retryAfterMs ${refused.retryAfterMs}`);
    await waitFor(async () => (await a.consume(key, 2, 3000)).allowed, 10_000, 'a token to come back');
    await waitFor(async () => (await raw.exists(prefix + key)) === 0, 10_000, 'the full bucket to vanish');
    assert.deepEqual(await a.peek(key, 2, 3000), ok(2, 0, 2));
  });

  it('ignores the caller time: nodes with skewed clocks share one bucket', async () => {
    const key = newKey();
    assert.equal((await a.consume(key, 1, DAY, 1, Date.now() + DAY * 3)).allowed, true);
    assert.equal((await b.consume(key, 1, DAY, 1, Date.now() - DAY * 3)).allowed, false);
  });

  it('two clients (two nodes), 1000 concurrent consumes of a limit of 100: exactly 100 granted', async () => {
    const key = newKey();
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => (i % 2 ? a : b).consume(key, 100, DAY)));
    assert.equal(results.filter((d) => d.allowed).length, 100);
    assert.ok(results.every((d) => !d.unchecked));
  });

  it('consumeMany from two clients is all or nothing across keys', async () => {
    const x = { key: newKey(), limit: 30, periodMs: DAY };
    const y = { key: newKey(), limit: 80, periodMs: DAY };
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).consumeMany([x, y])));
    assert.equal(results.filter((d) => d.allowed).length, 30);
    assert.equal((await a.peek(y.key, 80, DAY)).remaining, 50);
  });

  it('createRateLimiter picks Redis with REDIS_URL, in-process without', async () => {
    const withRedis = createRateLimiter({ redisUrl: new URL(TEST_REDIS_URL) }, { log: quiet });
    const without = createRateLimiter({ redisUrl: undefined }, { log: quiet });
    assert.equal(withRedis.kind, 'redis');
    assert.equal(without.kind, 'memory');
    await Promise.all([withRedis.close(), without.close()]);
  });
});

describe('Redis limiter when Redis is away', () => {
  let proxy: TcpProxy;
  const lines: { level: number; msg: string; reason?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });

  before(async () => {
    await ensureRedis();
    proxy = await startTcpProxy(redisTarget());
  });
  after(() => proxy?.close());

  const unchecked = async (registry: Registry) => {
    const m = await registry.getSingleMetric('herald_ratelimit_unchecked_total')!.get();
    return Object.fromEntries(m.values.map((v) => [`${v.labels.reason}/${v.labels.outcome}`, v.value]));
  };

  it('fails open at once when cut and within the command timeout when blackholed, warns once, and recovers', async () => {
    const registry = new Registry();
    // A command timeout long enough that "at once" (well under it) and "at the timeout" stay apart
    // on a busy machine without tight bounds on wall time.
    const COMMAND_TIMEOUT_MS = 2_000;
    const rl = await openRedis({ log, metrics: { registry }, commandTimeoutMs: COMMAND_TIMEOUT_MS, cooldownMs: 60_000 }, proxiedRedisUrl(proxy));
    try {
      const key = newKey();
      assert.deepEqual(await rl.consume(key, 1, DAY), ok(0, DAY, 1));
      assert.equal((await rl.consume(key, 1, DAY)).allowed, false);

      await proxy.cut();
      await waitFor(() => !rl.connected, 5_000, 'the limiter to notice the cut');
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        const d = await rl.consume(key, 1, DAY);
        assert.ok(Date.now() - started < COMMAND_TIMEOUT_MS / 2, 'no waiting on a dead connection');
        assert.deepEqual(d, { allowed: true, remaining: 0, resetMs: 0, retryAfterMs: 0, limit: 1, unchecked: true });
      }
      const many = await rl.consumeMany([{ key, limit: 1, periodMs: DAY }]);
      assert.equal(many.allowed, true);
      assert.equal(many.unchecked, true);
      assert.equal((await unchecked(registry))['disconnected/allowed'], 4);
      assert.equal(lines.filter((l) => l.level === 40).length, 1, 'one warning per outage');

      await proxy.restore();
      // Back: the bucket spent before the cut still refuses (the unchecked decisions took nothing).
      await waitFor(async () => !(await rl.consume(key, 1, DAY)).unchecked, 10_000, 'decisions checked again');
      const after = await rl.consume(key, 1, DAY);
      assert.equal(after.allowed, false);
      assert.equal(after.unchecked, undefined);
      assert.ok(after.retryAfterMs > DAY - 60_000);
      assert.ok(lines.some((l) => l.level === 30 && /answers again/.test(l.msg)));

      proxy.blackhole();
      const started = Date.now();
      const d = await rl.consume(key, 1, DAY);
      const took = Date.now() - started;
      assert.equal(d.unchecked, true);
      assert.equal(d.allowed, true);
      assert.ok(took >= COMMAND_TIMEOUT_MS - 50 && took < 30_000, `answered after ${took} ms: the command timeout, not a hang`);
      // Within the cooldown, Redis is not asked: no second timeout.
      const again = Date.now();
      assert.equal((await rl.consume(key, 1, DAY)).unchecked, true);
      assert.ok(Date.now() - again < COMMAND_TIMEOUT_MS / 2, 'no second command timeout');
      assert.equal((await unchecked(registry))['timeout/allowed'], 2);
      assert.equal(lines.filter((l) => l.level === 40).length, 2, 'the second outage warned once');
    } finally {
      await rl.close();
      await proxy.restore();
    }
  });

  it('fails closed when configured so: refused, with the cooldown as the wait', async () => {
    const registry = new Registry();
    const rl = await openRedis({ log: quiet, metrics: { registry }, failMode: 'closed', cooldownMs: 1_500 }, proxiedRedisUrl(proxy));
    try {
      await proxy.cut();
      await waitFor(() => !rl.connected, 5_000, 'the limiter to notice the cut');
      assert.deepEqual(await rl.consume(newKey(), 10, 1000), { allowed: false, remaining: 0, resetMs: 0, retryAfterMs: 1_500, limit: 10, unchecked: true });
      assert.equal((await unchecked(registry))['disconnected/refused'], 1);
    } finally {
      await rl.close();
      await proxy.restore();
    }
  });

  it('after close, decides by the failure rule without asking', async () => {
    const rl = await openRedis({}, TEST_REDIS_URL);
    await rl.close();
    assert.equal((await rl.consume(newKey(), 1, 1000)).unchecked, true);
  });
});
