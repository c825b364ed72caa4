import { Counter, Gauge, type Registry } from 'prom-client';
import type { ResponseCache } from './response-cache';

/** Cache counters and size, read from the cache at scrape time (nothing on the request path). */
export function registerCacheMetrics(registry: Registry, cache: ResponseCache): void {
  new Counter({
    name: 'tollgate_gateway_cache_requests_total',
    help: "Requests on caching routes, by result (hit, miss, bypass; coalesced = a miss served by another request's fill)",
    labelNames: ['result'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ result: 'hit' }, cache.counts.hit);
      this.inc({ result: 'miss' }, cache.counts.miss);
      this.inc({ result: 'bypass' }, cache.counts.bypass);
      this.inc({ result: 'coalesced' }, cache.counts.coalesced);
    },
  });
  new Counter({
    name: 'tollgate_gateway_cache_changes_total',
    help: 'Entries stored, evicted by the LRU bounds, and invalidated by policy changes',
    labelNames: ['change'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ change: 'stored' }, cache.counts.stored);
      this.inc({ change: 'evicted' }, cache.counts.evicted);
      this.inc({ change: 'invalidated' }, cache.counts.invalidated);
    },
  });
  new Gauge({
    name: 'tollgate_gateway_cache_entries',
    help: 'Responses held in the cache',
    registers: [registry],
    collect() {
      this.set(cache.size);
    },
  });
  new Gauge({
    name: 'tollgate_gateway_cache_bytes',
    help: 'Bytes held in the cache (bodies, headers, keys, overhead)',
    registers: [registry],
    collect() {
      this.set(cache.bytes);
    },
  });
}
