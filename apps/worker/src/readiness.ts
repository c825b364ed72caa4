import type { Redis } from 'ioredis';
import postgres, { type Sql } from 'postgres';

/** One dependency's state, as /readyz reports it: never an address or a driver's message. */
export type CheckState = 'ok' | 'down' | 'timeout';
export type Readiness = { ready: boolean; checks: Record<string, CheckState> };
export type ReadinessCheck = () => Promise<void>;

class CheckTimeout extends Error {}

function within(p: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CheckTimeout()), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Runs every check at once, each bounded by `timeoutMs`, so a dependency that hangs (a
 * blackholed host, a stopped process) costs the prober at most that long instead of the
 * driver's own connect timeout or forever.
 */
export async function checkReadiness(checks: Record<string, ReadinessCheck>, timeoutMs: number): Promise<Readiness> {
  const names = Object.keys(checks);
  const results = await Promise.all(
    names.map(async (name): Promise<CheckState> => {
      try {
        await within(checks[name]!(), timeoutMs);
        return 'ok';
      } catch (err) {
        return err instanceof CheckTimeout ? 'timeout' : 'down';
      }
    }),
  );
  const out: Record<string, CheckState> = {};
  names.forEach((n, i) => (out[n] = results[i]!));
  return { ready: results.every((r) => r === 'ok'), checks: out };
}

/** A sentence naming what is wrong, e.g. "redis is down; postgres timed out". */
export function describeReadiness(r: Readiness): string {
  const bad = Object.entries(r.checks).filter(([, s]) => s !== 'ok');
  if (bad.length === 0) return 'ready';
  return bad.map(([n, s]) => (s === 'timeout' ? `${n} did not answer in time` : `${n} is unreachable`)).join('; ');
}

/**
 * Redis: a connection that isn't up is answered at once. ioredis would park a PING in its
 * offline queue (the worker's connection has no retry limit, as BullMQ needs), and /readyz
 * would then not answer at all while Redis is away.
 */
export function redisCheck(redis: Redis): ReadinessCheck {
  return async () => {
    if (redis.status !== 'ready') throw new Error(`redis connection is ${redis.status}`);
    await redis.ping();
  };
}

/**
 * PostgreSQL on a connection of its own: the ingestion pool can be busy with group commits, and
 * a probe queued behind them would report a healthy database as down.
 */
export function createPostgresCheck(databaseUrl: string, timeoutMs: number): { check: ReadinessCheck; close: () => Promise<void> } {
  const sql: Sql = postgres(databaseUrl, {
    max: 1,
    idle_timeout: 60,
    connect_timeout: Math.max(1, Math.ceil(timeoutMs / 1000)),
    onnotice: () => {},
  });
  return {
    check: async () => {
      await sql`SELECT 1`;
    },
    close: () => sql.end({ timeout: 1 }),
  };
}
