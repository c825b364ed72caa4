import { Counter, Gauge, type Registry } from 'prom-client';
import type { ReservingLimiter } from '@tollgate/ratelimit';

/** What limit reservations (docs/adr/0013-limit-reservations.md) did in this process. */
export function registerReservationMetrics(registry: Registry, limiter: ReservingLimiter): void {
  new Counter({
    name: 'tollgate_gateway_limit_reservations_total',
    help: 'Blocks of calls asked of Redis in advance, by result (refused = a limit was close: calls were decided one by one)',
    labelNames: ['result'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ result: 'granted' }, limiter.stats.granted);
      this.inc({ result: 'refused' }, limiter.stats.refused);
    },
  });
  new Counter({
    name: 'tollgate_gateway_limit_reserved_calls_total',
    help: 'Reserved calls, by use: decided without a round trip, released unused, or left counted because a release failed',
    labelNames: ['use'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ use: 'decided' }, limiter.stats.fromReservations);
      this.inc({ use: 'released' }, limiter.stats.released - limiter.stats.releaseFailed);
      this.inc({ use: 'release_failed' }, limiter.stats.releaseFailed);
    },
  });
  new Gauge({
    name: 'tollgate_gateway_limit_reservations_held',
    help: '(key, route) pairs holding unused reserved calls',
    registers: [registry],
    collect() {
      this.set(limiter.held());
    },
  });
}
