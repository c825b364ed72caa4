import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Sql } from 'postgres';
import type { Logger } from '@tollgate/config';
import { QUEUES, type Keyspace } from '@tollgate/policy';
import { USAGE_JOB_NAME, UsageBatch, isBillable } from '@tollgate/usage';
import { backoffMs, isTransientDbError } from '../ingest/errors';
import { GroupCommit } from '../ingest/group-commit';
import type { Metrics } from '../metrics';

export type UsageWorkerOptions = {
  redis: Redis;
  keyspace: Keyspace;
  sql: Sql;
  logger: Logger;
  metrics: Metrics;
  /** Jobs in flight per process; batches that arrive together are committed together. */
  concurrency: number;
  /** Events per group commit (default 20,000). */
  groupMaxEvents?: number;
  /** Transactions at once per process (default 2). */
  groupsInFlight?: number;
  /** How long a job's lock lives without renewal; a killed worker's batch is retried after it. */
  lockDurationMs: number;
  stalledIntervalMs: number;
};

/**
 * The `usage` queue's processor. A batch either applies in one transaction or not at all, and
 * applying it twice is a no-op, so BullMQ's at-least-once delivery (redelivery after a crash,
 * a stalled job picked up by another worker) becomes exactly-once in PostgreSQL.
 */
export function createUsageProcessor(opts: Pick<UsageWorkerOptions, 'sql' | 'logger' | 'metrics' | 'groupMaxEvents' | 'groupsInFlight'>) {
  const { logger, metrics } = opts;
  const groups = new GroupCommit(opts.sql, {
    maxEvents: opts.groupMaxEvents ?? 20_000,
    maxInFlight: opts.groupsInFlight ?? 2,
    onGroup: (res, batches) => {
      metrics.groupBatches.observe(batches);
      metrics.rowsWritten.inc({ table: 'rollup' }, res.rollupRows);
      metrics.rowsWritten.inc({ table: 'ledger' }, res.ledgerRows);
      metrics.rowsWritten.inc({ table: 'batch' }, res.applied.filter(Boolean).length);
      if (res.orphanBillable) {
        metrics.orphanBillable.inc(res.orphanBillable);
        logger.warn({ events: res.orphanBillable }, 'billable events for unknown subscriptions were not billed');
      }
    },
  });
  return async (job: Job, token?: string): Promise<{ applied: boolean; events: number }> => {
    if (job.name !== USAGE_JOB_NAME) {
      metrics.batches.inc({ result: 'malformed' });
      throw new UnrecoverableError(`unknown job name ${JSON.stringify(job.name).slice(0, 64)}`);
    }
    const parsed = UsageBatch.safeParse(job.data);
    if (!parsed.success) {
      metrics.batches.inc({ result: 'malformed' });
      const where = parsed.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.')}: ${i.message}`)
        .join('; ');
      throw new UnrecoverableError(`malformed usage batch: ${where}`);
    }
    const batch = parsed.data;
    const end = metrics.batchSeconds.startTimer();
    try {
      const { applied } = await groups.apply(batch);
      end();
      if (applied) {
        const billable = batch.events.reduce((n, e) => (isBillable(e) ? n + 1 : n), 0);
        metrics.batches.inc({ result: 'applied' });
        metrics.events.inc(batch.events.length);
        metrics.billableEvents.inc(billable);
        return { applied, events: batch.events.length };
      }
      metrics.batches.inc({ result: 'duplicate' });
      logger.info({ jobId: job.id, batchId: batch.batchId }, 'batch already applied; skipped');
      return { applied, events: 0 };
    } catch (err) {
      end();
      if (isTransientDbError(err) && token) {
        // Retried here rather than through the job's `attempts`, which the producer chose: a
        // database outage must never use up a batch's attempts and drop it.
        const delay = backoffMs(job.attemptsStarted);
        metrics.batches.inc({ result: 'retried' });
        logger.warn(
          { jobId: job.id, batchId: batch.batchId, err: (err as Error).message, delayMs: delay },
          'database unavailable; batch retried later',
        );
        await job.moveToDelayed(Date.now() + delay, token);
        throw new DelayedError();
      }
      metrics.batches.inc({ result: 'failed' });
      logger.error({ jobId: job.id, batchId: batch.batchId, err }, 'batch failed permanently');
      throw new UnrecoverableError(`batch ${batch.batchId} cannot be applied: ${(err as Error).message}`);
    }
  };
}

export function startUsageWorker(opts: UsageWorkerOptions): Worker {
  const worker = new Worker(QUEUES.usage, createUsageProcessor(opts), {
    connection: opts.redis,
    prefix: opts.keyspace.bullPrefix,
    concurrency: opts.concurrency,
    lockDuration: opts.lockDurationMs,
    stalledInterval: opts.stalledIntervalMs,
    // Applying a batch twice is harmless, so a batch that stalls (its worker died) is always
    // retried, never failed for stalling too often.
    maxStalledCount: 1_000_000,
    autorun: false,
  });
  worker.on('failed', (job, err) => {
    if (err instanceof DelayedError || err.name === 'DelayedError') return;
    opts.metrics.jobFailures.inc({ queue: QUEUES.usage });
    opts.logger.error({ jobId: job?.id, err: err.message }, 'usage job failed');
  });
  worker.on('error', (err) => opts.logger.error({ err: err.message }, 'usage worker error'));
  return worker;
}
