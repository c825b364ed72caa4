import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { Keyspace } from '@tollgate/policy';
import { testEnv, testKeyspace, waitFor } from '../../../test/harness';
import {
  createLimitKeys,
  createRedisLimiter,
  LimitInputError,
  type DecideRequest,
  type Decision,
  type RateAlgorithm,
  type RedisLimiter,
} from './index';
import { decided } from './test-support';

const ALGORITHMS: RateAlgorithm[] = ['fixed_window', 'sliding_window', 'gcra', 'token_bucket'];
const DAY = 86_400_000;

/** How the gateway must configure its limiter client: fail fast, never queue while offline. */
function limiterClient(url = testEnv().redisUrl, extra: object = {}): Redis {
  return new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, enableAutoPipelining: true, ...extra });
}
async function connected(r: Redis) {
  await waitFor(() => r.status === 'ready', { what: 'redis ready' });
  return r;
}

let ks: Keyspace;
let a: Redis;
let b: Redis;
let limA: RedisLimiter;
let limB: RedisLimiter;
let n = 0;
/** A fresh subject per test so counters never leak between tests. */
const keysFor = () => createLimitKeys(ks, { keyId: `key_${++n}`, subscriptionId: `sub_${n}` });

beforeAll(async () => {
  ks = testKeyspace('rl');
  // Two connections stand for two gateway processes sharing one Redis.
  a = await connected(limiterClient());
  b = await connected(limiterClient());
  limA = createRedisLimiter({ redis: a, timeoutMs: 2000 });
  limB = createRedisLimiter({ redis: b, timeoutMs: 2000 });
});
afterAll(async () => {
  const keys = await a.keys(`${ks.prefix}:*`);
  if (keys.length) await a.del(...keys);
  a.disconnect();
  b.disconnect();
});

describe('each algorithm', () => {
  for (const algorithm of ALGORITHMS) {
    it(`${algorithm}: lets exactly the limit through in a window, then refuses with Retry-After`, async () => {
      const k = keysFor();
      const req: DecideRequest = { rates: [{ name: 'plan', key: k.keyRate(), limit: 5, windowSeconds: 60, algorithm }] };
      const seen: boolean[] = [];
      const remaining: number[] = [];
      for (let i = 0; i < 8; i++) {
        const d = decided(await limA.decide(req));
        seen.push(d.allowed);
        remaining.push(d.rate!.remaining);
        if (!d.allowed) {
          expect(d.reason).toBe('rate');
          expect(d.limitName).toBe('plan');
          expect(d.retryAfterSeconds).toBeGreaterThanOrEqual(1);
          // The sliding estimate weights the previous window as if spread evenly, so a burst
          // at a window's start waits up to two windows; the others wait at most one.
          expect(d.retryAfterSeconds).toBeLessThanOrEqual(algorithm === 'sliding_window' ? 120 : 60);
          expect(d.rate!.resetSeconds).toBeGreaterThanOrEqual(1);
        }
      }
      expect(seen).toEqual([true, true, true, true, true, false, false, false]);
      expect(remaining).toEqual([4, 3, 2, 1, 0, 0, 0, 0]);
    });

    it(`${algorithm}: two gateway connections under concurrency never exceed the limit`, async () => {
      const k = keysFor();
      const req: DecideRequest = { rates: [{ name: 'plan', key: k.keyRate(), limit: 37, windowSeconds: 60, algorithm }] };
      const calls = Array.from({ length: 120 }, (_, i) => (i % 2 ? limA : limB).decide(req));
      const outcomes = (await Promise.all(calls)).map(decided);
      expect(outcomes.filter((d) => d.allowed)).toHaveLength(37);
    });
  }

  it('a short window refills: the request refused now is allowed after Retry-After', async () => {
    const k = keysFor();
    // One request per second after a burst of 2: the third is refused unless a second passed.
    const req: DecideRequest = { rates: [{ name: 'plan', key: k.keyRate(), limit: 2, windowSeconds: 2, algorithm: 'gcra' }] };
    expect(decided(await limA.decide(req)).allowed).toBe(true);
    expect(decided(await limA.decide(req)).allowed).toBe(true);
    const refused = decided(await limA.decide(req));
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterSeconds).toBe(1);
    await waitFor(async () => decided(await limA.decide(req)).allowed, { timeoutMs: 3000, intervalMs: 50, what: 'gcra refill' });
  });

  it('a limit whose algorithm changed starts fresh on its key instead of failing', async () => {
    const k = keysFor();
    let last: Decision | null = null;
    for (const algorithm of [...ALGORITHMS, ...ALGORITHMS]) {
      last = decided(await limA.decide({ rates: [{ name: 'plan', key: k.keyRate(), limit: 3, windowSeconds: 60, algorithm }] }));
      expect(last.allowed).toBe(true);
    }
    expect(last!.rate!.remaining).toBe(2);
  });

  it('uses the Redis clock for every decision', async () => {
    const k = keysFor();
    const [sec] = await a.time();
    const d = decided(
      await limA.decide({ rates: [{ name: 'plan', key: k.keyRate(), limit: 1, windowSeconds: 1, algorithm: 'fixed_window' }] }),
    );
    expect(Math.abs(d.now - Number(sec) * 1000)).toBeLessThan(5000);
    expect(d.source).toBe('redis');
  });
});

