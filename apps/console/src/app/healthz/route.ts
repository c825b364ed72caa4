import { getRuntime } from '@/server/shared/runtime';
import { checkHealth } from '@/server/shared/health';

export const dynamic = 'force-dynamic';

/** 200 when PostgreSQL answers within a second; otherwise a fast 503 that says why. */
export async function GET() {
  const { db, redis, log } = getRuntime();
  const health = await checkHealth({ db, redisStatus: redis.status, warn: (obj, msg) => log.warn(obj, msg) });
  return Response.json(health, { status: health.status === 'ok' ? 200 : 503, headers: { 'cache-control': 'no-store' } });
}
