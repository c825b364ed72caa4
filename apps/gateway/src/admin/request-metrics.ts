import type { Registry } from 'prom-client';

type Series = { labels: { tenant: string; api: string; status: string }; count: number; sum: number; buckets: Float64Array };

/**
 * The per-request counter and latency histogram, kept as plain numbers keyed by one string and
 * rendered by prom-client only when scraped. prom-client's own label handling (hashing a labels
 * object on every inc/observe) showed up in request-path profiles; this is a Map lookup and two
 * array writes. Output is the standard counter + histogram exposition, cluster-aggregatable.
 */
export class RequestMetrics {
  private readonly series: Series[] = [];
  /** The same series by tenant, API and status, for record(). */
  private readonly index = new Map<string, Map<string, Map<number, Series>>>();

  constructor(
    registry: Registry,
    private readonly bounds: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  ) {
    registry.registerMetric({
      name: 'tollgate_gateway_requests_total',
      help: 'Requests handled, by tenant, API and status',
      type: 'counter',
      aggregator: 'sum',
      get: async () => ({
        name: 'tollgate_gateway_requests_total',
        help: 'Requests handled, by tenant, API and status',
        type: 'counter',
        aggregator: 'sum',
        values: this.series.map((s) => ({ labels: s.labels, value: s.count })),
      }),
      reset: () => this.clear(),
    } as never);
    registry.registerMetric({
      name: 'tollgate_gateway_request_duration_seconds',
      help: 'Time in the gateway from request to response end, by tenant, API and status',
      type: 'histogram',
      aggregator: 'sum',
      get: async () => ({
        name: 'tollgate_gateway_request_duration_seconds',
        help: 'Time in the gateway from request to response end, by tenant, API and status',
        type: 'histogram',
        aggregator: 'sum',
        values: this.series.flatMap((s) => {
          const out: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
          let acc = 0;
          this.bounds.forEach((le, i) => {
            acc += s.buckets[i]!;
            out.push({ labels: { ...s.labels, le }, value: acc, metricName: 'tollgate_gateway_request_duration_seconds_bucket' });
          });
          out.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: 'tollgate_gateway_request_duration_seconds_bucket' });
          out.push({ labels: s.labels, value: s.sum, metricName: 'tollgate_gateway_request_duration_seconds_sum' });
          out.push({ labels: s.labels, value: s.count, metricName: 'tollgate_gateway_request_duration_seconds_count' });
          return out;
        }),
      }),
      reset: () => this.clear(),
    } as never);
  }

  private clear(): void {
    this.series.length = 0;
    this.index.clear();
  }

  record(tenant: string, api: string, status: number, seconds: number): void {
    // Looked up level by level: tenant and API ids are the routing table's own strings, whose
    // hashes V8 keeps, where one joined key string was built and hashed anew on every request.
    let byApi = this.index.get(tenant);
    if (!byApi) this.index.set(tenant, (byApi = new Map()));
    let byStatus = byApi.get(api);
    if (!byStatus) byApi.set(api, (byStatus = new Map()));
    let s = byStatus.get(status);
    if (!s) {
      s = { labels: { tenant, api, status: String(status) }, count: 0, sum: 0, buckets: new Float64Array(this.bounds.length) };
      byStatus.set(status, s);
      this.series.push(s);
    }
    s.count++;
    s.sum += seconds;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (seconds <= b[i]!) {
        s.buckets[i]!++;
        break;
      }
    }
  }
}

/**
 * A counter over two labels with a handful of values each (the limiter's result × source), kept
 * as plain numbers: inc() is two Map lookups and allocates nothing once a pair was seen, where
 * prom-client's Counter builds a label hash string on every call.
 */
export class PairCounter<A extends string, B extends string> {
  private readonly counts = new Map<A, Map<B, { labels: Record<string, string>; value: number }>>();

  constructor(
    registry: Registry,
    name: string,
    help: string,
    private readonly labelNames: readonly [string, string],
  ) {
    registry.registerMetric({
      name,
      help,
      type: 'counter',
      aggregator: 'sum',
      get: async () => ({
        name,
        help,
        type: 'counter',
        aggregator: 'sum',
        values: [...this.counts.values()].flatMap((m) => [...m.values()]),
      }),
      reset: () => this.counts.clear(),
    } as never);
  }

  inc(a: A, b: B): void {
    let byB = this.counts.get(a);
    if (!byB) {
      byB = new Map();
      this.counts.set(a, byB);
    }
    const entry = byB.get(b);
    if (entry) entry.value++;
    else byB.set(b, { labels: { [this.labelNames[0]]: a, [this.labelNames[1]]: b }, value: 1 });
  }
}
