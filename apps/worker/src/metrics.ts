import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The worker's Prometheus metrics, on one registry per process (tests build their own). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    batches: new Counter({
      name: 'tollgate_usage_batches_total',
      help: 'Usage batches handled, by result (applied, duplicate, malformed, retried, parked).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    events: new Counter({ name: 'tollgate_usage_events_applied_total', help: 'Usage events applied to rollups.', registers: [registry] }),
    billableEvents: new Counter({
      name: 'tollgate_usage_billable_events_total',
      help: 'Billable usage events added to the ledger.',
      registers: [registry],
    }),
    orphanBillable: new Counter({
      name: 'tollgate_usage_orphan_billable_events_total',
      help: 'Billable events whose subscription no longer exists (not billed).',
      registers: [registry],
    }),
    rowsWritten: new Counter({
      name: 'tollgate_usage_rows_written_total',
      help: 'Rollup and ledger rows upserted.',
      labelNames: ['table'] as const,
      registers: [registry],
    }),
    groupBatches: new Histogram({
      name: 'tollgate_usage_group_batches',
      help: 'Batches committed together per transaction.',
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: 'tollgate_usage_batch_seconds',
      help: 'Time to apply one batch.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    meterEvents: new Counter({
      name: 'tollgate_stripe_meter_events_total',
      help: 'Meter events sent to Stripe, by result.',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    webhooks: new Counter({
      name: 'tollgate_stripe_webhooks_total',
      help: 'Stripe webhook deliveries, by result.',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    reconcileMismatches: new Gauge({
      name: 'tollgate_reconcile_mismatches',
      help: 'Mismatches found by the last reconciliation run, by kind.',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    reconcileFixed: new Counter({
      name: 'tollgate_reconcile_fixed_total',
      help: 'Mismatches reconciliation repaired, by kind.',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    parkedEvents: new Counter({
      name: 'tollgate_usage_parked_events_total',
      help: 'Usage events parked because of their own data (not applied; list and replay them with the worker CLI), by reason.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    jobLastSuccess: new Gauge({
      name: 'tollgate_worker_job_last_success_timestamp_seconds',
      help: 'When each scheduled job last completed (alert when it falls behind its interval).',
      labelNames: ['job'] as const,
      registers: [registry],
    }),
    schedulersRestored: new Counter({
      name: 'tollgate_worker_schedulers_restored_total',
      help: 'Job schedulers recreated after Redis lost them.',
      registers: [registry],
    }),
    jobFailures: new Counter({
      name: 'tollgate_worker_job_failures_total',
      help: 'Jobs that failed, by queue.',
      labelNames: ['queue'] as const,
      registers: [registry],
    }),
  };
  return m;
}
export type Metrics = ReturnType<typeof createMetrics>;
