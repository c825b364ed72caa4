import { performance } from 'node:perf_hooks';
import type { RedisLimiter } from './redis-limiter';
import {
  blockSize,
  eligible,
  EXPIRY_MARGIN_MS,
  FORGET_MS,
  lifeAt,
  sameBuckets,
  SAMPLE_CALLS,
  SAMPLE_MS,
  takeFromBlock,
  type Block,
  type BlockSizing,
  type Hot,
} from './reservation-block';
import type { DecideRequest, Limiter, LimitOutcome } from './types';

export type ReservingLimiterOptions = {
  /** Decides every reservation, every call no reservation covers, and takes back unused calls. */
  limiter: RedisLimiter;
  /** A reservation covers about this long of a (key, route)'s recent traffic. Default 25 ms. */
  blockMs?: number;
  /** ...and at most this share of each of its limits (a hard-capped quota included). Default 0.01. */
  limitShare?: number;
  /** Fewest calls worth a reservation. Default 2. */
  minBlock?: number;
  /** Most calls in one reservation. Default 1024. */
  maxBlock?: number;
  /** Unused calls go back to Redis once a (key, route) has made no call for this long. Default 100 ms. */
  idleMs?: number;
  /** After a refused or failed reservation: exact per-call decisions only, for this long. Default 1000 ms. */
  holdMs?: number;
};

export type ReservationStats = {
  /** Reservations granted, and refused (a limit was too close: per-call decisions took over). */
  granted: number;
  refused: number;
  /** Calls decided from a reservation, without a round trip of their own. */
  fromReservations: number;
  /** Unused calls given back to Redis, and those a failed release left counted. */
  released: number;
  releaseFailed: number;
};

export type ReservingLimiter = Limiter & {
  /** A call a reservation covers is decided here and now; any other returns a promise. */
  decideOrWait(request: DecideRequest): LimitOutcome | Promise<LimitOutcome>;
  readonly stats: ReservationStats;
  /** Reservations held right now: (key, route) pairs with unused calls. */
  held(): number;
  /** (key, route) pairs this process keeps a record of (held or not). */
  tracked(): number;
  /** Gives back every unused call; later decisions go to Redis one by one. */
  close(): Promise<void>;
};

/**
 * Limit reservations (docs/adr/0013-limit-reservations.md). For a hot (key, route), the process
 * asks Redis for a block of k calls at once — an ordinary atomic decision with cost k, so every
 * limit counts them before any is made — and then decides the next k calls itself, with no
 * round trip. The next block is asked for when half of one is used, off the request path.
 *
 * It never lets through more than a limit allows, across any number of processes:
 * - only where charging early is exact: sliding windows (epoch-aligned buckets) and quotas. A
 *   block is used only inside the window bucket and billing period it was charged to, so each
 *   call counts where it is made; GCRA, token bucket and fixed window decide every call;
 * - k is at most ~25 ms of the pair's traffic and 1% of each limit. Near a limit a reservation
 *   is refused whole, and exact per-call decisions take over: the last calls of a window and
 *   every 429 are decided in Redis as before;
 * - calls not made are given back (idle, window end, close) to the bucket they were charged to.
 *   If that fails they stay counted: a client may be refused early, never let through late.
 * Headers come from the reservation's decision plus the calls still unused in it: like counts
 * between gateways, they are as exact as one process can know.
 */
