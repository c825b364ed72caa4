import { describe, expect, it } from 'vitest';
import { FailureBudget } from './failure-budget';

describe('FailureBudget', () => {
  it('refuses a client once it failed its budget on a tenant, until the window ends', () => {
    let t = 0;
    const b = new FailureBudget({ perTenantClient: 3, perClient: 10, windowMs: 1000, maxEntries: 100, now: () => t });
    expect(b.exceeded('1.1.1.1', 'ten_a')).toBe(false);
    for (let i = 0; i < 3; i++) b.recordFailure('1.1.1.1', 'ten_a');
    expect(b.exceeded('1.1.1.1', 'ten_a')).toBe(true);
    expect(b.exceeded('1.1.1.1', 'ten_b')).toBe(false);
    expect(b.exceeded('2.2.2.2', 'ten_a')).toBe(false);
    expect(b.retryAfterSeconds('1.1.1.1', 'ten_a')).toBe(1);
    t = 1000;
    expect(b.exceeded('1.1.1.1', 'ten_a')).toBe(false);
    expect(b.throttled).toBe(1);
  });

  it('also caps a client across tenants', () => {
    const b = new FailureBudget({ perTenantClient: 100, perClient: 4, windowMs: 1000, maxEntries: 100, now: () => 0 });
    for (const t of ['a', 'b', 'c', 'd']) b.recordFailure('1.1.1.1', t);
    expect(b.exceeded('1.1.1.1', 'e')).toBe(true);
  });

  it('stays bounded in memory', () => {
    let t = 0;
    const b = new FailureBudget({ perTenantClient: 2, perClient: 2, windowMs: 10, maxEntries: 10, now: () => t });
    for (let i = 0; i < 100; i++) {
      t = i;
      b.recordFailure(`10.0.0.${i}`, 'x');
    }
    expect((b as unknown as { windows: Map<string, unknown> }).windows.size).toBeLessThanOrEqual(12);
  });
});
