import { windowIndex } from './decision';
import type { DecideRequest, Decision, LimitOutcome, QuotaState, RateState } from './types';

// The pieces of a reservation (reservations.ts) that need no state of the limiter's: what a block
// is, which requests may have one, how big, how long it lives, and one call decided from it.

/** A block of calls charged to Redis in advance: `left` of them not made yet. */
export type Block = {
  /** The reservation's decision: its counts already include every call of the block. */
  decision: Decision;
  left: number;
  /** Ask for the next block once `left` drops to this. */
  refillAt: number;
  /** performance.now() when the decision arrived, and past which no call may use the block. */
  at: number;
  expires: number;
  /** The most restrictive rate of the decision, as an index; -1 when there is none. */
  rateIndex: number;
};

/** What this process knows about one request shape (one key on one route). */
export type Hot = {
  req: DecideRequest;
  /** Calls since `since`, and the rate measured over the last sample (calls per ms). */
  seen: number;
  since: number;
  perMs: number;
  lastUse: number;
  block: Block | null;
  pending: boolean;
  /** Calls that found the block used up while the next one was on its way: they wait for it. */
  waiters: ((outcome: LimitOutcome | Promise<LimitOutcome>) => void)[];
  holdUntil: number;
  /** The last reservation request, reused while its size is the same. */
  reserveReq: DecideRequest | null;
};

/** A rate is measured over this long, or this many calls (but at least 1 ms), before it sizes a reservation. */
export const SAMPLE_MS = 50;
export const SAMPLE_CALLS = 64;
/** A block stops being used this long (plus the round trip it took) before its window ends. */
export const EXPIRY_MARGIN_MS = 5;
/** Knowledge of an idle (key, route) is dropped after this long. */
export const FORGET_MS = 10_000;

export type BlockSizing = { blockMs: number; limitShare: number; minBlock: number; maxBlock: number };

/** Only where charging early is exact: one call at a time, sliding windows and quotas. */
export function eligible(req: DecideRequest): boolean {
  if ((req.cost ?? 1) !== 1) return false;
  for (const r of req.rates) if (r.algorithm !== 'sliding_window') return false;
  return req.rates.length > 0 || req.quota != null;
}

/** Milliseconds (Redis clock) from `now` until the first window or period of `req` ends. */
export function lifeAt(req: DecideRequest, now: number): number {
  let life = Number.POSITIVE_INFINITY;
  for (const r of req.rates) {
    const win = r.windowSeconds * 1000;
    life = Math.min(life, win - (now % win));
  }
  if (req.quota) life = Math.min(life, req.quota.periodEnd - now);
  return life;
}

/** Calls worth reserving for `h` now: ~`blockMs` of its traffic, at most `limitShare` of each limit; 0 = none. */
export function blockSize(h: Hot, s: BlockSizing): number {
  const { blockMs, limitShare, minBlock, maxBlock } = s;
  const req = h.req;
  let k = Math.min(Math.floor(h.perMs * blockMs), maxBlock);
  for (const r of req.rates) k = Math.min(k, Math.floor(r.limit * limitShare));
  if (req.quota?.mode === 'hard_cap') k = Math.min(k, Math.floor(req.quota.limit * limitShare));
  if (k < minBlock) return 0;
  // Powers of two and one and a half times them (2, 3, 4, 6, 8, 12, …): few distinct reservation
  // requests, each validated and encoded once, and never more than a third below the size asked.
  const p = 2 ** Math.floor(Math.log2(k));
  return k >= p * 1.5 && p >= 2 ? p * 1.5 : p;
}

/** Whether `t1` and `t2` fall in the same window bucket of every rate. */
export function sameBuckets(req: DecideRequest, t1: number, t2: number): boolean {
  for (const r of req.rates) if (windowIndex(r, t1) !== windowIndex(r, t2)) return false;
  return true;
}

/** One call decided from the block: the reservation's decision, with this call's counts. */
export function takeFromBlock(req: DecideRequest, b: Block, now: number): Decision {
  b.left--;
  const d = b.decision;
  const at = d.now + Math.floor(now - b.at);
  const rates: RateState[] = new Array<RateState>(d.rates.length);
  for (let i = 0; i < d.rates.length; i++) {
    const r = d.rates[i]!;
    const win = r.windowSeconds * 1000;
    rates[i] = {
      name: r.name,
      algorithm: r.algorithm,
      limit: r.limit,
      windowSeconds: r.windowSeconds,
      allowed: true,
      remaining: Math.min(r.limit, r.remaining + b.left),
      resetSeconds: Math.ceil((win - (at % win)) / 1000),
      retryAfterSeconds: 0,
    };
  }
  let quota: QuotaState | null = null;
  let overage = false;
  if (d.quota) {
    const used = d.quota.used - b.left;
    quota = { ...d.quota, used, remaining: Math.max(0, d.quota.limit - used) };
    overage = d.quota.mode === 'overage' && used > d.quota.limit;
  }
  return {
    kind: 'decision',
    allowed: true,
    reason: null,
    limitName: null,
    rate: b.rateIndex >= 0 ? rates[b.rateIndex]! : null,
    rates,
    quota,
    overage,
    retryAfterSeconds: null,
    now: at,
    source: 'redis',
    request: req,
  };
}
