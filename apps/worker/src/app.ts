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
import { startWorkerTracing } from './tracing';

export type WorkerApp = { port: number; stop: () => Promise<void> };

/** Wires the worker's processors, schedules and HTTP endpoints from parsed config. */
export async function startWorkerApp(config: WorkerConfig, logger: Logger): Promise<WorkerApp> {
  const keyspace = createKeyspace(config.redisPrefix);
  const metrics = createMetrics();
  const sql = createSql(config.databaseUrl, config.dbParallel + 2);
  const db = createPrismaClient(config.databaseUrl, { max: 4 });
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  const tracing = await startWorkerTracing(config, logger);

  const usage = startUsageWorker({
    redis,
    keyspace,
    sql,
    logger,
    metrics,
    concurrency: config.concurrency,
    groupMaxEvents: config.groupMaxEvents,
    groupsInFlight: config.dbParallel,
    lockDurationMs: config.lockDurationMs,
    stalledIntervalMs: config.stalledIntervalMs,
    retryBaseMs: config.retryBaseMs,
    retryMaxMs: config.retryMaxMs,
    tracing,
  });
  const billing = await startBillingQueue({ config, redis, keyspace, sql, db, logger, metrics, tracing });

  // Webhook-driven key suspensions reach the gateways through this relay (any process may run one).
  const relay = startOutboxRelay({ db, databaseUrl: config.databaseUrl, redis, keyspace, logger, pollMs: config.outboxPollMs });
  // A Redis that lost its data (restart without persistence, flush, empty replica) is rebuilt from
  // PostgreSQL without an operator: keys would otherwise be refused once gateway caches expire.
  const restore = createRestoreWatch({ db, redis, keyspace, logger, intervalMs: config.redisRestoreCheckMs || undefined });
  if (config.redisRestoreCheckMs > 0) restore.start();

  const postgresCheck = createPostgresCheck(config.databaseUrl, config.readyTimeoutMs);
  const server = createHttpServer({
    logger,
    metrics,
    ready: () => checkReadiness({ postgres: postgresCheck.check, redis: redisCheck(redis) }, config.readyTimeoutMs),
    stripeWebhook: billing.webhook,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  void usage.run();

  return {
    port: (server.address() as AddressInfo).port,
    stop: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await usage.close();
      await billing.stop();
      // Spans of the last batches and jobs go out before the connections close.
      await tracing?.tracing.shutdown().catch((err: Error) => logger.warn({ err: err.message }, 'trace export at shutdown failed'));
      await restore.stop();
      await relay.stop();
      await sql.end({ timeout: 5 });
      await postgresCheck.close();
      await db.$disconnect();
      redis.disconnect();
    },
  };
}
