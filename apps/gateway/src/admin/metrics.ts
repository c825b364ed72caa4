import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { PairCounter, RequestMetrics } from './request-metrics';

export type GatewayMetrics = ReturnType<typeof createMetrics>;

/** One registry per process; in cluster mode the primary aggregates the workers' registries. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tollgate_gateway_' });
  const requests = new RequestMetrics(registry);
  // Once per request: plain numbers, like the request metrics.
  const limiterDecisions = new PairCounter<'allowed' | 'rate' | 'quota' | 'unavailable', 'redis' | 'memory' | 'none'>(
    registry,
    'tollgate_gateway_limiter_decisions_total',
    'Rate limit and quota decisions, by result (allowed, rate, quota, unavailable) and source',
    ['result', 'source'],
  );
  const redisErrors = new Counter({
    name: 'tollgate_gateway_redis_errors_total',
    help: 'Redis calls that failed or timed out, by operation',
    labelNames: ['op'] as const,
    registers: [registry],
  });
  const upstreamErrors = new Counter({
    name: 'tollgate_gateway_upstream_errors_total',
    help: 'Upstream failures, by kind',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const keyCache = new Counter({
    name: 'tollgate_gateway_key_cache_total',
    help: 'API key cache lookups by result',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const spoolDepth = new Gauge({
    name: 'tollgate_gateway_usage_spool_depth',
    help: 'Usage batches waiting in the disk spool',
    registers: [registry],
  });
  const usageBuffered = new Gauge({
    name: 'tollgate_gateway_usage_buffered',
    help: 'Usage events waiting in memory',
    registers: [registry],
  });
  const configVersion = new Gauge({
    name: 'tollgate_gateway_config_version',
    help: 'Highest policy snapshot version loaded',
    registers: [registry],
    aggregator: 'min',
  });
  const configSource = new Gauge({
    name: 'tollgate_gateway_config_source',
    help: 'Where the configuration served was loaded from: 1 for redis, or for disk (the last good copy, Redis unreachable at boot)',
    labelNames: ['source'] as const,
    registers: [registry],
  });
  const tenants = new Gauge({ name: 'tollgate_gateway_tenants', help: 'Tenants loaded', registers: [registry], aggregator: 'min' });
  const inflight = new Gauge({ name: 'tollgate_gateway_inflight_requests', help: 'Requests in progress', registers: [registry] });
  const limiterFallback = new Counter({
    name: 'tollgate_gateway_limiter_fallback_total',
    help: 'Limit decisions Redis could not make, by reason (breaker_open, timeout, error, not_connected, input), fail mode and answer',
    labelNames: ['reason', 'mode', 'result'] as const,
    registers: [registry],
  });
  const localRefusals = new Counter({
    name: 'tollgate_gateway_limiter_local_refusals_total',
    help: 'Calls refused by the deny cache (a key Redis refused, until its reset) without a Redis round trip',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const coldKeys = new Counter({
    name: 'tollgate_gateway_cold_keys_total',
    help: 'Key lookups not answered by the cache, by how the one-round-trip script went',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const shed = new Counter({
    name: 'tollgate_gateway_shed_total',
    help: 'Requests answered 503 because the gateway was saturated and their tenant over its fair share, by tenant',
    labelNames: ['tenant'] as const,
    registers: [registry],
  });
  const breakerOpen = new Gauge({
    name: 'tollgate_gateway_redis_breaker_open',
    help: '1 while the Redis breaker is open or half-open (limits decided by the fail mode), else 0',
    registers: [registry],
    aggregator: 'max',
  });
  return {
    registry,
    requests,
    limiterDecisions,
    redisErrors,
    upstreamErrors,
    keyCache,
    spoolDepth,
    usageBuffered,
    configVersion,
    configSource,
    tenants,
    inflight,
    limiterFallback,
    localRefusals,
    coldKeys,
    shed,
    breakerOpen,
  };
}
