import { performance } from 'node:perf_hooks';
import type { Cluster, Redis } from 'ioredis';
import { DECIDE_LUA, RELEASE_LUA } from './lua';
import { buildDecision, replyLength, windowIndex } from './decision';
import { hashTag, validateDecideRequest } from './validate';
import { LimitInputError, type DecideRequest, type Limiter, type LimitOutcome } from './types';
import type { RedisBreaker } from './breaker';

const ALGORITHM_CODE = { fixed_window: 1, sliding_window: 2, gcra: 3, token_bucket: 4 } as const;
const COMMAND = 'tollgateDecideV3';
const RELEASE_COMMAND = 'tollgateReleaseV1';
/** A release may wait this many decision timeouts: it is off the request path, but not unbounded. */
const RELEASE_TIMEOUT_FACTOR = 10;
/** Quota counters outlive their period by this much so late readers still see the final count. */
export const QUOTA_EXPIRY_GRACE_MS = 3_600_000;
/** Most decisions one script call carries: bounds how long one call holds Redis (~tens of µs each). */
export const DEFAULT_MAX_BATCH = 64;

const BREAKER_OPEN: LimitOutcome = Object.freeze({
  kind: 'unavailable',
  reason: 'breaker_open',
  message: 'redis is unavailable (breaker open)',
});

type DecideCommand = (numKeys: number, argv: string[]) => Promise<string>;

export type RedisLimiterOptions = {
  /**
   * A dedicated or shared ioredis client (or Cluster). It must NOT queue commands while
   * disconnected (`enableOfflineQueue: false`), and should use `maxRetriesPerRequest: 0|1`,
   * else a dead Redis turns into a queue of stalled requests behind it.
   */
  redis: Redis | Cluster;
  /**
   * Upper bound on one decision's wait; past it the answer is `unavailable`. Default 1000 ms: a
   * reply that is only slow (a busy process) is waited for; Redis being away is the breaker's call.
   */
  timeoutMs?: number;
  /**
   * Shared with the key lookups: while it is open decisions are `unavailable` at once (reason
   * `breaker_open`), and every round trip's outcome feeds it. None = every call tries Redis.
   */
  breaker?: RedisBreaker | null;
  /** Most decisions sent in one script call (1 = one call per decision). Default 64. */
  maxBatch?: number;
};

export type RedisLimiter = Limiter & {
  readonly timeoutMs: number;
  /** Script calls made and decisions they carried, for metrics and benchmarks. */
  readonly stats: { calls: number; decisions: number };
  /**
   * Gives back `unused` calls of an allowed decision whose cost counted calls that were never
   * made (a reservation, see reservations.ts). `decidedAt` is that decision's `now`: it names the
   * sliding-window buckets the decision charged. Sliding windows and quotas only; resolves false
   * when Redis could not be reached (the calls then stay counted: refused early, never let through).
   */
  release(req: DecideRequest, decidedAt: number, unused: number): Promise<boolean>;
};

/** One decision waiting for Redis; settled by the reply, the error or the deadline, whichever is first. */
type Waiter = {
  req: DecideRequest;
  deadline: number;
  settled: boolean;
  /** Where this decision's part of the batch reply starts. */
  at: number;
  resolve: (outcome: LimitOutcome) => void;
};

/** Decisions collected in one event-loop turn for one script call: KEYS and ARGV in order. */
type Batch = { group: string; keys: string[]; args: string[]; waiters: Waiter[] };

/**
 * A decision's script argument (see lua.ts): one JSON array. Requests are immutable and the
 * gateway reuses one object per (key, route), so both the encoding and the validation are done
 * once per request shape, not once per request.
 */
