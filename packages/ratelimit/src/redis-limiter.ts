import type { Cluster, Redis } from 'ioredis';
import { DECIDE_LUA } from './lua';
import { buildDecision } from './decision';
import { validateDecideRequest } from './validate';
import type { DecideRequest, Limiter, LimitOutcome } from './types';

const ALGORITHM_CODE = { fixed_window: 1, sliding_window: 2, gcra: 3, token_bucket: 4 } as const;
const COMMAND = 'tollgateDecideV1';
/** Quota counters outlive their period by this much so late readers still see the final count. */
export const QUOTA_EXPIRY_GRACE_MS = 3_600_000;

type DecideCommand = (numKeys: number, ...args: (string | number)[]) => Promise<number[]>;

export type RedisLimiterOptions = {
  /**
   * A dedicated or shared ioredis client (or Cluster). It must NOT queue commands while
   * disconnected (`enableOfflineQueue: false`), and should use `maxRetriesPerRequest: 0|1`,
   * else a dead Redis turns into a queue of stalled requests behind it.
   */
  redis: Redis | Cluster;
  /** Upper bound on one decision's wait; past it the answer is `unavailable`. Default 50 ms. */
  timeoutMs?: number;
};

export type RedisLimiter = Limiter & {
  /** Arguments as sent to the script, for benchmarks and debugging. */
  readonly timeoutMs: number;
};

/**
 * Limits decided by one EVALSHA (ioredis falls back to EVAL on NOSCRIPT). Redis trouble of any
 * kind — not connected, an error, or no answer within `timeoutMs` — comes back as
 * `{ kind: 'unavailable' }`; only bad input rejects (LimitInputError), before any I/O.
 */
export function createRedisLimiter({ redis, timeoutMs = 50 }: RedisLimiterOptions): RedisLimiter {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`timeoutMs must be a positive number, got ${timeoutMs}`);
  const client = redis as (Redis | Cluster) & { [COMMAND]?: DecideCommand };
  if (typeof client[COMMAND] !== 'function') client.defineCommand(COMMAND, { lua: DECIDE_LUA });
  const run = client[COMMAND]!.bind(client);

  async function decide(req: DecideRequest): Promise<LimitOutcome> {
    validateDecideRequest(req);
    // Offline clients fail fast; 'connect' is what a Cluster reports once it is usable.
    if (client.status !== 'ready' && !(client.isCluster && client.status === 'connect')) {
      return { kind: 'unavailable', reason: 'not_connected', message: `redis is ${client.status}` };
    }
    const cost = req.cost ?? 1;
    const keys: string[] = [];
    const args: (string | number)[] = [req.rates.length, req.quota ? 1 : 0, cost];
    for (const r of req.rates) {
      keys.push(r.key);
      args.push(ALGORITHM_CODE[r.algorithm], r.limit, r.windowSeconds * 1000);
    }
    if (req.quota) {
      keys.push(req.quota.key);
      args.push(req.quota.limit, req.quota.mode === 'hard_cap' ? 0 : 1, req.quota.periodEnd, QUOTA_EXPIRY_GRACE_MS);
    }
    let timer: NodeJS.Timeout | undefined;
    const call = run(keys.length, ...keys, ...args);
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(resolve, timeoutMs, 'timeout');
    });
    try {
      const reply = await Promise.race([call, timeout]);
      if (reply === 'timeout') {
        // The late reply (or error) must not surface as an unhandled rejection.
        call.catch(() => undefined);
        return { kind: 'unavailable', reason: 'timeout', message: `redis did not answer within ${timeoutMs} ms` };
      }
      return buildDecision(req, reply, 'redis');
    } catch (err) {
      return { kind: 'unavailable', reason: 'error', message: (err as Error).message };
    } finally {
      clearTimeout(timer);
    }
  }

  return { decide, timeoutMs };
}
