import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import type { Logger } from '@tollgate/config';
import { createPrismaClient, createRestoreWatch, startOutboxRelay } from '@tollgate/db';
import { createKeyspace } from '@tollgate/policy';
import { createSql } from './db';
import type { WorkerConfig } from './env';
import { createMetrics } from './metrics';
import { startUsageWorker } from './queues/usage';
import { startBillingQueue } from './queues/billing';
import { createHttpServer } from './server';
import { checkReadiness, createPostgresCheck, redisCheck } from './readiness';

export type WorkerApp = { port: number; stop: () => Promise<void> };

/** Wires the worker's processors, schedules and HTTP endpoints from parsed config. */
export async function startWorkerApp(config: WorkerConfig, logger: Logger): Promise<WorkerApp> {
  const keyspace = createKeyspace(config.REDIS_PREFIX);
  const metrics = createMetrics();
  const sql = createSql(config.DATABASE_URL, config.WORKER_DB_PARALLEL + 2);
  const db = createPrismaClient(config.DATABASE_URL, { max: 4 });
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });

  const usage = startUsageWorker({
    redis,
    keyspace,
    sql,
    logger,
    metrics,
    concurrency: config.WORKER_CONCURRENCY,
    groupMaxEvents: config.WORKER_GROUP_MAX_EVENTS,
    groupsInFlight: config.WORKER_DB_PARALLEL,
    lockDurationMs: config.WORKER_LOCK_DURATION_MS,
    stalledIntervalMs: config.WORKER_STALLED_INTERVAL_MS,
    retryBaseMs: config.WORKER_RETRY_BASE_MS,
    retryMaxMs: config.WORKER_RETRY_MAX_MS,
  });
  const billing = await startBillingQueue({ config, redis, keyspace, sql, db, logger, metrics });

  // Webhook-driven key suspensions reach the gateways through this relay (any process may run one).
  const relay = startOutboxRelay({ db, databaseUrl: config.DATABASE_URL, redis, keyspace, logger, pollMs: config.OUTBOX_POLL_MS });
  // A Redis that lost its data (restart without persistence, flush, empty replica) is rebuilt from
  // PostgreSQL without an operator: keys would otherwise be refused once gateway caches expire.
  const restore = createRestoreWatch({ db, redis, keyspace, logger, intervalMs: config.REDIS_RESTORE_CHECK_MS || undefined });
  if (config.REDIS_RESTORE_CHECK_MS > 0) restore.start();

  const postgresCheck = createPostgresCheck(config.DATABASE_URL, config.WORKER_READY_TIMEOUT_MS);
  const server = createHttpServer({
    logger,
    metrics,
    ready: () => checkReadiness({ postgres: postgresCheck.check, redis: redisCheck(redis) }, config.WORKER_READY_TIMEOUT_MS),
    stripeWebhook: billing.webhook,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.WORKER_PORT, config.WORKER_HOST, () => resolve());
  });
  void usage.run();

  return {
    port: (server.address() as AddressInfo).port,
    stop: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await usage.close();
      await billing.stop();
      await restore.stop();
      await relay.stop();
      await sql.end({ timeout: 5 });
      await postgresCheck.close();
      await db.$disconnect();
      redis.disconnect();
    },
  };
}
