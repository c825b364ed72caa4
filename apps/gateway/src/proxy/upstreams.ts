import { Pool } from 'undici';
import type { ApiPolicy, CircuitBreakerPolicy, UpstreamTargetPolicy } from '@tollgate/policy';
import { CircuitBreaker, type CircuitState } from './circuit-breaker';
import { guardedConnector } from './target-guard';

export type Target = {
  id: string;
  /** scheme://host:port */
  origin: string;
  /** Path prefix of the target URL without trailing slash ('' for none). */
  pathPrefix: string;
  weight: number;
  poolKey: string;
  /** Active health check settings, or null when the target has none. */
  healthCheck: UpstreamTargetPolicy['healthCheck'];
  /** Identity of this target's active prober (one per target per process), or null. */
  healthKey: string | null;
  /** The tenant allows private addresses (checked on every new connection, after DNS). */
  allowPrivate: boolean;
  /** The API's circuit breaker (ADR 0025), or null; its state lives in `Upstreams`, by `breakerKey`. */
  breakerPolicy: CircuitBreakerPolicy | null;
  breakerKey: string;
};

type Health = { failures: number; downUntil: number };

/** Per-API balancing state; replaced with the snapshot that carries the API. */
export type Balancer = {
  targets: Target[];
  mode: 'round_robin' | 'weighted';
  next: number;
  /** Smooth weighted round robin (nginx): current weights per target. */
  current: number[];
};

