import { Agent, request, type Dispatcher } from 'undici';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { RouteTable, TenantRuntime } from '../routing/route-table';
import type { Target, Upstreams } from './upstreams';

export type HealthChecksOptions = {
  upstreams: Upstreams;
  /** Upper bound on one probe (connect + headers + body); also capped by the target's interval. */
  timeoutMs: number;
  logger: Logger;
  /** For tests: where probes go (defaults to a dedicated keep-alive Agent). */
  dispatcher?: Dispatcher;
};

type ProbeSpec = {
  url: string;
  intervalMs: number;
  unhealthyThreshold: number;
  healthyThreshold: number;
  labels: { tenant: string; api: string; target: string };
};

type Prober = ProbeSpec & {
  key: string;
  healthy: boolean;
  successes: number;
  failures: number;
  timer: NodeJS.Timeout | null;
  inflight: AbortController | null;
  stopped: boolean;
  probes: number;
};

export type ProberState = { healthy: boolean; probes: number; url: string };

/** A snapshot can't make a prober hammer its target: intervals below this are raised to it. */
export const MIN_PROBE_INTERVAL_MS = 100;

/** First probe within this long of a prober starting, spread so a big table doesn't probe in one burst. */
const MAX_START_JITTER_MS = 250;

/**
 * The probe URL: the health path on the target's origin (not under the target URL's path
 * prefix, like a load balancer's health check). Refuses anything that would leave the origin
 * (`//host/…`, backslashes): the control plane vets target URLs, not health paths.
 */
export function probeUrl(target: Target, path: string): string | null {
  if (!path.startsWith('/') || path.startsWith('//') || path.includes('\\') || /[\x00-\x20\x7f]/.test(path)) return null;
  try {
    const u = new URL(target.origin + path);
    return u.origin === target.origin ? u.href : null;
  } catch {
    return null;
  }
}

/**
 * Active health checks: one prober per target per process (keyed by `Target.healthKey`), each
 * probing `GET {origin}{path}` every `intervalMs` (measured from the end of the previous probe,
 * so probes never overlap) with a timeout. 2xx/3xx is a success. `unhealthyThreshold`
 * consecutive failures take the target out of rotation, `healthyThreshold` consecutive successes
 * bring it back. Targets start healthy. `syncTenants` follows every snapshot swap: probers of targets
 * that disappeared stop (their verdict is forgotten), new ones start, changed settings apply from
 * the next probe.
 */
export class HealthChecks {
  private readonly probers = new Map<string, Prober>();
  /** Per tenant, the probes its targets want; and per probe, the tenants that want it. */
  private readonly specsByTenant = new Map<string, Map<string, ProbeSpec>>();
  private readonly owners = new Map<string, Set<string>>();
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private stopped = false;
  readonly counts = { success: 0, failure: 0 };

  constructor(private readonly opts: HealthChecksOptions) {
    this.ownsDispatcher = !opts.dispatcher;
    // A dedicated agent: probes neither queue behind nor take connections from request traffic.
    this.dispatcher =
      opts.dispatcher ?? new Agent({ connections: 2, pipelining: 1, keepAliveTimeout: 10_000, connect: { timeout: opts.timeoutMs } });
  }

  get size(): number {
    return this.probers.size;
  }

  state(healthKey: string): ProberState | null {
    const p = this.probers.get(healthKey);
    return p ? { healthy: p.healthy, probes: p.probes, url: p.url } : null;
  }

  /** Brings the probers in line with a whole table (tenants it lacks lose theirs). */
  sync(table: RouteTable): void {
    const changes: { tenantId: string; current: TenantRuntime | null }[] = [];
    for (const tenantId of this.specsByTenant.keys()) if (!table.tenants.has(tenantId)) changes.push({ tenantId, current: null });
    for (const t of table.tenants.values()) changes.push({ tenantId: t.tenantId, current: t });
    this.syncTenants(changes);
  }

  /**
   * Follows swapped tenants only (`current` null: removed), at a cost proportional to their
   * targets, not to the table: a republish of 10k tenants must not rescan all of them per tenant.
   */
  syncTenants(changes: readonly { tenantId: string; current: TenantRuntime | null }[]): void {
    if (this.stopped) return;
    for (const { tenantId, current } of changes) {
      const before = this.specsByTenant.get(tenantId);
      const after = current ? this.specsOf(current) : new Map<string, ProbeSpec>();
      if (after.size) this.specsByTenant.set(tenantId, after);
      else this.specsByTenant.delete(tenantId);
      if (before) {
        for (const key of before.keys()) {
          if (after.has(key)) continue;
          const owners = this.owners.get(key);
          owners?.delete(tenantId);
          if (owners && owners.size) continue;
          this.owners.delete(key);
          const p = this.probers.get(key);
          if (p) this.stopProber(p);
        }
      }
      for (const [key, spec] of after) {
        let owners = this.owners.get(key);
        if (!owners) this.owners.set(key, (owners = new Set()));
        owners.add(tenantId);
        const p = this.probers.get(key);
        if (!p) {
          this.startProber(key, spec);
          continue;
        }
        if (
          p.url !== spec.url ||
          p.intervalMs !== spec.intervalMs ||
          p.unhealthyThreshold !== spec.unhealthyThreshold ||
          p.healthyThreshold !== spec.healthyThreshold
        ) {
          // New settings: keep the verdict, restart the streak; an unchanged prober keeps its rhythm.
          Object.assign(p, spec, { successes: 0, failures: 0 });
        } else p.labels = spec.labels;
      }
    }
  }

