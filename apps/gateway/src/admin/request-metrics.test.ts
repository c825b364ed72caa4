import { AggregatorRegistry, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { PairCounter, RequestMetrics } from './request-metrics';

describe('RequestMetrics', () => {
  it('renders a Prometheus counter and cumulative histogram', async () => {
    const registry = new Registry();
    const m = new RequestMetrics(registry, [0.01, 0.1]);
    m.record('ten_1', 'api_1', 200, 0.005);
    m.record('ten_1', 'api_1', 200, 0.05);
    m.record('ten_1', 'api_1', 429, 0.5);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE tollgate_gateway_requests_total counter');
    expect(text).toContain('tollgate_gateway_requests_total{tenant="ten_1",api="api_1",status="200"} 2');
    expect(text).toContain('tollgate_gateway_request_duration_seconds_bucket{tenant="ten_1",api="api_1",status="200",le="0.01"} 1');
    expect(text).toContain('tollgate_gateway_request_duration_seconds_bucket{tenant="ten_1",api="api_1",status="200",le="0.1"} 2');
    expect(text).toContain('tollgate_gateway_request_duration_seconds_bucket{tenant="ten_1",api="api_1",status="429",le="+Inf"} 1');
    expect(text).toContain('tollgate_gateway_request_duration_seconds_count{tenant="ten_1",api="api_1",status="429"} 1');
  });

  it('sums across cluster workers', async () => {
    const regs = [new Registry(), new Registry()];
    regs.forEach((r, i) => new RequestMetrics(r, [0.1]).record('t', 'a', 200, 0.01 * (i + 1)));
    const merged = AggregatorRegistry.aggregate(await Promise.all(regs.map((r) => r.getMetricsAsJSON())));
    expect(await merged.metrics()).toContain('tollgate_gateway_requests_total{tenant="t",api="a",status="200"} 2');
  });
});

describe('PairCounter', () => {
  it('renders a Prometheus counter per label pair, and sums across cluster workers', async () => {
    const regs = [new Registry(), new Registry()];
    const counters = regs.map(
      (r) => new PairCounter<'allowed' | 'rate', 'redis' | 'memory'>(r, 'test_decisions_total', 'Decisions', ['result', 'source']),
    );
    counters[0]!.inc('allowed', 'redis');
    counters[0]!.inc('allowed', 'redis');
    counters[0]!.inc('rate', 'memory');
    counters[1]!.inc('allowed', 'redis');
    const one = await regs[0]!.metrics();
    expect(one).toContain('# TYPE test_decisions_total counter');
    expect(one).toContain('test_decisions_total{result="allowed",source="redis"} 2');
    expect(one).toContain('test_decisions_total{result="rate",source="memory"} 1');
    const merged = AggregatorRegistry.aggregate(await Promise.all(regs.map((r) => r.getMetricsAsJSON())));
    expect(await merged.metrics()).toContain('test_decisions_total{result="allowed",source="redis"} 3');
  });
});
