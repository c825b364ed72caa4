import { Redis } from 'ioredis';
import { createPrismaClient, type Db } from '@tollgate/db';
import { createKeyspace, type Keyspace } from '@tollgate/policy';
import { createLogger, type Logger } from '@tollgate/config';
import { loadConsoleConfig, type ConsoleConfig } from '../../env';

export type Runtime = { config: ConsoleConfig; db: Db; redis: Redis; keyspace: Keyspace; log: Logger };

// One instance per process; kept on globalThis so dev-mode module reloads don't open new pools.
const holder = globalThis as unknown as { __tollgateConsole?: Runtime };

/** Parses the environment on first use and builds the process's shared clients. */
export function getRuntime(): Runtime {
  if (!holder.__tollgateConsole) {
    const config = loadConsoleConfig();
    const log = createLogger('console', config.logLevel);
    const redis = new Redis(config.redisUrl, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
    });
    redis.on('error', (err) => log.warn({ err: err.message }, 'redis unavailable'));
    redis.connect().catch(() => undefined);
    holder.__tollgateConsole = {
      config,
      db: createPrismaClient(config.databaseUrl),
      redis,
      keyspace: createKeyspace(config.redisPrefix),
      log,
    };
  }
  return holder.__tollgateConsole;
}