describe('quota', () => {
  it('a hard cap refuses at the limit, naming the quota and its reset at the period end', async () => {
    const k = keysFor();
    const periodStart = Date.now() - DAY;
    const periodEnd = Date.now() + 3 * DAY;
    const req: DecideRequest = {
      rates: [{ name: 'plan', key: k.keyRate(), limit: 100, windowSeconds: 60, algorithm: 'sliding_window' }],
      quota: { key: k.quota(periodStart), limit: 3, mode: 'hard_cap', periodStart, periodEnd },
    };
    const used: number[] = [];
    for (let i = 0; i < 3; i++) {
      const d = decided(await limA.decide(req));
      expect(d.allowed).toBe(true);
      used.push(d.quota!.used);
    }
    expect(used).toEqual([1, 2, 3]);
    const d = decided(await limB.decide(req));
    expect(d).toMatchObject({ allowed: false, reason: 'quota', limitName: 'quota', overage: false });
    expect(d.quota).toMatchObject({ limit: 3, used: 3, remaining: 0, resetAt: periodEnd, windowSeconds: 4 * 86_400 });
    expect(Math.abs(d.retryAfterSeconds! - 3 * 86_400)).toBeLessThan(10);
    // The counter lives until the period end (plus a grace hour), so the next period starts at zero.
    const pttl = await a.pttl(k.quota(periodStart));
    expect(pttl).toBeGreaterThan(3 * DAY);
    expect(pttl).toBeLessThanOrEqual(3 * DAY + 3_600_000);
  });

  it('an overage plan serves past the included quota and flags the request', async () => {
    const k = keysFor();
    const req: DecideRequest = { rates: [], quota: { key: k.quota(0), limit: 2, mode: 'overage', periodEnd: Date.now() + DAY } };
    const flags = [];
    for (let i = 0; i < 4; i++) {
      const d = decided(await limA.decide(req));
      expect(d.allowed).toBe(true);
      flags.push(d.overage);
    }
    expect(flags).toEqual([false, false, true, true]);
    const last = decided(await limA.decide(req));
    expect(last.quota).toMatchObject({ used: 5, remaining: 0 });
  });

  it('a zero quota on a hard cap refuses the first request', async () => {
    const k = keysFor();
    const d = decided(
      await limA.decide({ rates: [], quota: { key: k.quota(0), limit: 0, mode: 'hard_cap', periodEnd: Date.now() + DAY } }),
    );
    expect(d).toMatchObject({ allowed: false, reason: 'quota' });
  });
});

