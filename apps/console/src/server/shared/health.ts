import type { Db } from '@tollgate/db';

/** Longest the console's /healthz waits on PostgreSQL before it answers 503. */
export const HEALTH_DB_TIMEOUT_MS = 1_000;

export type Health =
  | { status: 'ok'; redis: 'ok' | 'degraded' }
  | { status: 'unavailable'; reason: 'database_unavailable' | 'database_timeout'; redis: 'ok' | 'degraded' };

/**
 * Ready when PostgreSQL answers within the bound; Redis only backs the login/signup rate limits,
 * which fall back to memory, so a Redis outage is reported (`degraded`) but not a 503. A database
 * that refuses answers at once; one that hangs (a partition, a saturated pool) is cut off after
 * `timeoutMs`, so a load balancer's probe gets a fast 503 with the reason either way.
 */
export async function checkHealth(
  deps: { db: Pick<Db, '$queryRaw'>; redisStatus: string; warn: (obj: object, msg: string) => void },
  timeoutMs = HEALTH_DB_TIMEOUT_MS,
): Promise<Health> {
  const redis = deps.redisStatus === 'ready' ? 'ok' : 'degraded';
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    const outcome = await Promise.race([deps.db.$queryRaw`SELECT 1`.then(() => 'ok' as const), timedOut]);
    if (outcome === 'ok') return { status: 'ok', redis };
    deps.warn({ timeoutMs }, 'health check: database did not answer in time');
    return { status: 'unavailable', reason: 'database_timeout', redis };
  } catch (err) {
    deps.warn({ err: (err as Error).message }, 'health check: database unavailable');
    return { status: 'unavailable', reason: 'database_unavailable', redis };
  } finally {
    clearTimeout(timer);
  }
}