const encoded = new WeakMap<DecideRequest, string>();
function encode(req: DecideRequest): string {
  let spec = encoded.get(req);
  if (spec !== undefined) return spec;
  validateDecideRequest(req);
  const quota = req.quota;
  const a: number[] = [req.rates.length, quota ? 1 : 0, req.cost ?? 1];
  for (const r of req.rates) a.push(ALGORITHM_CODE[r.algorithm], r.limit, r.windowSeconds * 1000);
  if (quota) a.push(quota.limit, quota.mode === 'hard_cap' ? 0 : 1, quota.periodEnd, QUOTA_EXPIRY_GRACE_MS);
  spec = JSON.stringify(a);
  encoded.set(req, spec);
  return spec;
}

/**
 * Limits decided by EVALSHA (ioredis falls back to EVAL on NOSCRIPT). Decisions asked for in one
 * event-loop turn travel together: they are collected and sent as one script call when the turn's
 * I/O callbacks have run (setImmediate), so N concurrent requests cost one command, one write, one
 * script run and one reply instead of N of each, while a lone request still leaves in the same
 * turn. Each request's decision is still atomic and takes one round trip. With a Cluster, only
 * decisions under the same hash tag (subscription) share a call, as a call must stay in one slot.
 *
 * Redis trouble of any kind — not connected, an error, or no answer within `timeoutMs` — comes
 * back as `{ kind: 'unavailable' }`; only bad input rejects (LimitInputError), before any I/O.
 */