describe('all or nothing', () => {
  it('a refusing route limit consumes neither the plan rate nor the quota', async () => {
    const k = keysFor();
    const quota = { key: k.quota(0), limit: 100, mode: 'hard_cap' as const, periodEnd: Date.now() + DAY };
    const plan = { name: 'plan', key: k.keyRate(), limit: 10, windowSeconds: 60, algorithm: 'token_bucket' as const };
    const route = { name: 'route', key: k.routeRate('rte_1'), limit: 2, windowSeconds: 60, algorithm: 'fixed_window' as const };
    const req: DecideRequest = { rates: [plan, route], quota };
    const results = [];
    for (let i = 0; i < 5; i++) results.push(decided(await limA.decide(req)));
    expect(results.map((d) => d.allowed)).toEqual([true, true, false, false, false]);
    expect(results[2]).toMatchObject({ reason: 'rate', limitName: 'route' });
    expect(results[2]!.rate!.name).toBe('route');
    // Only the two allowed requests were counted anywhere.
    const after = decided(await limA.decide({ rates: [plan], quota }));
    expect(after.rates[0]!.remaining).toBe(7);
    expect(after.quota!.used).toBe(3);
  });

  it('a refusing quota consumes no rate', async () => {
    const k = keysFor();
    const plan = { name: 'plan', key: k.keyRate(), limit: 5, windowSeconds: 60, algorithm: 'gcra' as const };
    const req: DecideRequest = { rates: [plan], quota: { key: k.quota(0), limit: 1, mode: 'hard_cap', periodEnd: Date.now() + DAY } };
    expect(decided(await limA.decide(req)).allowed).toBe(true);
    for (let i = 0; i < 3; i++) expect(decided(await limA.decide(req)).reason).toBe('quota');
    expect(decided(await limA.decide({ rates: [plan] })).rate!.remaining).toBe(3);
  });

  it('the most restrictive rate is reported when every limit allows', async () => {
    const k = keysFor();
    const d = decided(
      await limA.decide({
        rates: [
          { name: 'plan', key: k.keyRate(), limit: 100, windowSeconds: 60, algorithm: 'sliding_window' },
          { name: 'route', key: k.routeRate('r'), limit: 3, windowSeconds: 1, algorithm: 'fixed_window' },
        ],
      }),
    );
    expect(d.rate).toMatchObject({ name: 'route', remaining: 2 });
  });

  it('cost consumes several units at once and is refused whole when it does not fit', async () => {
    const k = keysFor();
    const rate = { name: 'plan', key: k.keyRate(), limit: 10, windowSeconds: 60, algorithm: 'sliding_window' as const };
    expect(decided(await limA.decide({ rates: [rate], cost: 7 })).rate!.remaining).toBe(3);
    expect(decided(await limA.decide({ rates: [rate], cost: 4 })).allowed).toBe(false);
    expect(decided(await limA.decide({ rates: [rate], cost: 3 })).rate!.remaining).toBe(0);
  });
});

