import { performance } from 'node:perf_hooks';

export type FairShareOptions = {
  /** Requests in flight in this process past which it counts as saturated. */
  inflightLimit: number;
  /** Event-loop delay (smoothed) past which it counts as saturated, ms. */
  loopDelayMs: number;
  /** A tenant's share never drops below this many requests in flight. Default 8. */
  minShare?: number;
  onShed?: (tenantId: string) => void;
};

/** How often the event-loop delay is sampled: a timer that should fire this often, and how late it was. */
const SAMPLE_MS = 20;
/** Demand is counted in two buckets of this length: about the last second. */
const BUCKET_MS = 500;

/**
 * Fair admission between tenants (docs/adr/0020). While the process is saturated — too many
 * requests in flight, or the event loop running late — a tenant over its share (at least
 * `minShare` requests in flight, and more than twice the other tenants' average arrivals over the
 * last second) is refused with 503
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
    this.minShare = opts.minShare ?? 8;
    this.timer = setInterval(() => {
      const now = performance.now();
      const late = Math.max(0, now - this.expected);
      this.expected = now + SAMPLE_MS;
      this.loopDelay = this.loopDelay * 0.7 + late * 0.3;
      this.rotate(now);
    }, SAMPLE_MS);
    this.timer.unref();
  }

  saturated(): boolean {
    return this.total >= this.opts.inflightLimit || this.loopDelay >= this.opts.loopDelayMs;
  }

  /** Arrivals (admitted or not) per tenant in the current and the previous half second. */
  private arrivals = new Map<string, number>();
  private previous = new Map<string, number>();
  private arrivalsTotal = 0;
  private previousTotal = 0;
  private bucketStart = performance.now();

  /** Next bucket: run by the sampling timer, so a request pays no clock read for it. */
  private rotate(now: number): void {
    if (now - this.bucketStart < BUCKET_MS) return;
    this.previous = this.arrivals;
    this.previousTotal = this.arrivalsTotal;
    this.arrivals = new Map();
    this.arrivalsTotal = 0;
    this.bucketStart = now;
  }

  private arrive(tenantId: string): number {
    const n = (this.arrivals.get(tenantId) ?? 0) + 1;
    this.arrivals.set(tenantId, n);
    this.arrivalsTotal++;
    return n + (this.previous.get(tenantId) ?? 0);
  }

  /** True: admitted, and `release` must follow once. False: answer 503 (it was counted as shed). */
  admit(tenantId: string): boolean {
    const demand = this.arrive(tenantId);
    const mine = this.inflight.get(tenantId) ?? 0;
    if (mine >= this.minShare && this.saturated()) {
      // Over its share: it holds requests in flight and asks more than twice what the other
      // tenants ask on average (arrivals over the last second, shed ones included, so shedding a
      // flood never makes a steady tenant look like one).
      const others = Math.max(this.arrivals.size, this.previous.size) - 1;
      const othersDemand = this.arrivalsTotal + this.previousTotal - demand;
      if (others > 0 && demand > (2 * othersDemand) / others) {
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
