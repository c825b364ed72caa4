import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { Keyspace } from '@tollgate/policy';
import { testEnv, testKeyspace, waitFor } from '../../../test/harness';
import {
  createLimitKeys,
  createRedisLimiter,
  createReservingLimiter,
  LimitInputError,
  type DecideRequest,
  type Decision,
  type LimitOutcome,
  type RedisLimiter,
  type ReservingLimiter,
} from './index';
import { decided } from './test-support';

const DAY_S = 86_400;

function limiterClient(): Redis {
  return new Redis(testEnv().redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
}

let ks: Keyspace;
let a: Redis;
let b: Redis;
let redisA: RedisLimiter;
let redisB: RedisLimiter;
let n = 0;
const keysFor = () => createLimitKeys(ks, { keyId: `rkey_${++n}`, subscriptionId: `rsub_${n}` });
const open: ReservingLimiter[] = [];
function reserving(limiter: RedisLimiter, extra: object = {}): ReservingLimiter {
  const r = createReservingLimiter({ limiter, ...extra });
  open.push(r);
  return r;
}

/** `workers` concurrent callers, each deciding one call after another, `calls` in all. */
async function drive(
  limiter: { decide(r: DecideRequest): Promise<LimitOutcome> },
  req: DecideRequest,
  calls: number,
  workers = 8,
): Promise<Decision[]> {
  const out: Decision[] = [];
  let left = calls;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (left > 0) {
        left--;
        out.push(decided(await limiter.decide(req)));
      }
    }),
  );
  return out;
}

/** A day-long sliding window and a quota, both far from their limits unless told otherwise. */
function dayRequest(
  k = keysFor(),
  { rate = 1_000_000, quota = 1_000_000, mode = 'hard_cap' as 'hard_cap' | 'overage' } = {},
): DecideRequest {
  const periodStart = Date.UTC(2026, 0, 1);
  return {
    rates: [{ name: 'plan', key: k.keyRate(), limit: rate, windowSeconds: DAY_S, algorithm: 'sliding_window' }],
    quota: { key: k.quota(periodStart), limit: quota, mode, periodStart, periodEnd: Date.UTC(2100, 0, 1) },
  };
}

/** Calls the rate's hash counts now: this bucket's, plus the previous one's if the day rolled during the test. */
async function rateCount(req: DecideRequest, firstNow: number): Promise<number> {
  const [w, c, p] = await a.hmget(req.rates[0]!.key, 'w', 'c', 'p');
  const first = Math.floor(firstNow / (DAY_S * 1000));
  return Number(w) === first ? Number(c) : Number(c) + Number(p);
}

beforeAll(async () => {
  ks = testKeyspace('rsv');
  a = limiterClient();
  b = limiterClient();
  await waitFor(() => a.status === 'ready' && b.status === 'ready', { what: 'redis ready' });
  redisA = createRedisLimiter({ redis: a, timeoutMs: 2000 });
  redisB = createRedisLimiter({ redis: b, timeoutMs: 2000 });
});
afterAll(async () => {
  await Promise.all(open.map((r) => r.close()));
  const keys = await a.keys(`${ks.prefix}:*`);
  if (keys.length) await a.del(...keys);
  a.disconnect();
  b.disconnect();
});