describe('batching: decisions asked for in one event-loop turn share one script call', () => {
  it('eight concurrent requests on a limit of five: one call, the first five allowed in order', async () => {
    const lim = createRedisLimiter({ redis: a, timeoutMs: 2000 });
    const k = keysFor();
    const req: DecideRequest = {
      rates: [{ name: 'plan', key: k.keyRate(), limit: 5, windowSeconds: 60, algorithm: 'sliding_window' }],
      quota: { key: k.quota(Date.now() - DAY), limit: 100, mode: 'hard_cap', periodEnd: Date.now() + DAY },
    };
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => lim.decide(req)));
    expect(lim.stats).toEqual({ calls: 1, decisions: 8 });
    const ds = outcomes.map(decided);
    expect(ds.map((d) => d.allowed)).toEqual([true, true, true, true, true, false, false, false]);
    expect(ds.map((d) => d.rate!.remaining)).toEqual([4, 3, 2, 1, 0, 0, 0, 0]);
    // Each decision sees the ones before it: the quota counts only the allowed five.
    expect(ds.map((d) => d.quota!.used)).toEqual([1, 2, 3, 4, 5, 5, 5, 5]);
    expect(new Set(ds.map((d) => d.now)).size).toBe(1);
  });

  it('decisions of different subjects in one call stay independent, each with its own reply layout', async () => {
    const lim = createRedisLimiter({ redis: a, timeoutMs: 2000 });
    const k1 = keysFor();
    const k2 = keysFor();
    const r1: DecideRequest = { rates: [{ name: 'plan', key: k1.keyRate(), limit: 1, windowSeconds: 60, algorithm: 'gcra' }] };
    const r2: DecideRequest = {
      rates: [
        { name: 'plan', key: k2.keyRate(), limit: 3, windowSeconds: 60, algorithm: 'token_bucket' },
        { name: 'route', key: k2.routeRate('rte_1'), limit: 2, windowSeconds: 60, algorithm: 'fixed_window' },
      ],
      quota: { key: k2.quota(0), limit: 1000, mode: 'overage', periodEnd: Date.now() + DAY },
    };
    const [x1, y1, x2, y2, y3] = (await Promise.all([lim.decide(r1), lim.decide(r2), lim.decide(r1), lim.decide(r2), lim.decide(r2)])).map(
      decided,
    );
    expect(lim.stats.calls).toBe(1);
    expect([x1!.allowed, x2!.allowed]).toEqual([true, false]);
    expect(x2!.limitName).toBe('plan');
    expect([y1!.allowed, y2!.allowed, y3!.allowed]).toEqual([true, true, false]);
    expect(y3!.limitName).toBe('route');
    expect(y2!.quota!.used).toBe(2);
    expect(y2!.rates.map((r) => r.remaining)).toEqual([1, 0]);
  });

  it('maxBatch splits a large turn into several calls without changing any answer', async () => {
    const lim = createRedisLimiter({ redis: a, timeoutMs: 2000, maxBatch: 4 });
    const k = keysFor();
    const req: DecideRequest = { rates: [{ name: 'plan', key: k.keyRate(), limit: 6, windowSeconds: 60, algorithm: 'fixed_window' }] };
    const ds = (await Promise.all(Array.from({ length: 10 }, () => lim.decide(req)))).map(decided);
    expect(lim.stats).toEqual({ calls: 3, decisions: 10 });
    expect(ds.filter((d) => d.allowed)).toHaveLength(6);
    expect(ds.slice(0, 6).every((d) => d.allowed)).toBe(true);
    expect(() => createRedisLimiter({ redis: a, maxBatch: 0 })).toThrow(RangeError);
    expect(() => createRedisLimiter({ redis: a, maxBatch: 1.5 })).toThrow(RangeError);
  });

  it('a key of the wrong type under one decision does not fail the others in its call', async () => {
    const lim = createRedisLimiter({ redis: a, timeoutMs: 2000 });
    const bad = keysFor();
    const good = keysFor();
    const badQuota = bad.quota(0);
    await a.hset(badQuota, 'x', '1'); // a hash where the quota counter (a string) belongs
    const [d1, d2] = await Promise.all([
      lim.decide({ rates: [], quota: { key: badQuota, limit: 10, mode: 'hard_cap', periodEnd: Date.now() + DAY } }),
      lim.decide({ rates: [{ name: 'plan', key: good.keyRate(), limit: 2, windowSeconds: 60, algorithm: 'sliding_window' }] }),
    ]);
    expect(lim.stats.calls).toBe(1);
    expect(decided(d1!).allowed).toBe(true);
    expect(decided(d1!).quota!.used).toBe(1);
    expect(decided(d2!).allowed).toBe(true);
    expect(await a.type(badQuota)).toBe('string');
  });

  it('counts past 14 digits come back exact (the reply is text)', async () => {
    const lim = createRedisLimiter({ redis: a, timeoutMs: 2000 });
    const k = keysFor();
    const quota = { key: k.quota(0), limit: 1_000_000_000_000_000, mode: 'hard_cap' as const, periodEnd: Date.now() + DAY };
    await a.set(quota.key, '999999999999990');
    const d = decided(await lim.decide({ rates: [], quota, cost: 7 }));
    expect(d.allowed).toBe(true);
    expect(d.quota!.used).toBe(999_999_999_999_997);
    expect(d.quota!.remaining).toBe(3);
  });

  it('limiter keys always carry an expiry: set when a window or a period starts, kept by later writes', async () => {
    const lim = createRedisLimiter({ redis: a, timeoutMs: 2000 });
    const k = keysFor();
    const periodEnd = Date.now() + 2 * DAY;
    const req: DecideRequest = {
      rates: [{ name: 'plan', key: k.keyRate(), limit: 100, windowSeconds: 60, algorithm: 'sliding_window' }],
      quota: { key: k.quota(0), limit: 100, mode: 'hard_cap', periodEnd },
    };
    for (let i = 0; i < 5; i++) expect(decided(await lim.decide(req)).allowed).toBe(true);
    // Two windows from the first write of this window: always beyond the end of the next one.
    const rateTtl = await a.pttl(k.keyRate());
    expect(rateTtl).toBeGreaterThan(60_000);
    expect(rateTtl).toBeLessThanOrEqual(120_000);
    const quotaTtl = await a.pttl(k.quota(0));
    expect(quotaTtl).toBeGreaterThan(2 * DAY);
    expect(quotaTtl).toBeLessThanOrEqual(2 * DAY + 3_600_000);
  });

  it('after SCRIPT FLUSH (a Redis restart or failover) decisions still come back, through EVAL', async () => {
    const lim = createRedisLimiter({ redis: a, timeoutMs: 2000 });
    const k = keysFor();
    const req: DecideRequest = { rates: [{ name: 'plan', key: k.keyRate(), limit: 3, windowSeconds: 60, algorithm: 'gcra' }] };
    expect(decided(await lim.decide(req)).allowed).toBe(true);
    await a.script('FLUSH');
    const ds = (await Promise.all([lim.decide(req), lim.decide(req), lim.decide(req)])).map(decided);
    expect(ds.map((d) => d.allowed)).toEqual([true, true, false]);
    expect(decided(await lim.decide(req)).allowed).toBe(false);
  });
});

