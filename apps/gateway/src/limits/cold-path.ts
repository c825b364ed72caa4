import { performance } from 'node:perf_hooks';
import type { Keyspace, PlanPolicy, RateAlgorithm } from '@tollgate/policy';
import type { ColdDecider } from '@tollgate/ratelimit';
import { authorizeRecord } from '../auth/authenticate';
import type { KeyCache, KeyLookup } from '../auth/key-cache';
import type { CompiledApi, CompiledRoute, TenantRuntime } from '../routing/route-table';
import { monthPeriod, type LimitEnforcer, type LimitVerdict } from './enforce-limits';

export type ColdPathDeps = {
  /** null = off (a Redis Cluster, or configured off): a miss reads the record, then decides apart. */
  decider: ColdDecider | null;
  keys: KeyCache;
  keyspace: Keyspace;
  limits: LimitEnforcer;
  /**
   * How each cold call went: decided in its one round trip; record only (it failed a check or has
   * no limits: the caller decides as usual if at all); missing; `fallback` (Redis unavailable:
   * what the cache still knew); `mismatch` (decided, but not as the gateway would have: a bug).
   */
  onResult?: (result: 'decided' | 'record' | 'missing' | 'fallback' | 'mismatch') => void;
};

/** A cold key's record and, when the same round trip decided it, its limit verdict. */
export type ColdResult = { lookup: KeyLookup; verdict: LimitVerdict | null };

const ALGORITHM_CODE: Record<RateAlgorithm, number> = { fixed_window: 1, sliding_window: 2, gcra: 3, token_bucket: 4 };
const MAX_LIMIT = 1_000_000_000;

function rateSpec(r: { limit: number; windowSeconds: number; algorithm: RateAlgorithm } | null): [number, number, number] | null {
  if (!r || !Number.isInteger(r.limit) || r.limit < 1 || r.limit > MAX_LIMIT) return null;
  return [ALGORITHM_CODE[r.algorithm], r.limit, r.windowSeconds * 1000];
}

function planSpec(plan: PlanPolicy, apiId: string): number[] | null {
  const rate = plan.rateLimit ? rateSpec(plan.rateLimit) : [0, 0, 0];
  // A policy the limiter would refuse as input: leave the plan out, so the script doesn't decide.
  if (rate === null) return null;
  const q = plan.quota;
  return [plan.apiIds.includes(apiId) ? 1 : 0, ...rate, q ? q.limit : 0, q ? (q.mode === 'hard_cap' ? 0 : 1) : -1];
}

/**
 * A key not in the cache costs one round trip (docs/adr/0020): the cold-key script reads its
 * record and decides its limits together. The record is then checked and cached as any read
 * record is, and the script's decision is used when it charged exactly the keys the gateway would
 * have (the enforcer's `adopt`). Anything else — the script off or failing, a record that needs
 * no decision — takes the ordinary path.
 */
export function createColdPath(deps: ColdPathDeps) {
  const { decider, keys, keyspace, limits } = deps;
  // The route's context for the script (see COLD_DECIDE_LUA), by tenant runtime (replaced, with its
  // plans, whenever the tenant's snapshot changes) and route.
  const contexts = new WeakMap<TenantRuntime, WeakMap<CompiledRoute, string>>();
  /** Cold calls in flight by key hash: concurrent misses of one key wait for its record, then decide as usual. */
  const pending = new Map<string, Promise<KeyLookup>>();

  function contextFor(tenant: TenantRuntime, api: CompiledApi, route: CompiledRoute): string {
    let byRoute = contexts.get(tenant);
    const hit = byRoute?.get(route);
    if (hit !== undefined) return hit;
    const pl: Record<string, number[]> = {};
    for (const [id, plan] of tenant.plans) {
      const spec = planSpec(plan, api.id);
      if (spec) pl[id] = spec;
    }
    // -1: a route rate the limiter would refuse as input; the script then leaves the decision to us.
    const rr = route.policy.rateLimit ? (rateSpec(route.policy.rateLimit) ?? -1) : 0;
    const ctx = JSON.stringify({ t: tenant.tenantId, a: api.id, p: keyspace.prefix, r: route.id, rr, pl });
    if (!byRoute) {
      byRoute = new WeakMap();
      contexts.set(tenant, byRoute);
    }
    byRoute.set(route, ctx);
    return ctx;
  }

  async function run(
    hash: string,
    tenant: TenantRuntime,
    api: CompiledApi,
    route: CompiledRoute,
    requestId: string,
    now: number,
  ): Promise<ColdResult> {
    if (decider === null) return { lookup: await keys.lookup(hash), verdict: null };
    const first = pending.get(hash);
    if (first !== undefined) return { lookup: await first, verdict: null };
    const p = runCold(hash, tenant, api, route, requestId, now);
    const lookup = p.then((r) => r.lookup);
    pending.set(hash, lookup);
    try {
      return await p;
    } finally {
      pending.delete(hash);
    }
  }

  async function runCold(
    hash: string,
    tenant: TenantRuntime,
    api: CompiledApi,
    route: CompiledRoute,
    requestId: string,
    now: number,
  ): Promise<ColdResult> {
    keys.misses++;
    const gen = keys.currentGeneration;
    const sentAt = performance.now();
    const out = await decider!.run(keyspace.key(hash), contextFor(tenant, api, route), now, monthPeriod(now));
    if (out.kind === 'unavailable') {
      if (out.reason === 'error') return { lookup: await keys.lookup(hash), verdict: null };
      deps.onResult?.('fallback');
      return { lookup: keys.fallback(hash), verdict: null };
    }
    if (out.kind === 'missing') {
      deps.onResult?.('missing');
      return { lookup: keys.remember(hash, null, gen), verdict: null };
    }
    const lookup = keys.remember(hash, out.raw, gen);
    if (out.kind === 'record') {
      deps.onResult?.('record');
      return { lookup, verdict: null };
    }
    const auth = authorizeRecord(lookup, hash, tenant, api, now);
    const verdict = auth.ok
      ? limits.adopt(
          api,
          route,
          { kind: 'key', record: auth.identity.record, plan: auth.identity.plan },
          requestId,
          now,
          out.keys,
          out.reply,
          sentAt,
        )
      : null;
    // The script counted this call: a verdict the gateway can't use means the two disagree.
    deps.onResult?.(verdict === null ? 'mismatch' : 'decided');
    return { lookup, verdict };
  }

  return { run };
}
export type ColdPath = ReturnType<typeof createColdPath>;
