import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Sql } from 'postgres';
import type { Logger } from '@tollgate/config';
import type { Db } from '@tollgate/db';
import { QUEUES, type Keyspace } from '@tollgate/policy';
import { createStripeClient, createStripeWebhookHandler, reportMeterUsage } from '@tollgate/billing';
import { reconcileBilling } from '../billing/reconcile';
import type { WorkerConfig } from '../env';
import { compactRollups, pruneMinuteRollups, pruneProcessedBatches } from '../ingest/compact';
import { MINUTE_ROLLUP_KEEP_DAYS } from '@tollgate/usage';
import type { Metrics } from '../metrics';
import type { WebhookHandler } from '../server';
import type { WorkerTracing } from '../tracing';

/** The billing queue's jobs; names are versioned like every job payload. */
export const BILLING_JOBS = {
  meterReport: 'billing.meter-report.v1',
  compactRollups: 'billing.compact-rollups.v1',
  reconcile: 'billing.reconcile.v1',
} as const;

/** Hours behind now that each compaction run rebuilds (late batches land in them). */
const COMPACT_LOOKBACK_MS = 3 * 3_600_000;

export type BillingQueueOptions = {
  config: WorkerConfig;
  redis: Redis;
  keyspace: Keyspace;
  sql: Sql;
  db: Db;
  logger: Logger;
  metrics: Metrics;
  /** OpenTelemetry (ADR 0027): a span per job, Stripe calls under it; absent or null = off. */
  tracing?: WorkerTracing | null;
};

/**
 * The scheduled side of the worker: meter reporting, rollup compaction and reconciliation run
 * as BullMQ job schedulers on the `billing` queue, so with several worker processes each run
 * happens once, on whichever process takes it.
 */
export async function startBillingQueue(opts: BillingQueueOptions) {
  const { config, logger, metrics } = opts;
  const stripe = createStripeClient(config.stripe);
  if (!stripe) logger.info('Stripe not configured: usage is metered and rated, nothing is sent to Stripe');
  const tracing = opts.tracing ?? null;
  if (stripe && tracing) tracing.traceStripe(stripe);

  const webhook: WebhookHandler | null = config.stripe.webhookSecret
    ? createStripeWebhookHandler({
        db: opts.db,
        webhookSecret: config.stripe.webhookSecret,
        logger,
        onResult: (result) => metrics.webhooks.inc({ result }),
      })
    : null;

  const prefix = opts.keyspace.bullPrefix;
  const queue = new Queue(QUEUES.billing, { connection: opts.redis, prefix });
  const keep = { removeOnComplete: { count: 100 }, removeOnFail: { count: 500 } };
  const schedulers = [
    { id: 'meter-report', every: config.meterReportEveryMs, name: BILLING_JOBS.meterReport },
    { id: 'compact-rollups', every: config.compactEveryMs, name: BILLING_JOBS.compactRollups },
    { id: 'reconcile', every: config.reconcileEveryMs, name: BILLING_JOBS.reconcile },
  ];
  const upsertSchedulers = async () => {
    for (const s of schedulers) await queue.upsertJobScheduler(s.id, { every: s.every }, { name: s.name, data: {}, opts: keep });
  };
  await upsertSchedulers();
  // Schedulers live in Redis: a flush, a restart without persistence or a failover to an empty
  // replica deletes them, and billing would stop until a restart. Each worker checks they still
  // exist and recreates the missing ones (upserting is idempotent, so two workers racing is fine).
  const healSchedulers = async () => {
    const missing = [];
    for (const s of schedulers) if (!(await queue.getJobScheduler(s.id))) missing.push(s.id);
    if (!missing.length) return;
    await upsertSchedulers();
    metrics.schedulersRestored.inc(missing.length);
    logger.warn({ schedulers: missing }, 'job schedulers missing from Redis (data loss): recreated');
  };
  let healing: Promise<void> | null = null;
  const healTimer = setInterval(() => {
    if (healing) return;
    healing = healSchedulers()
      .catch((err: Error) => logger.warn({ err: err.message }, 'scheduler check failed; will retry'))
      .finally(() => {
        healing = null;
      });
  }, config.schedulerCheckMs);
  healTimer.unref();

  const processor = async (job: Job) => {
    switch (job.name) {
      case BILLING_JOBS.meterReport: {
        const res = await reportMeterUsage({
          db: opts.db,
          stripe,
          logger,
          settleMs: config.meterSettleMs,
          throughNow: config.meterReportRunningHour,
        });
        metrics.meterEvents.inc({ result: 'sent' }, res.sent);
        metrics.meterEvents.inc({ result: 'duplicate' }, res.duplicates);
        metrics.meterEvents.inc({ result: 'failed' }, res.failed);
        return { ...res, quantity: res.quantity.toString() };
      }
      case BILLING_JOBS.compactRollups: {
        const now = Date.now();
        const res = await compactRollups(opts.sql, { from: new Date(now - COMPACT_LOOKBACK_MS), to: new Date(now) });
        const pruned = await pruneProcessedBatches(opts.sql, config.processedBatchKeepDays);
        const prunedMinutes = await pruneMinuteRollups(opts.sql, MINUTE_ROLLUP_KEEP_DAYS);
        return { hourRows: res.hourRows, dayRows: res.dayRows, prunedBatchIds: pruned, prunedMinuteRows: prunedMinutes };
      }
      case BILLING_JOBS.reconcile: {
        const res = await reconcileBilling({
          db: opts.db,
          redis: opts.redis,
          keyspace: opts.keyspace,
          stripe,
          logger,
          metrics,
          settleMs: config.meterSettleMs,
        });
        return { checked: res.checked, mismatches: res.mismatches.length, fixed: res.fixed };
      }
      default:
        throw new UnrecoverableError(`unknown billing job ${JSON.stringify(job.name).slice(0, 64)}`);
    }
  };
  const traced = tracing ? (job: Job) => tracing.job(job.name, () => processor(job)) : processor;
  const worker = new Worker(QUEUES.billing, traced, { connection: opts.redis, prefix, concurrency: 1 });
  worker.on('completed', (job) => metrics.jobLastSuccess.set({ job: job.name }, Date.now() / 1000));
  worker.on('failed', (job, err) => {
    metrics.jobFailures.inc({ queue: QUEUES.billing });
    logger.error({ jobId: job?.id, job: job?.name, err: err.message }, 'billing job failed');
  });
  worker.on('error', (err) => logger.error({ err: err.message }, 'billing worker error'));

  return {
    stripe,
    webhook,
    queue,
    healSchedulers,
    stop: async () => {
      clearInterval(healTimer);
      await healing;
      await worker.close();
      await queue.close();
    },
  };
}
