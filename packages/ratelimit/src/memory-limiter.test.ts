import { describe, expect, it } from 'vitest';
import { createMemoryLimiter, LimitInputError, type DecideRequest, type RateAlgorithm } from './index';

const ALGORITHMS: RateAlgorithm[] = ['fixed_window', 'sliding_window', 'gcra', 'token_bucket'];

function clock(start = Date.UTC(2026, 0, 1)) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('createMemoryLimiter', () => {
  for (const algorithm of ALGORITHMS) {
    it(`${algorithm}: lets exactly the limit through, then recovers after the window`, () => {
      const c = clock();
      const lim = createMemoryLimiter({ now: c.now });
      const req: DecideRequest = { rates: [{ name: 'plan', key: 'rl:{k}:plan', limit: 4, windowSeconds: 10, algorithm }] };
      const seen = Array.from({ length: 6 }, () => lim.decideSync(req).allowed);
      expect(seen).toEqual([true, true, true, true, false, false]);
      const refused = lim.decideSync(req);
      expect(refused).toMatchObject({ reason: 'rate', limitName: 'plan', source: 'memory' });
      expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(refused.retryAfterSeconds).toBeLessThanOrEqual(20);
      c.advance(refused.retryAfterSeconds! * 1000);
      expect(lim.decideSync(req).allowed).toBe(true);
      c.advance(25_000);
      expect(lim.decideSync(req).rate!.remaining).toBe(3);
    });
  }

  it('is all-or-nothing across its rates and ignores the quota', () => {
    const lim = createMemoryLimiter({ now: clock().now });
    const plan = { name: 'plan', key: 'rl:{k}:plan', limit: 10, windowSeconds: 60, algorithm: 'gcra' as const };
    const route = { name: 'route', key: 'rl:{k}:route', limit: 1, windowSeconds: 60, algorithm: 'fixed_window' as const };
    const quota = { key: 'q:{k}:0', limit: 0, mode: 'hard_cap' as const, periodEnd: Date.UTC(2026, 1, 1) };
    const first = lim.decideSync({ rates: [plan, route], quota });
    expect(first.allowed).toBe(true);
    expect(first.quota).toBeNull();
    expect(lim.decideSync({ rates: [plan, route], quota }).limitName).toBe('route');
    expect(lim.decideSync({ rates: [plan] }).rate!.remaining).toBe(8);
  });

  it('keeps at most maxKeys limiter states, dropping the least recently used', () => {
    const lim = createMemoryLimiter({ maxKeys: 100, now: clock().now });
    for (let i = 0; i < 1000; i++)
      lim.decideSync({ rates: [{ name: 'plan', key: `rl:{k${i}}:plan`, limit: 1, windowSeconds: 60, algorithm: 'fixed_window' }] });
    expect(lim.size()).toBe(100);
    // The newest key is still counted, the oldest was forgotten.
    expect(
      lim.decideSync({ rates: [{ name: 'plan', key: 'rl:{k999}:plan', limit: 1, windowSeconds: 60, algorithm: 'fixed_window' }] }).allowed,
    ).toBe(false);
    expect(
      lim.decideSync({ rates: [{ name: 'plan', key: 'rl:{k0}:plan', limit: 1, windowSeconds: 60, algorithm: 'fixed_window' }] }).allowed,
    ).toBe(true);
  });

  it('rejects the same hostile input as the Redis limiter', async () => {
    const lim = createMemoryLimiter();
    expect(() => lim.decideSync({ rates: [{ name: 'plan', key: 'k', limit: 0, windowSeconds: 1, algorithm: 'gcra' }] })).toThrow(
      LimitInputError,
    );
    await expect(
      lim.decide({ rates: [{ name: 'plan', key: 'k', limit: 1, windowSeconds: Number.NaN, algorithm: 'gcra' }] }),
    ).rejects.toThrow(LimitInputError);
    expect(() => createMemoryLimiter({ maxKeys: 0 })).toThrow(RangeError);
  });
});
