import { getRuntime } from '@/server/shared/runtime';
import { createUsageExportHandler } from '@/server/console/usage-export';

export const dynamic = 'force-dynamic';

export const GET = createUsageExportHandler(() => {
  const rt = getRuntime();
  return { db: rt.db, redis: rt.redis, keyspace: rt.keyspace, sessionSecret: rt.config.sessionSecret, log: rt.log };
});