describe('hostile input', () => {
  const base = () => {
    const k = keysFor();
    return { k, rate: { name: 'plan', key: k.keyRate(), limit: 5, windowSeconds: 60, algorithm: 'gcra' as const } };
  };
  const cases: [string, (b: ReturnType<typeof base>) => unknown][] = [
    ['limit 0', ({ rate }) => ({ rates: [{ ...rate, limit: 0 }] })],
    ['negative limit', ({ rate }) => ({ rates: [{ ...rate, limit: -1 }] })],
    ['NaN limit', ({ rate }) => ({ rates: [{ ...rate, limit: Number.NaN }] })],
    ['fractional limit', ({ rate }) => ({ rates: [{ ...rate, limit: 1.5 }] })],
    ['Infinity window', ({ rate }) => ({ rates: [{ ...rate, windowSeconds: Infinity }] })],
    ['huge window', ({ rate }) => ({ rates: [{ ...rate, windowSeconds: 10 ** 12 }] })],
    ['zero window', ({ rate }) => ({ rates: [{ ...rate, windowSeconds: 0 }] })],
    ['unknown algorithm', ({ rate }) => ({ rates: [{ ...rate, algorithm: 'leaky' }] })],
    ['a string limit', ({ rate }) => ({ rates: [{ ...rate, limit: '5' }] })],
    ['cost 0', ({ rate }) => ({ rates: [rate], cost: 0 })],
    ['NaN cost', ({ rate }) => ({ rates: [rate], cost: Number.NaN })],
    ['nothing to decide', () => ({ rates: [] })],
    ['not an object', () => null],
    ['keys in two hash tags', ({ rate }) => ({ rates: [rate, { ...rate, name: 'other', key: ks.rate('someone_else', 'x') }] })],
    ['a key without a hash tag', ({ rate }) => ({ rates: [rate, { ...rate, name: 'other', key: `${ks.prefix}:plain` }] })],
    ['duplicate names', ({ rate, k }) => ({ rates: [rate, { ...rate, key: k.routeRate('r') }] })],
    ['the reserved name quota', ({ rate }) => ({ rates: [{ ...rate, name: 'quota' }] })],
    [
      'quota period end in seconds',
      ({ k }) => ({ rates: [], quota: { key: k.quota(0), limit: 1, mode: 'hard_cap', periodEnd: Math.floor(Date.now() / 1000) } }),
    ],
    ['negative quota', ({ k }) => ({ rates: [], quota: { key: k.quota(0), limit: -1, mode: 'hard_cap', periodEnd: Date.now() + DAY } })],
    ['unknown quota mode', ({ k }) => ({ rates: [], quota: { key: k.quota(0), limit: 1, mode: 'soft', periodEnd: Date.now() + DAY } })],
    [
      'period start after its end',
      ({ k }) => ({
        rates: [],
        quota: { key: k.quota(0), limit: 1, mode: 'overage', periodStart: Date.now() + 2 * DAY, periodEnd: Date.now() + DAY },
      }),
    ],
    [
      'too many rates',
      ({ k }) => ({
        rates: Array.from({ length: 9 }, (_, i) => ({
          name: `r${i}`,
          key: k.rate(`r${i}`),
          limit: 1,
          windowSeconds: 1,
          algorithm: 'gcra',
        })),
      }),
    ],
  ];
  for (const [what, make] of cases) {
    it(`rejects ${what} with a LimitInputError and writes nothing`, async () => {
      const b0 = base();
      await expect(limA.decide(make(b0) as DecideRequest)).rejects.toBeInstanceOf(LimitInputError);
      expect(await a.exists(b0.rate.key, b0.k.quota(0))).toBe(0);
    });
  }
  it('the error names the offending field', async () => {
    const { rate } = base();
    await expect(limA.decide({ rates: [{ ...rate, limit: 0 }] })).rejects.toThrow(/rates\[0\]\.limit/);
  });
});