export function createReservingLimiter(options: ReservingLimiterOptions): ReservingLimiter {
  const { limiter, blockMs = 25, limitShare = 0.01, minBlock = 2, maxBlock = 1024, idleMs = 100, holdMs = 1000 } = options;
  for (const [name, v] of Object.entries({ blockMs, limitShare, minBlock, maxBlock, idleMs, holdMs })) {
    if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive number, got ${v}`);
  }
  if (limitShare > 1) throw new RangeError(`limitShare must be at most 1, got ${limitShare}`);

  const sizing: BlockSizing = { blockMs, limitShare, minBlock, maxBlock };
  const stats: ReservationStats = { granted: 0, refused: 0, fromReservations: 0, released: 0, releaseFailed: 0 };
  const hot = new Map<DecideRequest, Hot>();
  const notEligible = new WeakSet<DecideRequest>();
  /** Request objects seen once: a pair gets a record only when its request object comes back. */
  const seenOnce = new WeakSet<DecideRequest>();
  /** Reservations and releases in flight: close() waits for them. */
  const inFlight = new Set<Promise<unknown>>();
  /** Redis clock minus this process's, from the last reservation: to see a window's end coming. */
  let clockOffset = 0;
  let sweeper: NodeJS.Timeout | null = null;
  let closed = false;

  function track(p: Promise<unknown>): void {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }

  function giveBack(req: DecideRequest, decidedAt: number, unused: number): void {
    stats.released += unused;
    track(
      limiter.release(req, decidedAt, unused).then(
        (ok) => {
          if (!ok) stats.releaseFailed += unused;
        },
        () => {
          stats.releaseFailed += unused;
        },
      ),
    );
  }

  function retire(h: Hot): void {
    const b = h.block;
    if (b === null) return;
    h.block = null;
    if (b.left > 0) giveBack(h.req, b.decision.now, b.left);
  }

  function install(h: Hot, outcome: LimitOutcome, k: number, sentAt: number): void {
    h.pending = false;
    const arrived = performance.now();
    if (outcome.kind !== 'decision' || !outcome.allowed) {
      if (outcome.kind === 'decision') stats.refused++;
      h.holdUntil = arrived + holdMs;
      // Refused whole: each waiting call is decided on its own. Redis trouble: they share it.
      const waiters = h.waiters.splice(0);
      for (const w of waiters) w(outcome.kind === 'decision' ? limiter.decide(h.req) : outcome);
      return;
    }
    stats.granted++;
    clockOffset = outcome.now - Date.now();
    if (closed || hot.get(h.req) !== h) {
      giveBack(h.req, outcome.now, k);
      for (const w of h.waiters.splice(0)) w(limiter.decide(h.req));
      return;
    }
    const expires = arrived + lifeAt(h.req, outcome.now) - (arrived - sentAt) - EXPIRY_MARGIN_MS;
    const rateIndex = outcome.rate ? outcome.rates.indexOf(outcome.rate) : -1;
    let b = h.block;
    if (b !== null && b.left > 0 && arrived < b.expires && sameBuckets(h.req, b.decision.now, outcome.now)) {
      // Same buckets: the new decision's counts include the old block's unused calls too.
      b.decision = outcome;
      b.left += k;
      b.refillAt = k >> 1;
      b.at = arrived;
      b.expires = Math.min(b.expires, expires);
      b.rateIndex = rateIndex;
    } else {
      retire(h);
      b = h.block = { decision: outcome, left: k, refillAt: k >> 1, at: arrived, expires, rateIndex };
    }
    serveWaiters(h, b, arrived);
  }

  function serveWaiters(h: Hot, b: Block, now: number): void {
    if (h.waiters.length === 0) return;
    for (const w of h.waiters.splice(0)) {
      if (b.left > 0 && now < b.expires) {
        stats.fromReservations++;
        w(takeFromBlock(h.req, b, now));
      } else {
        w(limiter.decide(h.req));
      }
    }
    if (b.left <= b.refillAt) reserve(h, now);
  }

  function reserve(h: Hot, now: number): void {
    if (h.pending || closed || now < h.holdUntil) return;
    const k = blockSize(h, sizing);
    if (k === 0) return;
    // Not worth it when the window ends before the block could be used.
    if (lifeAt(h.req, Date.now() + clockOffset) < 2 * blockMs + EXPIRY_MARGIN_MS) return;
    let req = h.reserveReq;
    if (req === null || req.cost !== k) req = h.reserveReq = { rates: h.req.rates, quota: h.req.quota, cost: k };
    h.pending = true;
    const sentAt = now;
    track(
      limiter.decide(req).then(
        (outcome) => install(h, outcome, k, sentAt),
        () => install(h, { kind: 'unavailable', reason: 'error', message: 'reservation refused as input' }, k, sentAt),
      ),
    );
  }

  function sweep(): void {
    const now = performance.now();
    for (const [req, h] of hot) {
      const b = h.block;
      if (b !== null && (b.left === 0 || now >= b.expires || now - h.lastUse >= idleMs)) retire(h);
      if (h.block === null && !h.pending && now - h.lastUse >= FORGET_MS) hot.delete(req);
    }
    if (hot.size === 0 && sweeper !== null) {
      clearInterval(sweeper);
      sweeper = null;
    }
  }

  function decide(req: DecideRequest): Promise<LimitOutcome> {
    const outcome = decideOrWait(req);
    return outcome instanceof Promise ? outcome : Promise.resolve(outcome);
  }

  function decideOrWait(req: DecideRequest): LimitOutcome | Promise<LimitOutcome> {
    if (closed) return limiter.decide(req);
    let h = hot.get(req);
    const now = performance.now();
    if (h === undefined) {
      if (notEligible.has(req)) return limiter.decide(req);
      if (!eligible(req)) {
        notEligible.add(req);
        return limiter.decide(req);
      }
      // Requests built afresh per call (anonymous subjects) are never seen twice: no record for them.
      if (!seenOnce.has(req)) {
        seenOnce.add(req);
        return limiter.decide(req);
      }
      h = { req, seen: 0, since: now, perMs: 0, lastUse: now, block: null, pending: false, waiters: [], holdUntil: 0, reserveReq: null };
      hot.set(req, h);
      if (sweeper === null) {
        sweeper = setInterval(sweep, Math.max(10, idleMs / 2));
        sweeper.unref();
      }
    }
    h.lastUse = now;
    h.seen++;
    if (now - h.since >= SAMPLE_MS || (h.seen >= SAMPLE_CALLS && now - h.since >= 1)) {
      h.perMs = h.seen / (now - h.since);
      h.seen = 0;
      h.since = now;
    }
    const b = h.block;
    if (b !== null) {
      if (b.left > 0 && now < b.expires) {
        const decision = takeFromBlock(h.req, b, now);
        stats.fromReservations++;
        if (b.left <= b.refillAt) reserve(h, now);
        return decision;
      }
      retire(h);
    }
    // The next block is already on its way: wait for it rather than make a round trip of our own.
    if (h.pending) return new Promise<LimitOutcome>((resolve) => h.waiters.push(resolve));
    // Asked for before the reservation, so Redis counts this call first, as it was made first.
    const decision = limiter.decide(req);
    reserve(h, now);
    return decision;
  }

  async function close(): Promise<void> {
    closed = true;
    if (sweeper !== null) clearInterval(sweeper);
    sweeper = null;
    // Reservations still in flight give their calls back when they land (closed is set).
    for (const h of hot.values()) retire(h);
    hot.clear();
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
  }

  function held(): number {
    let n = 0;
    for (const h of hot.values()) if (h.block !== null) n++;
    return n;
  }

  return { decide, decideOrWait, stats, held, tracked: () => hot.size, close };
}