describe('a hot key', () => {
  it('is decided mostly from reservations, and every count in Redis is exact once they are given back', async () => {
    const req = dayRequest();
    const inner = createRedisLimiter({ redis: a, timeoutMs: 2000 });
    const lim = reserving(inner);
    const out = await drive(lim, req, 3000);
    await lim.close();
    expect(out.every((d) => d.allowed)).toBe(true);
    expect(lim.stats.granted).toBeGreaterThan(0);
    expect(lim.stats.fromReservations).toBeGreaterThan(1500);
    // Decisions sent to Redis: one per reservation plus the calls no reservation covered.
    expect(inner.stats.decisions).toBe(3000 - lim.stats.fromReservations + lim.stats.granted + lim.stats.refused);
    // One process: each call's quota count is its own, 1..3000, whichever way it was decided.
    expect(out.map((d) => d.quota!.used).sort((x, y) => x - y)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    expect(lim.stats.releaseFailed).toBe(0);
    expect(Number(await a.get(req.quota!.key))).toBe(3000);
    expect(await rateCount(req, out[0]!.now)).toBe(3000);
  });

  it('headers count down through a reservation as they would call by call', async () => {
    const req = dayRequest(keysFor(), { rate: 1_000_000, quota: 1_000_000 });
    const lim = reserving(redisA);
    const out = await drive(lim, req, 1000, 1);
    // One caller: every call sees one less remaining than the call before it.
    for (let i = 1; i < out.length; i++) {
      expect(out[i]!.rates[0]!.remaining).toBe(out[i - 1]!.rates[0]!.remaining - 1);
      expect(out[i]!.quota!.remaining).toBe(out[i - 1]!.quota!.remaining - 1);
    }
    expect(lim.stats.fromReservations).toBeGreaterThan(0);
    expect(out.at(-1)!.rate!.resetSeconds).toBeGreaterThan(0);
    expect(out.at(-1)!.rate!.resetSeconds).toBeLessThanOrEqual(DAY_S);
  });

  it('decideOrWait hands over a call covered by a reservation at once, and a promise for the rest', async () => {
    const req = dayRequest();
    const inner = createRedisLimiter({ redis: a, timeoutMs: 2000 });
    const lim = reserving(inner);
    let immediate = 0;
    let waited = 0;
    const out: Decision[] = [];
    for (let i = 0; i < 400; i++) {
      const o = lim.decideOrWait(req);
      if (o instanceof Promise) {
        waited++;
        out.push(decided(await o));
      } else {
        immediate++;
        out.push(decided(o));
      }
    }
    await lim.close();
    // Only calls taken from reservations come back without a promise (a call that waited for a
    // block on its way is taken from it too, later).
    expect(immediate).toBeLessThanOrEqual(lim.stats.fromReservations);
    expect(immediate).toBeGreaterThan(200);
    expect(waited).toBeGreaterThan(0);
    // Counted the same either way: one caller sees the quota go up by one per call.
    expect(out.map((d) => d.quota!.used)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    expect(Number(await a.get(req.quota!.key))).toBe(400);
  });

  it('gives unused calls back once it goes idle', async () => {
    const req = dayRequest();
    const lim = reserving(redisA, { idleMs: 30 });
    const out = await drive(lim, req, 600);
    await waitFor(() => lim.held() === 0 && lim.stats.released > 0, { what: 'idle reservation given back' });
    await waitFor(async () => Number(await a.get(req.quota!.key)) === 600, { what: 'quota back to the calls made' });
    expect(await rateCount(req, out[0]!.now)).toBe(600);
  });
});

describe('near a limit', () => {
  it('one process lets exactly the limit through, then refuses with Retry-After', async () => {
    const req = dayRequest(keysFor(), { rate: 2000 });
    const lim = reserving(redisA);
    const out = await drive(lim, req, 2600);
    expect(out.filter((d) => d.allowed)).toHaveLength(2000);
    const refused = out.filter((d) => !d.allowed);
    expect(refused.every((d) => d.reason === 'rate' && d.limitName === 'plan' && d.retryAfterSeconds! >= 1)).toBe(true);
    expect(lim.stats.granted).toBeGreaterThan(0);
    expect(lim.stats.refused).toBeGreaterThan(0);
  });

  it('two processes sharing Redis never let more than the limit through, and Redis counts exactly what they let through', async () => {
    const req = dayRequest(keysFor(), { rate: 1_000_000, quota: 3000 });
    const limA = reserving(redisA);
    const limB = reserving(redisB);
    const [outA, outB] = await Promise.all([drive(limA, req, 2500, 4), drive(limB, req, 2500, 4)]);
    const allowed = outA.filter((d) => d.allowed).length + outB.filter((d) => d.allowed).length;
    expect(limA.stats.granted + limB.stats.granted).toBeGreaterThan(0);
    expect(allowed).toBeLessThanOrEqual(3000);
    // Refused early by at most the calls the other process still held unused (k ≤ 1% of 3000).
    expect(allowed).toBeGreaterThanOrEqual(3000 - 2 * 30);
    const refused = [...outA, ...outB].filter((d) => !d.allowed);
    expect(refused.every((d) => d.reason === 'quota' && d.retryAfterSeconds! >= 1)).toBe(true);
    await Promise.all([limA.close(), limB.close()]);
    expect(Number(await a.get(req.quota!.key))).toBe(allowed);
  });

  it('an overage quota flags exactly the calls past the included amount', async () => {
    const req = dayRequest(keysFor(), { quota: 500, mode: 'overage' });
    const lim = reserving(redisA);
    const out = await drive(lim, req, 1500);
    expect(out.every((d) => d.allowed)).toBe(true);
    expect(lim.stats.fromReservations).toBeGreaterThan(0);
    expect(out.filter((d) => d.overage)).toHaveLength(1000);
  });
});

describe('what is never reserved', () => {
  for (const algorithm of ['gcra', 'token_bucket', 'fixed_window'] as const) {
    it(`${algorithm}: every call is its own decision`, async () => {
      const req: DecideRequest = { rates: [{ name: 'plan', key: keysFor().keyRate(), limit: 1_000_000, windowSeconds: 60, algorithm }] };
      const inner = createRedisLimiter({ redis: a, timeoutMs: 2000 });
      const lim = reserving(inner);
      await drive(lim, req, 400);
      await lim.close();
      expect(lim.stats.granted + lim.stats.refused).toBe(0);
      expect(inner.stats.decisions).toBe(400);
    });
  }

  it('requests built afresh for every call (anonymous subjects) are decided call by call', async () => {
    const shape = dayRequest();
    const inner = createRedisLimiter({ redis: a, timeoutMs: 2000 });
    const lim = reserving(inner);
    // Long enough to count as hot, and enough calls whatever the host's load (no timed assertion).
    let calls = 0;
    const until = performance.now() + 120;
    while (performance.now() < until || calls < 150) {
      decided(await lim.decide({ rates: shape.rates.map((r) => ({ ...r })), quota: { ...shape.quota! } }));
      calls++;
    }
    expect(lim.tracked()).toBe(0);
    await lim.close();
    expect(lim.stats.granted + lim.stats.refused).toBe(0);
    expect(inner.stats.decisions).toBe(calls);
  });

  it('a small limit (1% of it under two calls) is decided call by call', async () => {
    const req = dayRequest(keysFor(), { rate: 150 });
    const lim = reserving(redisA);
    const out = await drive(lim, req, 200);
    expect(lim.stats.granted).toBe(0);
    expect(out.filter((d) => d.allowed)).toHaveLength(150);
  });
});

describe('release', () => {
  it('lowers only the bucket a reservation charged: this window while it lasts, then the previous one, never older', async () => {
    const k = keysFor();
    const periodStart = Date.UTC(2026, 0, 1);
    const req: DecideRequest = {
      rates: [{ name: 'route', key: k.routeRate('r1'), limit: 1000, windowSeconds: 1, algorithm: 'sliding_window' }],
      quota: { key: k.quota(periodStart), limit: 1000, mode: 'hard_cap', periodStart, periodEnd: Date.UTC(2100, 0, 1) },
    };
    const first = decided(await redisA.decide({ ...req, cost: 10 }));
    expect(await redisA.release(req, first.now, 3)).toBe(true);
    expect(await a.hget(req.rates[0]!.key, 'c')).toBe('7');
    expect(await a.get(req.quota!.key)).toBe('7');
    // Into the next one-second window: the charge is now the previous window's count.
    const second = await waitFor(
      async () => {
        const d = decided(await redisA.decide(req));
        return Math.floor(d.now / 1000) > Math.floor(first.now / 1000) ? d : null;
      },
      { what: 'next window' },
    );
    const previous = Number(await a.hget(req.rates[0]!.key, 'p'));
    expect(previous).toBeGreaterThanOrEqual(7);
    expect(await redisA.release(req, first.now, 4)).toBe(true);
    expect(Number(await a.hget(req.rates[0]!.key, 'p'))).toBe(previous - 4);
    // More than a bucket holds never drives it below zero.
    expect(await redisA.release(req, second.now, 1_000_000)).toBe(true);
    expect(await a.hget(req.rates[0]!.key, 'c')).toBe('0');
    expect(await a.get(req.quota!.key)).toBe('0');
    // Two windows back counts for nothing: nothing to give back.
    const hash = await a.hgetall(req.rates[0]!.key);
    expect(await redisA.release(req, first.now - 5000, 5)).toBe(true);
    expect(await a.hgetall(req.rates[0]!.key)).toEqual(hash);
  });

  const hostile: [string, () => Promise<boolean>][] = [
    ['zero unused calls', () => redisA.release(dayRequest(), Date.now(), 0)],
    ['a fraction of a call', () => redisA.release(dayRequest(), Date.now(), 1.5)],
    ['a negative time', () => redisA.release(dayRequest(), -1, 1)],
    [
      'a GCRA limit',
      () =>
        redisA.release(
          { rates: [{ name: 'plan', key: keysFor().keyRate(), limit: 10, windowSeconds: 1, algorithm: 'gcra' }] },
          Date.now(),
          1,
        ),
    ],
    ['a request no limiter accepts', () => redisA.release({ rates: [] }, Date.now(), 1)],
  ];
  for (const [what, call] of hostile) {
    it(`refuses ${what} with a LimitInputError`, async () => {
      await expect(call()).rejects.toBeInstanceOf(LimitInputError);
    });
  }

  it('refuses nonsensical options at construction', () => {
    expect(() => createReservingLimiter({ limiter: redisA, blockMs: 0 })).toThrow(RangeError);
    expect(() => createReservingLimiter({ limiter: redisA, limitShare: 2 })).toThrow(RangeError);
    expect(() => createReservingLimiter({ limiter: redisA, idleMs: Number.NaN })).toThrow(RangeError);
  });
});

describe('Redis unavailable', () => {
  it('a dead Redis gives `unavailable` at once, reserves nothing, and close() still returns', async () => {
    const dead = new Redis({ port: 1, enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null });
    dead.on('error', () => undefined);
    const lim = reserving(createRedisLimiter({ redis: dead, timeoutMs: 50 }));
    const req = dayRequest();
    const outcomes: LimitOutcome[] = [];
    // Long enough for the pair to count as hot and ask for reservations, and enough calls
    // whatever the host's load (no timed assertion).
    const until = performance.now() + 150;
    while (performance.now() < until || outcomes.length < 150) outcomes.push(await lim.decide(req));
    expect(outcomes.every((o) => o.kind === 'unavailable')).toBe(true);
    expect(lim.stats.granted + lim.stats.refused).toBe(0);
    await lim.close();
    dead.disconnect();
  });

  it('after close() every decision goes to Redis on its own, and nothing is left held', async () => {
    const req = dayRequest();
    const inner = createRedisLimiter({ redis: a, timeoutMs: 2000 });
    const lim = reserving(inner);
    await drive(lim, req, 800);
    await lim.close();
    expect(lim.stats.granted).toBeGreaterThan(0);
    expect(lim.held()).toBe(0);
    const before = inner.stats.decisions;
    const out = await drive(lim, req, 50);
    expect(out.every((d) => d.allowed)).toBe(true);
    expect(inner.stats.decisions - before).toBe(50);
    expect(Number(await a.get(req.quota!.key))).toBe(850);
  });
});
