import type { TenantRuntime } from '../routing/route-table';

/**
 * Which upstream connection pools the loaded tenants still refer to, counted per pool key and
 * maintained per swapped tenant, so closing unused pools never rescans every tenant. Usable as
 * the `inUse` set of `Upstreams.prune`.
 */
export class PoolRefs implements Pick<ReadonlySet<string>, 'has'> {
  private readonly counts = new Map<string, number>();

  has(poolKey: string): boolean {
    return this.counts.has(poolKey);
  }

  get size(): number {
    return this.counts.size;
  }

  /** Applies swapped tenants; true when some pool lost its last reference (time to prune). */
  apply(changes: readonly { previous: TenantRuntime | null; current: TenantRuntime | null }[]): boolean {
    let released = false;
    for (const { previous, current } of changes) {
      for (const key of poolKeys(current)) this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
      for (const key of poolKeys(previous)) {
        const n = (this.counts.get(key) ?? 0) - 1;
        if (n > 0) this.counts.set(key, n);
        else {
          this.counts.delete(key);
          released = true;
        }
      }
    }
    return released;
  }
}

function poolKeys(t: TenantRuntime | null): Set<string> {
  const keys = new Set<string>();
  if (t) for (const a of t.apis) for (const b of [a.balancer, a.sandboxBalancer]) for (const tg of b?.targets ?? []) keys.add(tg.poolKey);
  return keys;
}
