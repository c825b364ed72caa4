import { describe, expect, it } from 'vitest';
import type { ApiPolicy } from '@tollgate/policy';
import { compileTargets, Upstreams } from './upstreams';

const api = (targets: { url: string; weight: number }[], mode: ApiPolicy['loadBalancing']) =>
  ({
    loadBalancing: mode,
    timeouts: { connectMs: 100, headersMs: 100, requestMs: 100 },
    targets: targets.map((t, i) => ({ id: `t${i}`, url: t.url, weight: t.weight, healthCheck: null })),
  }) as unknown as ApiPolicy;

describe('Upstreams.pick', () => {
  it('rotates round robin', () => {
    const u = new Upstreams({ connections: 1, unhealthyThreshold: 2, cooldownMs: 1000 });
    const b = compileTargets(
      api(
        [
          { url: 'http://a:1', weight: 1 },
          { url: 'http://b:1', weight: 1 },
          { url: 'http://c:1', weight: 1 },
        ],
        'round_robin',
      ),
    );
    expect(Array.from({ length: 6 }, () => u.pick(b, null)!.id)).toEqual(['t0', 't1', 't2', 't0', 't1', 't2']);
  });

  it('spreads by weight smoothly', () => {
    const u = new Upstreams({ connections: 1, unhealthyThreshold: 2, cooldownMs: 1000 });
    const b = compileTargets(
      api(
        [
          { url: 'http://a:1', weight: 5 },
          { url: 'http://b:1', weight: 1 },
          { url: 'http://c:1', weight: 0 },
        ],
        'weighted',
      ),
    );
    const picks = Array.from({ length: 60 }, () => u.pick(b, null)!.id);
    expect(picks.filter((p) => p === 't0').length).toBe(50);
    expect(picks.filter((p) => p === 't1').length).toBe(10);
    expect(picks).not.toContain('t2');
    // Smooth: the light target isn't starved in runs.
    expect(picks.slice(0, 6)).toContain('t1');
  });

  it('takes a target out after consecutive failures and brings it back after the cooldown', () => {
    let now = 1000;
    const u = new Upstreams({ connections: 1, unhealthyThreshold: 2, cooldownMs: 500, now: () => now });
    const b = compileTargets(
      api(
        [
          { url: 'http://a:1', weight: 1 },
          { url: 'http://b:1', weight: 1 },
        ],
        'round_robin',
      ),
    );
    const a = b.targets[0]!;
    expect(u.reportFailure(a)).toBe(false);
    expect(u.reportFailure(a)).toBe(true);
    expect(Array.from({ length: 4 }, () => u.pick(b, null)!.id)).toEqual(['t1', 't1', 't1', 't1']);
    expect(u.unhealthyCount).toBe(1);
    now += 501;
    expect(new Set(Array.from({ length: 4 }, () => u.pick(b, null)!.id))).toEqual(new Set(['t0', 't1']));
  });

  it('still tries someone when every target is out, and honours exclusions for retries', () => {
    const u = new Upstreams({ connections: 1, unhealthyThreshold: 1, cooldownMs: 10_000 });
    const b = compileTargets(
      api(
        [
          { url: 'http://a:1', weight: 1 },
          { url: 'http://b:1', weight: 1 },
        ],
        'round_robin',
      ),
    );
    u.reportFailure(b.targets[0]!);
    u.reportFailure(b.targets[1]!);
    expect(u.pick(b, null)).not.toBeNull();
    expect(u.pick(b, new Set(b.targets))).toBeNull();
  });
});