describe('Redis unavailable', () => {
  it('a Redis nobody listens on gives `unavailable` at once, never a throw', async () => {
    const dead = limiterClient('redis://127.0.0.1:1', { retryStrategy: () => 50 });
    dead.on('error', () => undefined);
    try {
      const lim = createRedisLimiter({ redis: dead, timeoutMs: 50 });
      const k = keysFor();
      const started = performance.now();
      const out = await lim.decide({ rates: [{ name: 'plan', key: k.keyRate(), limit: 5, windowSeconds: 60, algorithm: 'gcra' }] });
      expect(out.kind).toBe('unavailable');
      expect(performance.now() - started).toBeLessThan(1000);
    } finally {
      dead.disconnect();
    }
  });

  describe('a Redis that accepts connections but never answers', () => {
    let server: Server;
    let port: number;
    const sockets = new Set<Socket>();
    beforeAll(async () => {
      server = createServer((s) => {
        sockets.add(s);
        s.on('data', () => undefined);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as { port: number }).port;
    });
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    });

    it('gives `unavailable` with reason timeout after timeoutMs', async () => {
      // No ready check nor handshake, so the client believes it is connected and really sends the script.
      const mute = limiterClient(`redis://127.0.0.1:${port}`, { enableReadyCheck: false, disableClientInfo: true, protocol: 2 });
      try {
        await connected(mute);
        const lim = createRedisLimiter({ redis: mute, timeoutMs: 60 });
        const k = keysFor();
        const started = performance.now();
        const out = await lim.decide({ rates: [{ name: 'plan', key: k.keyRate(), limit: 5, windowSeconds: 60, algorithm: 'gcra' }] });
        const took = performance.now() - started;
        expect(out).toMatchObject({ kind: 'unavailable', reason: 'timeout' });
        expect(took).toBeGreaterThanOrEqual(55);
        expect(took).toBeLessThan(1000);
      } finally {
        mute.disconnect();
      }
    });
  });

  it('refuses a nonsensical timeout at construction', () => {
    expect(() => createRedisLimiter({ redis: a, timeoutMs: 0 })).toThrow(RangeError);
    expect(() => createRedisLimiter({ redis: a, timeoutMs: Number.NaN })).toThrow(RangeError);
  });
});