export function createRedisLimiter({
  redis,
  timeoutMs = 1000,
  maxBatch = DEFAULT_MAX_BATCH,
  breaker = null,
}: RedisLimiterOptions): RedisLimiter {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`timeoutMs must be a positive number, got ${timeoutMs}`);
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 1000)
    throw new RangeError(`maxBatch must be an integer 1..1000, got ${maxBatch}`);
  const client = redis as (Redis | Cluster) & { [COMMAND]?: DecideCommand; [RELEASE_COMMAND]?: DecideCommand };
  if (typeof client[COMMAND] !== 'function') client.defineCommand(COMMAND, { lua: DECIDE_LUA });
  const run = client[COMMAND]!.bind(client);
  if (typeof client[RELEASE_COMMAND] !== 'function') client.defineCommand(RELEASE_COMMAND, { lua: RELEASE_LUA });
  const runRelease = client[RELEASE_COMMAND]!.bind(client);
  const stats = { calls: 0, decisions: 0 };

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

  /**
   * Timers run before I/O in an event-loop turn: after a long busy stretch a reply may already be
   * waiting on the socket when the deadline fires. Expiring from the check phase (setImmediate)
   * lets that reply be read first, so a busy process doesn't take its own lateness for Redis'.
   */
  function expireAfterIo(): void {
    setImmediate(expire);
  }

  function expire(): void {
    timer = null;
    const now = performance.now();
    let timedOut = false;
    while (head < waiting.length) {
      const w = waiting[head]!;
      if (!w.settled) {
        if (w.deadline > now) {
          timer = setTimeout(expireAfterIo, Math.max(1, Math.ceil(w.deadline - now)));
          break;
        }
        w.settled = true;
        timedOut = true;
        w.resolve({ kind: 'unavailable', reason: 'timeout', message: `redis did not answer within ${timeoutMs} ms` });
      }
      head++;
    }
    // One failed round trip however many decisions it carried.
    if (timedOut) breaker?.failure();
    dropSettledHead();
  }

  function onReply(this: Batch, text: string): void {
    breaker?.success();
    let reply: number[] = [];
    try {
      reply = JSON.parse(`[${text}]`) as number[];
    } catch {
      // handled below: every decision of the batch becomes `unavailable`
    }
    const now = Number(reply[0]);
    for (const w of this.waiters) {
      if (w.settled) continue;
      w.settled = true;
      let outcome: LimitOutcome;
      if (Number.isFinite(now) && reply.length >= w.at + replyLength(w.req)) outcome = buildDecision(w.req, reply, w.at, now, 'redis');
      else outcome = { kind: 'unavailable', reason: 'error', message: 'malformed reply from the limiter script' };
      w.resolve(outcome);
    }
    dropSettledHead();
  }

  // A late error (after the deadline) lands here too and is swallowed: never an unhandled rejection.
  function onError(this: Batch, err: unknown): void {
    breaker?.failure();
    for (const w of this.waiters) {
      if (w.settled) continue;
      w.settled = true;
      w.resolve({ kind: 'unavailable', reason: 'error', message: (err as Error).message });
    }
    dropSettledHead();
  }

  const open = new Map<string, Batch>();
  let flushQueued = false;

  function flush(batch: Batch): void {
    open.delete(batch.group);
    let at = 1;
    for (const w of batch.waiters) {
      w.at = at;
      at += replyLength(w.req);
    }
    // KEYS then ARGV in one array: ioredis flattens an array argument.
    const argv = batch.keys.concat(batch.args);
    stats.calls++;
    stats.decisions += batch.waiters.length;
    run(batch.keys.length, argv).then(onReply.bind(batch), onError.bind(batch));
  }

  function flushAll(): void {
    flushQueued = false;
    for (const batch of open.values()) flush(batch); // flush() deletes the entry: safe while iterating a Map
  }

  function send(req: DecideRequest, spec: string): Promise<LimitOutcome> {
    const rates = req.rates;
    const quota = req.quota;
    const group = client.isCluster ? (hashTag(rates[0]?.key ?? quota!.key) ?? '') : '';
    let batch = open.get(group);
    if (!batch) {
      batch = { group, keys: [], args: [], waiters: [] };
      open.set(group, batch);
      if (!flushQueued) {
        flushQueued = true;
        setImmediate(flushAll);
      }
    }
    const { keys } = batch;
    for (let i = 0; i < rates.length; i++) keys.push(rates[i]!.key);
    if (quota) keys.push(quota.key);
    batch.args.push(spec);
    const target = batch;
    return new Promise<LimitOutcome>((resolve) => {
      const w: Waiter = { req, deadline: performance.now() + timeoutMs, settled: false, at: 0, resolve };
      target.waiters.push(w);
      waiting.push(w);
      if (timer === null) timer = setTimeout(expireAfterIo, timeoutMs);
      if (target.waiters.length >= maxBatch) flush(target);
    });
  }

  function decide(req: DecideRequest): Promise<LimitOutcome> {
    let spec: string;
    try {
      spec = encode(req);
    } catch (err) {
      return Promise.reject(err);
    }
    // Offline clients fail fast; 'connect' is what a Cluster reports once it is usable.
    if (client.status !== 'ready' && !(client.isCluster && client.status === 'connect')) {
      return Promise.resolve({ kind: 'unavailable', reason: 'not_connected', message: `redis is ${client.status}` });
    }
    if (breaker !== null && !breaker.allow()) return Promise.resolve(BREAKER_OPEN);
    return send(req, spec);
  }

  async function release(req: DecideRequest, decidedAt: number, unused: number): Promise<boolean> {
    validateDecideRequest(req);
    if (!Number.isInteger(unused) || unused < 1) throw new LimitInputError(`unused must be a positive integer, got ${unused}`);
    if (!Number.isInteger(decidedAt) || decidedAt < 0) throw new LimitInputError(`decidedAt must be epoch milliseconds, got ${decidedAt}`);
    const keys: string[] = [];
    const a: number[] = [req.rates.length, req.quota ? 1 : 0, unused];
    for (const r of req.rates) {
      if (r.algorithm !== 'sliding_window') throw new LimitInputError(`only sliding windows can be released, got ${r.algorithm}`);
      keys.push(r.key);
      a.push(windowIndex(r, decidedAt));
    }
    if (req.quota) keys.push(req.quota.key);
    // Off the request path, but a Redis that never answers must not hold a shutdown open.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(resolve, RELEASE_TIMEOUT_FACTOR * timeoutMs, false);
    });
    try {
      return await Promise.race([runRelease(keys.length, keys.concat(JSON.stringify(a))).then(() => true), late]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  return { decide, release, timeoutMs, stats };
}