  private specsOf(tenant: TenantRuntime): Map<string, ProbeSpec> {
    const wanted = new Map<string, ProbeSpec>();
    for (const api of tenant.apis) {
      for (const t of api.balancer.targets) {
        const hc = t.healthCheck;
        if (!hc || t.healthKey === null || wanted.has(t.healthKey)) continue;
        const url = probeUrl(t, hc.path);
        if (url === null) {
          this.opts.logger.warn(
            { tenantId: tenant.tenantId, apiId: api.id, targetId: t.id },
            'health check path refused; target not actively checked',
          );
          continue;
        }
        wanted.set(t.healthKey, {
          url,
          intervalMs: Math.max(hc.intervalMs, MIN_PROBE_INTERVAL_MS),
          unhealthyThreshold: hc.unhealthyThreshold,
          healthyThreshold: hc.healthyThreshold,
          labels: { tenant: tenant.tenantId, api: api.id, target: t.id },
        });
      }
    }
    return wanted;
  }

  /** Stops every prober and aborts probes in flight (gateway shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const p of this.probers.values()) this.stopProber(p);
    if (this.ownsDispatcher) await this.dispatcher.destroy().catch(() => undefined);
  }

  private startProber(key: string, spec: ProbeSpec): void {
    const p: Prober = { ...spec, key, healthy: true, successes: 0, failures: 0, timer: null, inflight: null, stopped: false, probes: 0 };
    this.probers.set(key, p);
    this.schedule(p, Math.floor(Math.random() * Math.min(spec.intervalMs, MAX_START_JITTER_MS)));
  }

  private stopProber(p: Prober): void {
    p.stopped = true;
    if (p.timer) clearTimeout(p.timer);
    p.timer = null;
    p.inflight?.abort();
    this.probers.delete(p.key);
    this.opts.upstreams.forgetActive(p.key);
  }

  private schedule(p: Prober, delayMs: number): void {
    p.timer = setTimeout(() => void this.probe(p), delayMs);
    p.timer.unref();
  }

  private async probe(p: Prober): Promise<void> {
    p.timer = null;
    const timeoutMs = Math.min(this.opts.timeoutMs, p.intervalMs);
    const ac = new AbortController();
    p.inflight = ac;
    const deadline = setTimeout(() => ac.abort(), timeoutMs);
    let ok = false;
    try {
      const res = await request(p.url, {
        method: 'GET',
        dispatcher: this.dispatcher,
        signal: ac.signal,
        headers: { 'user-agent': 'tollgate-gateway-health-check' },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      ok = res.statusCode >= 200 && res.statusCode < 400;
      // Read (a bounded amount of) the body so the connection can be reused.
      await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
    } catch {
      ok = false;
    } finally {
      clearTimeout(deadline);
      p.inflight = null;
    }
    if (p.stopped) return;
    p.probes++;
    this.record(p, ok);
    this.schedule(p, p.intervalMs);
  }

  private record(p: Prober, ok: boolean): void {
    const { upstreams, logger } = this.opts;
    if (ok) {
      this.counts.success++;
      p.failures = 0;
      p.successes++;
      if (!p.healthy && p.successes >= p.healthyThreshold) {
        p.healthy = true;
        upstreams.setActiveHealth(p.key, true);
        logger.info({ ...p.labels, url: p.url }, 'upstream target healthy again (active check)');
      }
    } else {
      this.counts.failure++;
      p.successes = 0;
      p.failures++;
      if (p.healthy && p.failures >= p.unhealthyThreshold) {
        p.healthy = false;
        upstreams.setActiveHealth(p.key, false);
        logger.warn({ ...p.labels, url: p.url }, 'upstream target unhealthy (active check); out of rotation');
      }
    }
  }

  /**
   * `tollgate_gateway_upstream_target_healthy{tenant,api,target,check}`: 1/0 per target, `check`
   * = active (targets with a health check) or passive (every target). In cluster mode the primary
   * keeps the minimum over workers: 0 when any worker has the target out.
   */
  registerMetrics(registry: Registry, table: () => RouteTable): void {
    const { probers, counts } = this;
    const upstreams = this.opts.upstreams;
    new Gauge({
      name: 'tollgate_gateway_upstream_target_healthy',
      help: 'Upstream target health as this gateway sees it (1 healthy, 0 out of rotation), by check',
      labelNames: ['tenant', 'api', 'target', 'check'] as const,
      registers: [registry],
      aggregator: 'min',
      collect() {
        this.reset();
        const now = Date.now();
        for (const tenant of table().tenants.values()) {
          for (const api of tenant.apis) {
            for (const t of api.balancer.targets) {
              const labels = { tenant: tenant.tenantId, api: api.id, target: t.id };
              this.set({ ...labels, check: 'passive' }, upstreams.isPassivelyHealthy(t, now) ? 1 : 0);
              const p = t.healthKey === null ? undefined : probers.get(t.healthKey);
              if (p) this.set({ ...labels, check: 'active' }, p.healthy ? 1 : 0);
            }
          }
        }
      },
    });
    new Counter({
      name: 'tollgate_gateway_health_probes_total',
      help: 'Active health probes, by result',
      labelNames: ['result'] as const,
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ result: 'success' }, counts.success);
        this.inc({ result: 'failure' }, counts.failure);
      },
    });
  }
}
