import type { RateAlgorithm } from '@tollgate/policy';

export type { RateAlgorithm };

/** One rate limit to check for a request. `key` comes from `keyspace.rate(subject, limiter)`. */
export type RateLimitCheck = {
  /** Policy name shown to clients in the RateLimit headers and 429 bodies ("plan", "route", ...). */
  name: string;
  key: string;
  /** Requests allowed per window: an integer ≥ 1. */
  limit: number;
  /** Window length in seconds: an integer 1..86400 (the snapshot's bound). */
  windowSeconds: number;
  algorithm: RateAlgorithm;
};

/** The billing-period quota. `key` comes from `keyspace.quota(subject, periodStart)`. */
export type QuotaCheck = {
  key: string;
  /** Requests included in the period: an integer ≥ 0 (0 on an overage plan = everything is overage). */
  limit: number;
  mode: 'hard_cap' | 'overage';
  /** Period start, epoch ms: only used to advertise the window (`w`) in RateLimit-Policy. */
  periodStart?: number | null;
  /** Period end, epoch ms: the counter expires (and the quota resets) then. */
  periodEnd: number;
};

/** Everything one request must pass, decided atomically (all or nothing) in one round trip. */
export type DecideRequest = {
  rates: RateLimitCheck[];
  quota?: QuotaCheck | null;
  /** Units this request consumes from every limit; default 1. */
  cost?: number;
};

export type RateState = {
  name: string;
  algorithm: RateAlgorithm;
  limit: number;
  windowSeconds: number;
  /** Whether this limit alone would let the request through. */
  allowed: boolean;
  /** Units left after this request (or before it, when refused), never negative. */
  remaining: number;
  /** Seconds until this limit is fully replenished (window end / bucket full), rounded up. */
  resetSeconds: number;
  /** Seconds until a request of the same cost could pass; 0 when allowed. */
  retryAfterSeconds: number;
};

export type QuotaState = {
  mode: 'hard_cap' | 'overage';
  limit: number;
  /** Units used in the period, including this request when it was allowed. */
  used: number;
  /** Included units left, never negative. */
  remaining: number;
  /** Epoch ms when the period ends and the counter restarts. */
  resetAt: number;
  /** Period length in seconds when periodStart was given. */
  windowSeconds: number | null;
};

export type Decision = {
  kind: 'decision';
  allowed: boolean;
  /** Why it was refused; quota wins over rate because waiting out the rate would not help. */
  reason: 'rate' | 'quota' | null;
  /** Name of the refusing limit ("quota" for the quota), null when allowed. */
  limitName: string | null;
  /** The most restrictive rate: the refusing one, else the one with the least remaining. */
  rate: RateState | null;
  rates: RateState[];
  quota: QuotaState | null;
  /** Allowed, but beyond the included quota of an overage plan: bill the excess. */
  overage: boolean;
  /** Seconds the client should wait, when refused (≥ 1); null when allowed. */
  retryAfterSeconds: number | null;
  /**
   * When refused, milliseconds until the same request could pass if nothing else were counted
   * (before rounding to seconds): how long a deny cache may refuse it without asking again.
   */
  retryAfterMs?: number | null;
  /** The deciding clock (Redis TIME, or the process clock for the memory limiter), epoch ms. */
  now: number;
  source: 'redis' | 'memory';
  /** What was decided; lets the header builder reuse the parts that depend only on the policy. */
  request?: DecideRequest;
};

/** Redis did not answer in time or failed: the caller applies its fail-open/closed policy. */
export type Unavailable = { kind: 'unavailable'; reason: 'timeout' | 'error' | 'not_connected' | 'breaker_open'; message: string };

export type LimitOutcome = Decision | Unavailable;

export interface Limiter {
  /** Never rejects for Redis trouble (that is `unavailable`); rejects with LimitInputError for bad input. */
  decide(request: DecideRequest): Promise<LimitOutcome>;
  /**
   * The same decision, returned as it is when the limiter has it at hand without waiting (a call
   * covered by a reservation), else as a promise. Saves the hot path a promise and two microtask
   * turns; limiters without such a path leave it out and callers use `decide`.
   */
  decideOrWait?(request: DecideRequest): LimitOutcome | Promise<LimitOutcome>;
}

/** A request that no limiter should evaluate (zero/NaN/huge limits, keys in different slots...). */
export class LimitInputError extends Error {
  override name = 'LimitInputError';
}
