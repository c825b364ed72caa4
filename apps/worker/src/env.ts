import { z } from 'zod';
import { booleanFromEnv, commonConfig, commonEnv, parseEnv } from '@tollgate/config';
import { telemetryEnv, tracingConfig } from '@tollgate/telemetry';

const ms = (fallback: number) => z.coerce.number().int().min(10).max(86_400_000).default(fallback);

export const WorkerEnv = {
  ...commonEnv,
  /** OpenTelemetry (ADR 0027): off unless an OTLP endpoint is set. */
  ...telemetryEnv,
  DATABASE_URL: z.string().url(),
  WORKER_HOST: z.string().default('0.0.0.0'),
  WORKER_PORT: z.coerce.number().int().min(0).max(65_535).default(9090),
  /** Usage jobs in flight per process; those that arrive together are committed together. */
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(48),
  /** A group commit stops growing at this many events. */
  WORKER_GROUP_MAX_EVENTS: z.coerce.number().int().min(1).max(1_000_000).default(20_000),
  /** Usage transactions at once per process. */
  WORKER_DB_PARALLEL: z.coerce.number().int().min(1).max(32).default(2),
  /** A dead worker's batch is picked up by another after this long. */
  WORKER_LOCK_DURATION_MS: ms(30_000),
  WORKER_STALLED_INTERVAL_MS: ms(30_000),
  /**
   * A batch the database did not take (outage, read-only failover, full disk, lock timeout...)
   * is retried after this, doubling up to WORKER_RETRY_MAX_MS, for as long as it takes.
   */
  WORKER_RETRY_BASE_MS: ms(500),
  WORKER_RETRY_MAX_MS: ms(30_000),
  /** How often the worker checks that its job schedulers still exist in Redis (recreated if not). */
  SCHEDULER_CHECK_MS: ms(5_000),
  /** Longest /readyz waits on PostgreSQL or Redis before it answers 503. */
  WORKER_READY_TIMEOUT_MS: ms(1_000),
  /** Without a key nothing is sent to Stripe; usage is still metered, rated and shown. */
  STRIPE_SECRET_KEY: z.string().min(1).optional(),
  STRIPE_WEBHOOK_SECRET: z.string().min(1).optional(),
  STRIPE_API_HOST: z.string().min(1).optional(),
  STRIPE_API_PORT: z.coerce.number().int().min(1).max(65_535).optional(),
  STRIPE_API_PROTOCOL: z.enum(['http', 'https']).optional(),
  STRIPE_TIMEOUT_MS: ms(20_000),
  /** Meter events are sent for closed hours, this long after the hour ends (late batches settle). */
  METER_SETTLE_MS: z.coerce.number().int().min(0).max(86_400_000).default(120_000),
  METER_REPORT_EVERY_MS: ms(60_000),
  /**
   * Also report the running hour, as deltas, every run: Stripe sees usage within
   * METER_REPORT_EVERY_MS instead of after the hour closes, at up to one more meter event per
   * subscription-hour per run. Late batches are still reported (as further deltas).
   */
  METER_REPORT_RUNNING_HOUR: booleanFromEnv(false),
  COMPACT_EVERY_MS: ms(60_000),
  RECONCILE_EVERY_MS: ms(900_000),
  OUTBOX_POLL_MS: ms(1_000),
  /** How often the worker checks that Redis still holds the published state (republishes if not); 0 = never. */
  REDIS_RESTORE_CHECK_MS: z.coerce.number().int().min(0).max(3_600_000).default(5_000),
  /** Batch ids are remembered this long (a batch can only be redelivered while a producer holds it). */
  PROCESSED_BATCH_KEEP_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
};

export type WorkerConfig = ReturnType<typeof toConfig>;

function toConfig(e: ReturnType<typeof parseEnv<typeof WorkerEnv>>) {
  return {
    ...commonConfig(e),
    databaseUrl: e.DATABASE_URL,
    host: e.WORKER_HOST,
    port: e.WORKER_PORT,
    concurrency: e.WORKER_CONCURRENCY,
    groupMaxEvents: e.WORKER_GROUP_MAX_EVENTS,
    dbParallel: e.WORKER_DB_PARALLEL,
    lockDurationMs: e.WORKER_LOCK_DURATION_MS,
    stalledIntervalMs: e.WORKER_STALLED_INTERVAL_MS,
    retryBaseMs: e.WORKER_RETRY_BASE_MS,
    retryMaxMs: e.WORKER_RETRY_MAX_MS,
    schedulerCheckMs: e.SCHEDULER_CHECK_MS,
    readyTimeoutMs: e.WORKER_READY_TIMEOUT_MS,
    /** `secretKey` undefined = nothing is sent to Stripe. */
    stripe: {
      secretKey: e.STRIPE_SECRET_KEY,
      webhookSecret: e.STRIPE_WEBHOOK_SECRET,
      host: e.STRIPE_API_HOST,
      port: e.STRIPE_API_PORT,
      protocol: e.STRIPE_API_PROTOCOL,
      timeoutMs: e.STRIPE_TIMEOUT_MS,
    },
    meterSettleMs: e.METER_SETTLE_MS,
    meterReportEveryMs: e.METER_REPORT_EVERY_MS,
    meterReportRunningHour: e.METER_REPORT_RUNNING_HOUR,
    compactEveryMs: e.COMPACT_EVERY_MS,
    reconcileEveryMs: e.RECONCILE_EVERY_MS,
    outboxPollMs: e.OUTBOX_POLL_MS,
    /** 0 = never check. */
    redisRestoreCheckMs: e.REDIS_RESTORE_CHECK_MS,
    processedBatchKeepDays: e.PROCESSED_BATCH_KEEP_DAYS,
    /** OpenTelemetry from the OTEL_* variables (ADR 0027); null = off. */
    tracing: tracingConfig(e, 'tollgate-worker'),
  };
}

/** Parses the worker's environment once, at boot; throws EnvError naming every bad variable. */
export function loadWorkerConfig(env: Record<string, string | undefined> = process.env): WorkerConfig {
  return toConfig(parseEnv(WorkerEnv, env));
}

/** The operator CLI (`src/cli.ts`): only what it connects to. */
export const WorkerCliEnv = {
  ...commonEnv,
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgresql:// URL'),
};

export type WorkerCliConfig = ReturnType<typeof commonConfig> & { databaseUrl: string };

export function loadWorkerCliConfig(env: Record<string, string | undefined> = process.env): WorkerCliConfig {
  const e = parseEnv(WorkerCliEnv, env);
  return { ...commonConfig(e), databaseUrl: e.DATABASE_URL };
}
