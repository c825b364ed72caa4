import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export type ConsoleMetrics = { registry: Registry; apiRequests: Counter<'method' | 'status'>; apiDuration: Histogram<'method'> };

// One registry per process, kept on globalThis: Next may evaluate this module in more than one bundle.
const holder = globalThis as unknown as { __tollgateConsoleMetrics?: ConsoleMetrics };

export function getMetrics(): ConsoleMetrics {
  if (!holder.__tollgateConsoleMetrics) {
    const registry = new Registry();
    registry.setDefaultLabels({ service: 'console' });
    collectDefaultMetrics({ register: registry });
    holder.__tollgateConsoleMetrics = {
      registry,
      apiRequests: new Counter({
        name: 'tg_console_admin_api_requests_total',
        help: 'Admin API requests by method and status',
        labelNames: ['method', 'status'],
        registers: [registry],
      }),
      apiDuration: new Histogram({
        name: 'tg_console_admin_api_duration_seconds',
        help: 'Admin API request duration',
        labelNames: ['method'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers: [registry],
      }),
    };
  }
  return holder.__tollgateConsoleMetrics;
}
