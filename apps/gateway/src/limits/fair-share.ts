import { performance } from 'node:perf_hooks';

export type FairShareOptions = {
  /** Requests in flight in this process past which it counts as saturated. */
  inflightLimit: number;
  /** Event-loop delay (smoothed) past which it counts as saturated, ms. */
  loopDelayMs: number;
  /** A tenant's share never drops below this many requests in flight. Default 2. */
  minShare?: number;
  onShed?: (tenantId: string) => void;
};

/** How often the event-loop delay is sampled: a timer that should fire this often, and how late it was. */
const SAMPLE_MS = 20;

/**
 * Fair admission between tenants (docs/adr/0020). While the process is saturated — too many
 * requests in flight, or the event loop running late — a tenant holding at least its share of
 * the requests in flight (in flight / tenants in flight, at least `minShare`) is refused with 503
 * and Retry-After before its request costs anything more, so the tenant that floods is shed first
 * and a tenant within its share keeps its latency. One tenant alone is never shed: fairness has
 * no one to protect then. Outside saturation nothing is refused.
 */
export class FairShare {
  private readonly inflight = new Map<string, number>();
  total = 0;
  /** Smoothed event-loop delay, ms. */
  loopDelay = 0;
  shed = 0;
  private readonly minShare: number;
  private expected = performance.now() + SAMPLE_MS;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: FairShareOptions) {
    this.minShare = opts.minShare ?? 2;
    this.timer = setInterval(() => {
      const now = performance.now();
      const late = Math.max(0, now - this.expected);
      this.expected = now + SAMPLE_MS;
      this.loopDelay = this.loopDelay * 0.7 + late * 0.3;
    }, SAMPLE_MS);
    this.timer.unref();
  }

  saturated(): boolean {
    return this.total >= this.opts.inflightLimit || this.loopDelay >= this.opts.loopDelayMs;
  }

  /** True: admitted, and `release` must follow once. False: answer 503 (it was counted as shed). */
  admit(tenantId: string): boolean {
    const mine = this.inflight.get(tenantId) ?? 0;
    if (this.saturated()) {
      const active = this.inflight.size + (mine === 0 ? 1 : 0);
      if (active > 1 && mine >= Math.max(this.minShare, Math.ceil(this.total / active))) {
        this.shed++;
        this.opts.onShed?.(tenantId);
        return false;
      }
    }
    this.inflight.set(tenantId, mine + 1);
    this.total++;
    return true;
  }

  release(tenantId: string): void {
    const mine = this.inflight.get(tenantId);
    if (mine === undefined) return;
    if (mine <= 1) this.inflight.delete(tenantId);
    else this.inflight.set(tenantId, mine - 1);
    this.total--;
  }

  inFlightOf(tenantId: string): number {
    return this.inflight.get(tenantId) ?? 0;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