export function compileTargets(api: ApiPolicy, allowPrivate = false): Balancer {
  const targets: Target[] = [];
  for (const t of api.targets) {
    const u = new URL(t.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') continue;
    const prefix = u.pathname === '/' ? '' : u.pathname.replace(/\/+$/, '');
    targets.push({
      id: t.id,
      origin: u.origin,
      pathPrefix: prefix,
      weight: t.weight,
      // Pools are shared by origin only between tenants with the same private-targets setting.
      poolKey: `${u.origin}|${api.timeouts.connectMs}|${allowPrivate ? 'private' : 'public'}`,
      healthCheck: t.healthCheck,
      healthKey: t.healthCheck ? `${t.id}|${u.origin}${prefix}` : null,
      allowPrivate,
      breakerPolicy: api.circuitBreaker ?? null,
      // One circuit per target of one API, surviving snapshot swaps while the target stays.
      breakerKey: `${api.id}|${t.id}|${u.origin}${prefix}`,
    });
  }
  return { targets, mode: api.loadBalancing, next: 0, current: targets.map(() => 0) };
}

export type UpstreamsOptions = {
  connections: number;
  unhealthyThreshold: number;
  cooldownMs: number;
  now?: () => number;
  /** A circuit changed state (metrics, logs). */
  onCircuitChange?: (target: Target, state: CircuitState) => void;
};

/**
 * Keep-alive pools per upstream origin, shared by every API that points at it, and passive
 * health: a target that fails `unhealthyThreshold` times in a row (connect errors, resets,
 * timeouts) sits out `cooldownMs`, then gets traffic again; one success resets it.
 * Active health (proxy/health-checks.ts) marks targets down by their `healthKey`; a target is in
 * rotation only while both allow it.
 */
export class Upstreams {
  private readonly pools = new Map<string, Pool>();
  private readonly health = new Map<string, Health>();
  /** healthKeys of targets whose active health check says they are down. */
  private readonly activeDown = new Set<string>();
  /** Circuit breakers by `Target.breakerKey`, for targets whose API has one (this process only). */
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly now: () => number;

  constructor(private readonly opts: UpstreamsOptions) {
    this.now = opts.now ?? Date.now;
  }

  pool(target: Target, connectTimeoutMs: number): Pool {
    let p = this.pools.get(target.poolKey);
    if (!p) {
      p = new Pool(target.origin, {
        connections: this.opts.connections,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 60_000,
        connect: guardedConnector({ timeout: connectTimeoutMs }, target.allowPrivate),
      });
      this.pools.set(target.poolKey, p);
    }
    return p;
  }

  isHealthy(target: Target, now = this.now()): boolean {
    if (target.breakerPolicy !== null && this.breakerFor(target).refusing(now)) return false;
    if (this.activeDown.size !== 0 && target.healthKey !== null && this.activeDown.has(target.healthKey)) return false;
    return this.isPassivelyHealthy(target, now);
  }

  isPassivelyHealthy(target: Target, now = this.now()): boolean {
    const h = this.health.get(target.origin);
    return h === undefined || h.downUntil <= now;
  }

  /** Active health verdict for a prober's target; `forgetActive` when the prober stops. */
  setActiveHealth(healthKey: string, healthy: boolean): void {
    if (healthy) this.activeDown.delete(healthKey);
    else this.activeDown.add(healthKey);
  }

  forgetActive(healthKey: string): void {
    this.activeDown.delete(healthKey);
  }

  /** Next target by round robin or smooth weights, skipping unhealthy and excluded ones. */
  pick(b: Balancer, exclude: ReadonlySet<Target> | null): Target | null {
    const n = b.targets.length;
    if (n === 0) return null;
    const now = this.now();
    if (b.mode === 'weighted') {
      let total = 0;
      let best = -1;
      for (let i = 0; i < n; i++) {
        const t = b.targets[i]!;
        if (t.weight <= 0 || (exclude && exclude.has(t)) || !this.isHealthy(t, now)) continue;
        b.current[i]! += t.weight;
        total += t.weight;
        if (best === -1 || b.current[i]! > b.current[best]!) best = i;
      }
      if (best !== -1) {
        b.current[best]! -= total;
        return this.chosen(b.targets[best]!, now);
      }
    } else {
      for (let k = 0; k < n; k++) {
        const i = (b.next + k) % n;
        const t = b.targets[i]!;
        if ((exclude && exclude.has(t)) || !this.isHealthy(t, now)) continue;
        b.next = (i + 1) % n;
        return this.chosen(t, now);
      }
    }
    // Everything is out (by either check): try the one whose passive cooldown ends first (targets
    // only the active check took out count as ending now, in list order) rather than refusing
    // outright — Envoy's "panic mode": a wrong verdict must not turn into a total outage.
    let fallback: Target | null = null;
    let earliest = Infinity;
    for (const t of b.targets) {
      if (exclude && exclude.has(t)) continue;
      // An open circuit is a deliberate verdict, not a guess: panic mode doesn't override it.
      if (t.breakerPolicy !== null && this.breakerFor(t).refusing(now)) continue;
      const d = this.health.get(t.origin)?.downUntil ?? 0;
      if (d < earliest) {
        earliest = d;
        fallback = t;
      }
    }
    return fallback === null ? null : this.chosen(fallback, now);
  }

  private chosen(t: Target, now: number): Target {
    if (t.breakerPolicy !== null) this.breakerFor(t).picked(now);
    return t;
  }

  breakerFor(t: Target): CircuitBreaker {
    let b = this.breakers.get(t.breakerKey);
    if (b === undefined) {
      const onChange = this.opts.onCircuitChange;
      b = new CircuitBreaker(t.breakerPolicy!, onChange ? (s) => onChange(t, s) : undefined);
      this.breakers.set(t.breakerKey, b);
    } else if (b.policy !== t.breakerPolicy) b.setPolicy(t.breakerPolicy!);
    return b;
  }

  /** An upstream answer for a target with a circuit breaker: a 5xx counts as a failure. */
  recordResponse(t: Target, status: number): void {
    this.breakerFor(t).record(status >= 500, this.now());
  }

  /**
   * When every target of the balancer refuses by its circuit, the seconds until the first of
   * them lets a probe through (for `Retry-After`); 0 when some target takes calls.
   */
  circuitRetryAfter(b: Balancer): number {
    const now = this.now();
    let soonest = Infinity;
    for (const t of b.targets) {
      if (t.breakerPolicy === null) return 0;
      const br = this.breakerFor(t);
      if (!br.refusing(now)) return 0;
      soonest = Math.min(soonest, br.state === 'open' ? br.openUntil - now : 1000);
    }
    return soonest === Infinity ? 0 : Math.max(1, Math.ceil(soonest / 1000));
  }

  reportSuccess(target: Target): void {
    if (this.health.size !== 0) this.health.delete(target.origin);
  }

  /** Returns true when this failure took the target out of rotation. */
  reportFailure(target: Target): boolean {
    if (target.breakerPolicy !== null) this.breakerFor(target).record(true, this.now());
    let h = this.health.get(target.origin);
    if (!h) {
      h = { failures: 0, downUntil: 0 };
      this.health.set(target.origin, h);
    }
    h.failures++;
    if (h.failures >= this.opts.unhealthyThreshold) {
      h.downUntil = this.now() + this.opts.cooldownMs;
      h.failures = 0;
      return true;
    }
    return false;
  }

  get unhealthyCount(): number {
    const now = this.now();
    let n = 0;
    for (const h of this.health.values()) if (h.downUntil > now) n++;
    return n;
  }

  /** Closes pools no API refers to any more (after a snapshot swap). */
  prune(inUse: Pick<ReadonlySet<string>, 'has'>): void {
    for (const [key, pool] of this.pools) {
      if (!inUse.has(key)) {
        this.pools.delete(key);
        void pool.close().catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => undefined)));
    this.pools.clear();
  }
}
