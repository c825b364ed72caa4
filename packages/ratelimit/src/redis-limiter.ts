import { performance } from 'node:perf_hooks';
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

/** One decision waiting for Redis; settled by the reply, the error or the deadline, whichever is first. */
type Waiter = {
  req: DecideRequest;
  deadline: number;
  settled: boolean;
  resolve: (outcome: LimitOutcome) => void;
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

  // Every wait has the same length, so deadlines come in order: one FIFO and one timer armed
  // for the oldest open wait replace a setTimeout/clearTimeout pair and a Promise.race per call.
  const waiting: Waiter[] = [];
  let head = 0;
  let timer: NodeJS.Timeout | null = null;

  function dropSettledHead(): void {
    while (head < waiting.length && waiting[head]!.settled) head++;
    if (head === waiting.length) {
      waiting.length = 0;
      head = 0;
    } else if (head > 1024) {
      waiting.splice(0, head);
      head = 0;
    }
  }

  function expire(): void {
    timer = null;
    const now = performance.now();
    while (head < waiting.length) {
      const w = waiting[head]!;
      if (!w.settled) {
        if (w.deadline > now) {
          timer = setTimeout(expire, Math.max(1, Math.ceil(w.deadline - now)));
          break;
        }
        w.settled = true;
        w.resolve({ kind: 'unavailable', reason: 'timeout', message: `redis did not answer within ${timeoutMs} ms` });
      }
      head++;
    }
    dropSettledHead();
  }

  function onReply(this: Waiter, reply: number[]): void {
    if (this.settled) return;
    this.settled = true;
    let outcome: LimitOutcome;
    try {
      outcome = buildDecision(this.req, reply, 'redis');
    } catch (err) {
      outcome = { kind: 'unavailable', reason: 'error', message: (err as Error).message };
    }
    this.resolve(outcome);
    dropSettledHead();
  }

  // A late error (after the deadline) lands here too and is swallowed: never an unhandled rejection.
  function onError(this: Waiter, err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve({ kind: 'unavailable', reason: 'error', message: (err as Error).message });
    dropSettledHead();
  }

  // Under load, decisions asked for in one event-loop turn leave in one write: the socket is
  // corked and uncorked once the turn's I/O callbacks have run (setImmediate), so N concurrent
  // requests cost one syscall to Redis and, usually, one read of N replies instead of N each.
  // Only while another decision is already waiting on Redis: a lone request is written at once.
  // A Cluster spreads commands over several sockets and is left alone.
  let corked: NodeJS.WritableStream & { uncork(): void } | null = null;
  const uncork = () => {
    const s = corked;
    corked = null;
    s?.uncork();
  };
  function corkForThisTurn(): void {
    if (corked !== null || head === waiting.length || client.isCluster) return;
    const stream = (client as Redis).stream;
    if (!stream || typeof stream.cork !== 'function') return;
    stream.cork();
    corked = stream;
    setImmediate(uncork);
  }

  function send(req: DecideRequest): Promise<LimitOutcome> {
    const cost = req.cost ?? 1;
    const rates = req.rates;
    const quota = req.quota;
    const numKeys = rates.length + (quota ? 1 : 0);
    // KEYS then ARGV in one array: ioredis flattens an array argument.
    const argv: (string | number)[] = new Array(numKeys + 3 + rates.length * 3 + (quota ? 4 : 0));
    let k = 0;
    for (let i = 0; i < rates.length; i++) argv[k++] = rates[i]!.key;
    if (quota) argv[k++] = quota.key;
    argv[k++] = rates.length;
    argv[k++] = quota ? 1 : 0;
    argv[k++] = cost;
    for (let i = 0; i < rates.length; i++) {
      const r = rates[i]!;
      argv[k++] = ALGORITHM_CODE[r.algorithm];
      argv[k++] = r.limit;
      argv[k++] = r.windowSeconds * 1000;
    }
    if (quota) {
      argv[k++] = quota.limit;
      argv[k++] = quota.mode === 'hard_cap' ? 0 : 1;
      argv[k++] = quota.periodEnd;
      argv[k++] = QUOTA_EXPIRY_GRACE_MS;
    }
    return new Promise<LimitOutcome>((resolve) => {
      const w: Waiter = { req, deadline: performance.now() + timeoutMs, settled: false, resolve };
      corkForThisTurn();
      const call = run(numKeys, argv as unknown as string);
      waiting.push(w);
      if (timer === null) timer = setTimeout(expire, timeoutMs);
      call.then(onReply.bind(w), onError.bind(w));
    });
  }

  function decide(req: DecideRequest): Promise<LimitOutcome> {
    try {
      validateDecideRequest(req);
    } catch (err) {
      return Promise.reject(err);
    }
    // Offline clients fail fast; 'connect' is what a Cluster reports once it is usable.
    if (client.status !== 'ready' && !(client.isCluster && client.status === 'connect')) {
      return Promise.resolve({ kind: 'unavailable', reason: 'not_connected', message: `redis is ${client.status}` });
    }
    return send(req);
  }

  return { decide, timeoutMs };
}
