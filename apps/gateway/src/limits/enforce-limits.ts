import { createHash } from 'node:crypto';
import type { Keyspace, KeyRecord, PlanPolicy, RateLimitPolicy } from '@tollgate/policy';
import {
  createLimitKeys,
  limitExceededBody,
  rateLimitHeaders,
  type DecideRequest,
  type Decision,
  type Limiter,
  type LimitOutcome,
  type MemoryLimiter,
  type RateLimitCheck,
} from '@tollgate/ratelimit';
import type { ErrorBody } from '@tollgate/policy';
import type { CompiledApi, CompiledRoute } from '../routing/route-table';

export type LimitSubjectInput =
  | { kind: 'key'; record: KeyRecord; plan: PlanPolicy | null }
  /** JWT subject or client IP: only route limits apply. */
  | { kind: 'anonymous'; id: string };

export type LimitVerdict =
  | { kind: 'skip' }
  | { kind: 'allow'; headers: Record<string, string>; overage: boolean; source: 'redis' | 'memory' }
  | { kind: 'reject'; status: 429; reason: 'rate' | 'quota'; headers: Record<string, string>; body: ErrorBody; source: 'redis' | 'memory' }
  | { kind: 'unavailable' };

export type LimitEnforcerDeps = {
  keyspace: Keyspace;
  redis: Limiter;
  memory: MemoryLimiter;
  onDecision?: (result: 'allowed' | 'rate' | 'quota' | 'unavailable', source: 'redis' | 'memory' | 'none') => void;
};

