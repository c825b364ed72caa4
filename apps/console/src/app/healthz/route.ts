import { getRuntime } from '@/server/shared/runtime';

export const dynamic = 'force-dynamic';

/** Ready when PostgreSQL answers; Redis only backs login rate limits, which fall back to memory. */
export async function GET() {
  const { db, redis, log } = getRuntime();
  try {
    await db.$queryRaw`SELECT 1`;
    return Response.json(
      { status: 'ok', redis: redis.status === 'ready' ? 'ok' : 'degraded' },
      { headers: { 'cache-control': 'no-store' } },
    );
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'health check: database unavailable');
    return Response.json({ status: 'unavailable' }, { status: 503, headers: { 'cache-control': 'no-store' } });
  }
}
