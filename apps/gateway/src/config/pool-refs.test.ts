import { describe, expect, it } from 'vitest';
import { PolicySnapshot } from '@tollgate/policy';
import { compileTenant } from '../routing/route-table';
import { PoolRefs } from './pool-refs';

const tenant = (tenantId: string, urls: string[], version = 1) =>
  compileTenant(
    PolicySnapshot.parse({
      schemaVersion: 1,
      tenantId,
      tenantSlug: tenantId,
      version,
      publishedAt: new Date().toISOString(),
      hosts: [],
      apis: urls.map((url, i) => ({
        id: `api_${i}`,
        slug: `a${i}`,
        name: 'A',
        basePath: `/a${i}`,
        version: 'v1',
        authMode: 'none',
        allowQueryKey: false,
        failMode: 'open',
        loadBalancing: 'round_robin',
        timeouts: { connectMs: 100, headersMs: 100, requestMs: 100 },
        retries: 0,
        jwt: null,
        targets: [{ id: `t${i}`, url, weight: 1, healthCheck: null }],
        routes: [],
      })),
      plans: [],
    }),
  );

describe('PoolRefs', () => {
  it('keeps a pool while any tenant refers to it and reports when one loses its last reference', () => {
    const refs = new PoolRefs();
    const a = tenant('ten_a', ['http://up-1:80', 'http://up-2:80']);
    const b = tenant('ten_b', ['http://up-2:80']);
    expect(
      refs.apply([
        { previous: null, current: a },
        { previous: null, current: b },
      ]),
    ).toBe(false);
    expect(refs.size).toBe(2);
    const a2 = tenant('ten_a', ['http://up-2:80'], 2);
    expect(refs.apply([{ previous: a, current: a2 }])).toBe(true); // up-1 is gone
    const [up1, up2] = [a.apis[0]!.balancer.targets[0]!.poolKey, a.apis[1]!.balancer.targets[0]!.poolKey];
    expect(refs.has(up1)).toBe(false);
    expect(refs.has(up2)).toBe(true);
    expect(refs.apply([{ previous: a2, current: null }])).toBe(false); // b still uses up-2
    expect(refs.apply([{ previous: b, current: null }])).toBe(true);
    expect(refs.size).toBe(0);
  });
});