/** Calendar month (UTC) around `now`, for keys published without a billing period. */
export function monthPeriod(now: number): { start: number; end: number } {
  const d = new Date(now);
  return { start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
}

const SAFE_PART = /^[A-Za-z0-9_.:-]{1,100}$/;
/** Anonymous callers whose limit request a route keeps (one small object each). */
const MAX_ANONYMOUS_PER_ROUTE = 10_000;
/** Subjects from outside (JWT `sub`, IPs) become key-safe by hashing when they aren't already. */
export function subjectId(raw: string): string {
  return SAFE_PART.test(raw) ? raw : createHash('sha256').update(raw).digest('hex').slice(0, 32);
}

/**
 * Builds the one decision a request needs — the key's plan rate (or its override), the route's
 * own rate, the subscription's quota — and runs it in one Redis round trip. When Redis can't
 * answer in time the API's fail mode decides: open = this process's memory limiter (rates only),
 * closed = 503.
 */
export function createLimitEnforcer(deps: LimitEnforcerDeps) {
  const { keyspace } = deps;

  function buildRequest(api: CompiledApi, route: CompiledRoute, subject: LimitSubjectInput, now: number): DecideRequest | null {
    const rates: RateLimitCheck[] = [];
    let quota: DecideRequest['quota'] = null;
    if (subject.kind === 'key') {
      const { record, plan } = subject;
      // A test key's calls count in counters of their own: test traffic never uses up the live
      // quota, nor live traffic the test one (ADR 0017).
      const subscriptionId =
        record.subscriptionId !== null && record.env === 'test' ? `${record.subscriptionId}.test` : record.subscriptionId;
      const keys = createLimitKeys(keyspace, { keyId: record.keyId, subscriptionId });
      const planRate: RateLimitPolicy | null = plan?.rateLimit ?? null;
      const override = record.rateLimitOverride;
      if (override) {
        rates.push({
          name: 'key',
          key: keys.keyRate(),
          limit: override.limit,
          windowSeconds: override.windowSeconds,
          algorithm: planRate?.algorithm ?? 'sliding_window',
        });
      } else if (planRate) {
        rates.push({
          name: 'plan',
          key: keys.keyRate(),
          limit: planRate.limit,
          windowSeconds: planRate.windowSeconds,
          algorithm: planRate.algorithm,
        });
      }
      const r = route.policy.rateLimit;
      if (r)
        rates.push({
          name: 'route',
          key: keys.routeRate(route.id),
          limit: r.limit,
          windowSeconds: r.windowSeconds,
          algorithm: r.algorithm,
        });
      const q = plan?.quota;
      if (q) {
        let start = record.periodStart;
        let end = record.periodEnd;
        if (start === null || end === null || end <= now) {
          const m = monthPeriod(now);
          start = m.start;
          end = m.end;
        }
        quota = { key: keys.quota(start), limit: record.quotaOverride ?? q.limit, mode: q.mode, periodStart: start, periodEnd: end };
      }
    } else {
      const r = route.policy.rateLimit;
      if (r)
        rates.push({
          name: 'route',
          key: keyspace.rate(subject.id, `api:${api.id}:route:${route.id}`),
          limit: r.limit,
          windowSeconds: r.windowSeconds,
          algorithm: r.algorithm,
        });
    }
    if (rates.length === 0 && !quota) return null;
    return { rates, quota };
  }

  function verdictOf(decision: Decision, requestId: string): LimitVerdict {
    const headers = rateLimitHeaders(decision);
    if (decision.allowed) {
      deps.onDecision?.('allowed', decision.source);
      return { kind: 'allow', headers, overage: decision.overage, source: decision.source };
    }
    const reason = decision.reason ?? 'rate';
    deps.onDecision?.(reason, decision.source);
    return { kind: 'reject', status: 429, reason, headers, body: limitExceededBody(decision, requestId), source: decision.source };
  }

  // Key records and plans are immutable objects replaced on every refresh, so a request built
  // for (record, route) stays right while both live and the billing period hasn't rolled over.
  type Cached = { plan: PlanPolicy | null; req: DecideRequest | null; validUntil: number };
  const built = new WeakMap<KeyRecord, Map<CompiledRoute, Cached>>();

  // Anonymous subjects (JWT `sub`, client IP) have no record object to hang a request on: keep
  // theirs per route, by subject id, so a returning caller reuses one object too (validated and
  // encoded once, and eligible for limit reservations). Bounded: a route with more callers than
  // this starts over.
  const anonymous = new WeakMap<CompiledRoute, Map<string, DecideRequest | null>>();

  function requestFor(api: CompiledApi, route: CompiledRoute, subject: LimitSubjectInput, now: number): DecideRequest | null {
    if (subject.kind !== 'key') {
      let byId = anonymous.get(route);
      const hit = byId?.get(subject.id);
      if (hit !== undefined) return hit;
      const req = buildRequest(api, route, subject, now);
      if (!byId) {
        byId = new Map();
        anonymous.set(route, byId);
      } else if (byId.size >= MAX_ANONYMOUS_PER_ROUTE) {
        byId.clear();
      }
      byId.set(subject.id, req);
      return req;
    }
    let byRoute = built.get(subject.record);
    const hit = byRoute?.get(route);
    if (hit && hit.plan === subject.plan && now < hit.validUntil) return hit.req;
    const req = buildRequest(api, route, subject, now);
    if (!byRoute) {
      byRoute = new Map();
      built.set(subject.record, byRoute);
    }
    byRoute.set(route, { plan: subject.plan, req, validUntil: req?.quota ? req.quota.periodEnd : Number.MAX_SAFE_INTEGER });
    return req;
  }

  /**
   * The verdict for one call: as it is when the limiter had the decision at hand (a call covered
   * by a reservation, the usual case for a busy key), else a promise of it.
   */
  function enforce(
    api: CompiledApi,
    route: CompiledRoute,
    subject: LimitSubjectInput,
    requestId: string,
    now: number,
  ): LimitVerdict | Promise<LimitVerdict> {
    let req: DecideRequest | null;
    try {
      req = requestFor(api, route, subject, now);
    } catch {
      // An id that can't form a Redis key is a publishing bug; don't let it limit nothing silently.
      deps.onDecision?.('unavailable', 'none');
      return api.policy.failMode === 'closed' ? { kind: 'unavailable' } : { kind: 'skip' };
    }
    if (!req) return { kind: 'skip' };
    return decide(api, req, requestId);
  }

  function decide(api: CompiledApi, req: DecideRequest, requestId: string): LimitVerdict | Promise<LimitVerdict> {
    let outcome: LimitOutcome | Promise<LimitOutcome>;
    try {
      outcome = deps.redis.decideOrWait ? deps.redis.decideOrWait(req) : deps.redis.decide(req);
    } catch {
      return settle(api, req, null, requestId); // LimitInputError: a policy the limiter refuses; treat like an outage.
    }
    if (outcome instanceof Promise) {
      return outcome.then(
        (o) => settle(api, req, o, requestId),
        () => settle(api, req, null, requestId),
      );
    }
    return settle(api, req, outcome, requestId);
  }

  /** A verdict from the limiter's outcome; none (null) or `unavailable` falls to the API's fail mode. */
  function settle(api: CompiledApi, req: DecideRequest, outcome: LimitOutcome | null, requestId: string): LimitVerdict {
    if (outcome?.kind === 'decision') return verdictOf(outcome, requestId);
    if (api.policy.failMode === 'closed') {
      deps.onDecision?.('unavailable', 'none');
      return { kind: 'unavailable' };
    }
    // The memory limiter counts rates only; a quota alone has nothing to decide locally.
    if (req.rates.length === 0) {
      deps.onDecision?.('allowed', 'memory');
      return { kind: 'allow', headers: {}, overage: false, source: 'memory' };
    }
    try {
      return verdictOf(deps.memory.decideSync({ rates: req.rates, quota: null }), requestId);
    } catch {
      return { kind: 'skip' };
    }
  }

  return { enforce, buildRequest };
}
export type LimitEnforcer = ReturnType<typeof createLimitEnforcer>;
