import { DelayedError, Worker, type Job } from 'bullmq';
import { z } from 'zod';
import type { Redis } from 'ioredis';
import type { Sql } from 'postgres';
import type { Logger } from '@tollgate/config';
import { QUEUES, type Keyspace } from '@tollgate/policy';
import { USAGE_JOB_NAME, UsageBatch, UsageEvent, isBillable } from '@tollgate/usage';
import { backoffMs, errorCode } from '../ingest/errors';
import { parkInvalidEvents, parkJob } from '../ingest/parked';
import { GroupCommit } from '../ingest/group-commit';
import type { Metrics } from '../metrics';
import type { WorkerTracing } from '../tracing';

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
  /** Backoff of a batch the database did not take: first delay, and the longest. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** OpenTelemetry (ADR 0027); absent or null = off. */
  tracing?: WorkerTracing | null;
};

/**
 * The `usage` queue's processor. A batch either applies in one transaction or not at all, and
 * applying it twice is a no-op, so BullMQ's at-least-once delivery (redelivery after a crash,
 * a stalled job picked up by another worker) becomes exactly-once in PostgreSQL.
 */
export function createUsageProcessor(
  opts: Pick<
    UsageWorkerOptions,
    'sql' | 'logger' | 'metrics' | 'groupMaxEvents' | 'groupsInFlight' | 'retryBaseMs' | 'retryMaxMs' | 'tracing'
  >,
) {
  const { logger, metrics } = opts;
  const groups = new GroupCommit(opts.sql, {
    maxEvents: opts.groupMaxEvents ?? 20_000,
    maxInFlight: opts.groupsInFlight ?? 2,
    trace: opts.tracing?.applyGroup ?? null,
    onGroup: (res, batches) => {
      metrics.groupBatches.observe(batches);
      metrics.rowsWritten.inc({ table: 'rollup' }, res.rollupRows);
      metrics.rowsWritten.inc({ table: 'ledger' }, res.ledgerRows);
      metrics.rowsWritten.inc({ table: 'batch' }, res.applied.filter(Boolean).length);
      if (res.orphanBillable) {
        metrics.orphanBillable.inc(res.orphanBillable);
        logger.warn({ events: res.orphanBillable }, 'billable events for unknown subscriptions were not billed');
      }
      for (const p of res.parked) {
        metrics.parkedEvents.inc({ reason: 'data-error' });
        logger.error(
          { parkedId: p.id, batchId: p.batchId, eventId: p.eventId, tenantId: p.tenantId, code: p.code, err: p.error },
          'usage event parked: PostgreSQL refuses its values (replay with `worker cli parked replay` once fixed)',
        );
      }
    },
  });
  return async (job: Job, token?: string): Promise<{ applied: boolean; events: number; parked?: number }> => {
    const split = job.name === USAGE_JOB_NAME ? splitBatch(job.data) : null;
    if (!split) {
      // Not a usage batch at all: kept whole, never retried (it can't get better).
      await parkJob(
        opts.sql,
        job,
        job.name === USAGE_JOB_NAME ? 'not a usage batch' : `unknown job name ${JSON.stringify(job.name).slice(0, 64)}`,
      );
      metrics.batches.inc({ result: 'malformed' });
      metrics.parkedEvents.inc({ reason: 'malformed' });
      logger.error({ jobId: job.id, name: String(job.name).slice(0, 64) }, 'usage job is not a usage batch: parked whole');
      return { applied: false, events: 0, parked: 1 };
    }
    const { batch, invalid } = split;
    const end = metrics.batchSeconds.startTimer();
    try {
      if (invalid.length) {
        // Events that are not usage events are parked; the rest of the batch is applied.
        await parkInvalidEvents(opts.sql, batch.batchId, invalid);
        metrics.parkedEvents.inc({ reason: 'malformed' }, invalid.length);
        logger.error(
          { jobId: job.id, batchId: batch.batchId, events: invalid.length, where: invalid[0]!.error },
          'malformed usage events parked',
        );
      }
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
      if (!token) throw err;
      // Everything that reaches here is retried, however long it takes: an outage, a read-only
      // failover, a full disk, a lock timeout, a bug in a deploy. Events that are themselves the
      // problem were parked inside the transaction and never get here. Retried by delaying the
      // job rather than through its `attempts`, which the producer chose and an outage would use up.
      const delay = backoffMs(job.attemptsStarted, opts.retryBaseMs, opts.retryMaxMs);
      metrics.batches.inc({ result: 'retried' });
      logger.warn(
        { jobId: job.id, batchId: batch.batchId, code: errorCode(err), err: (err as Error).message, delayMs: delay },
        'batch not applied; retried later',
      );
      await job.moveToDelayed(Date.now() + delay, token);
      throw new DelayedError();
    }
  };
}

type InvalidEvent = { index: number; raw: unknown; error: string };

/** The batch's valid events, and those that are not usage events (null: not a batch at all). */
function splitBatch(data: unknown): { batch: UsageBatch; invalid: InvalidEvent[] } | null {
  const envelope = UsageBatch.omit({ events: true })
    .extend({ events: z.array(z.unknown()) })
    .safeParse(data);
  if (!envelope.success) return null;
  const events: UsageEvent[] = [];
  const invalid: InvalidEvent[] = [];
  envelope.data.events.forEach((raw, index) => {
    const e = UsageEvent.safeParse(raw);
    if (e.success) events.push(e.data);
    else
      invalid.push({
        index,
        raw,
        error: e.error.issues
          .slice(0, 3)
          .map((i) => `${i.path.join('.')}: ${i.message}`)
          .join('; '),
      });
  });
  return { batch: { ...envelope.data, events }, invalid };
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
