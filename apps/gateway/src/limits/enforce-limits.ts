import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Keyspace, KeyRecord, PlanPolicy, RateLimitPolicy } from '@tollgate/policy';
import {
  buildDecision,
  createLimitKeys,
  replyLength,
  limitExceededBody,
  rateLimitHeaders,
  type DecideRequest,
  type Decision,
  type Limiter,
  type LimitOutcome,
  type MemoryLimiter,
  type RateLimitCheck,
  type Unavailable,
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

export type FallbackReason = Unavailable['reason'] | 'input';

export type LimitEnforcerDeps = {
  keyspace: Keyspace;
  redis: Limiter;
  memory: MemoryLimiter;
  onDecision?: (result: 'allowed' | 'rate' | 'quota' | 'unavailable', source: 'redis' | 'memory' | 'none') => void;
  /**
   * Live gateway processes sharing this Redis (the heartbeat set, limits/heartbeat.ts): in
   * fallback each limit is divided by it. Default 1.
   */
  liveProcesses?: () => number;
  /** Every decision Redis could not make: why, the API's fail mode, and what was answered. */
  onFallback?: (reason: FallbackReason, mode: 'open' | 'closed', result: 'allowed' | 'rate' | 'quota' | 'unavailable') => void;
  /**
   * A key Redis refused is refused locally until the refusal's reset, for at most this long
   * (docs/adr/0020). 0 = every call asks Redis. Default 10 000 ms.
   */
  denyCacheMaxMs?: number;
  /** A call refused by the deny cache, without a round trip. */
  onLocalRefusal?: (reason: 'rate' | 'quota') => void;
};

/** A Redis refusal remembered: until when (performance.now() ms) the same request is refused. */
type Deny = { until: number; decision: Decision; at: number; secs: number; headers: Record<string, string>; shown: Decision };

/** Quota counters last seen in Redis decisions, kept for fallback; oldest dropped past this many. */
const MAX_QUOTAS_SEEN = 100_000;

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
 * answer (breaker open, or no reply within the wait bound) the API's fail mode decides: open =
 * this process's share of each limit and quota (docs/adr/0020), closed = 503. A key Redis refused
 * is refused locally until its reset (the deny cache), so a 429 flood costs no round trips.
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
      deps.onFallback?.('input', api.policy.failMode, api.policy.failMode === 'closed' ? 'unavailable' : 'allowed');
      return api.policy.failMode === 'closed' ? { kind: 'unavailable' } : { kind: 'skip' };
    }
    if (!req) return { kind: 'skip' };
    return decide(api, req, requestId);
  }

  const denyMaxMs = deps.denyCacheMaxMs ?? 10_000;
  const denied = new WeakMap<DecideRequest, Deny>();
  /** Quota key → `used` in the last Redis decision that carried it; and calls allowed in fallback since. */
  const quotaSeen = new Map<string, number>();
  const quotaLocal = new Map<string, number>();

  /** What a Redis decision teaches: its quota counter, and (refused) how long to refuse locally. */
  function observe(req: DecideRequest, d: Decision, sentAt: number): void {
    const q = req.quota;
    if (q && d.quota) {
      if (quotaSeen.size >= MAX_QUOTAS_SEEN && !quotaSeen.has(q.key)) quotaSeen.delete(quotaSeen.keys().next().value!);
      quotaSeen.set(q.key, d.quota.used);
      quotaLocal.delete(q.key);
    }
    if (d.allowed || denyMaxMs === 0 || d.source !== 'redis') return;
    // Counts only grow until the reset Redis named (given back reservations aside: ADR 0020), so
    // the same request is refused until then. Timed from when it was sent, before Redis decided,
    // and 1 ms short of the rounded-up reset: never later than Redis would refuse it.
    const ms = Math.min((d.retryAfterMs ?? 0) - 1, denyMaxMs);
    if (ms <= 0) return;
    denied.set(req, { until: sentAt + ms, decision: d, at: sentAt, secs: -1, headers: {}, shown: d });
  }

  function localRefusal(deny: Deny, now: number, requestId: string): LimitVerdict {
    const secs = Math.max(1, Math.ceil((deny.until - now) / 1000));
    if (secs !== deny.secs) {
      deny.secs = secs;
      deny.shown = { ...deny.decision, retryAfterSeconds: secs, now: deny.decision.now + Math.round(now - deny.at) };
      deny.headers = rateLimitHeaders(deny.shown);
    }
    const reason = deny.decision.reason ?? 'rate';
    deps.onDecision?.(reason, 'redis');
    deps.onLocalRefusal?.(reason);
    return { kind: 'reject', status: 429, reason, headers: deny.headers, body: limitExceededBody(deny.shown, requestId), source: 'redis' };
  }

  function decide(api: CompiledApi, req: DecideRequest, requestId: string): LimitVerdict | Promise<LimitVerdict> {
    const sentAt = performance.now();
    if (denyMaxMs > 0) {
      const deny = denied.get(req);
      if (deny !== undefined) {
        if (sentAt < deny.until) return localRefusal(deny, sentAt, requestId);
        denied.delete(req);
      }
    }
    let outcome: LimitOutcome | Promise<LimitOutcome>;
    try {
      outcome = deps.redis.decideOrWait ? deps.redis.decideOrWait(req) : deps.redis.decide(req);
    } catch {
      return settle(api, req, null, requestId, sentAt); // LimitInputError: a policy the limiter refuses; treat like an outage.
    }
    if (outcome instanceof Promise) {
      return outcome.then(
        (o) => settle(api, req, o, requestId, sentAt),
        () => settle(api, req, null, requestId, sentAt),
      );
    }
    return settle(api, req, outcome, requestId, sentAt);
  }

  /** A verdict from the limiter's outcome; none (null) or `unavailable` falls to the API's fail mode. */
  function settle(api: CompiledApi, req: DecideRequest, outcome: LimitOutcome | null, requestId: string, sentAt: number): LimitVerdict {
    if (outcome?.kind === 'decision') {
      observe(req, outcome, sentAt);
      return verdictOf(outcome, requestId);
    }
    const reason: FallbackReason = outcome === null ? 'input' : outcome.reason;
    if (api.policy.failMode === 'closed') {
      deps.onDecision?.('unavailable', 'none');
      deps.onFallback?.(reason, 'closed', 'unavailable');
      return { kind: 'unavailable' };
    }
    let verdict: LimitVerdict;
    try {
      verdict = verdictOf(fallbackDecision(req), requestId);
    } catch {
      verdict = { kind: 'skip' };
    }
    deps.onFallback?.(reason, 'open', verdict.kind === 'reject' ? verdict.reason : 'allowed');
    return verdict;
  }

  // Fallback requests: each rate divided by the live processes, built once per (request, count).
  const scaled = new WeakMap<DecideRequest, { n: number; req: DecideRequest }>();

  /**
   * This process's decision while Redis can't make one (docs/adr/0020): every rate limit divided
   * by the number of live gateway processes, and a quota checked against the last counter this
   * process saw in Redis, of which it may use its share (what was left / processes).
   */
  function fallbackDecision(req: DecideRequest): Decision {
    const n = Math.max(1, Math.floor(deps.liveProcesses?.() ?? 1));
    let s = scaled.get(req);
    if (s === undefined || s.n !== n) {
      s = { n, req: { rates: req.rates.map((r) => ({ ...r, limit: Math.max(1, Math.floor(r.limit / n)) })), quota: null, cost: req.cost } };
      scaled.set(req, s);
    }
    const cost = req.cost ?? 1;
    const q = req.quota ?? null;
    const now = Date.now();
    let quotaState: Decision['quota'] = null;
    let overage = false;
    if (q) {
      const seen = quotaSeen.get(q.key) ?? 0;
      const local = quotaLocal.get(q.key) ?? 0;
      const share = Math.floor(Math.max(0, q.limit - seen) / n);
      const used = seen + local;
      const windowSeconds = q.periodStart != null ? Math.round((q.periodEnd - q.periodStart) / 1000) : null;
      quotaState = { mode: q.mode, limit: q.limit, used, remaining: Math.max(0, q.limit - used), resetAt: q.periodEnd, windowSeconds };
      if (local + cost > share) {
        if (q.mode === 'hard_cap') {
          return {
            kind: 'decision',
            allowed: false,
            reason: 'quota',
            limitName: 'quota',
            rate: null,
            rates: [],
            quota: quotaState,
            overage: false,
            retryAfterSeconds: Math.max(1, Math.ceil((q.periodEnd - now) / 1000)),
            retryAfterMs: null,
            now,
            source: 'memory',
          };
        }
        overage = true;
      }
    }
    const d: Decision =
      s.req.rates.length > 0
        ? deps.memory.decideSync(s.req)
        : {
            kind: 'decision',
            allowed: true,
            reason: null,
            limitName: null,
            rate: null,
            rates: [],
            quota: null,
            overage: false,
            retryAfterSeconds: null,
            now,
            source: 'memory',
          };
    if (!q || !d.allowed) return d;
    quotaLocal.set(q.key, (quotaLocal.get(q.key) ?? 0) + cost);
    const used = quotaState!.used + cost;
    return { ...d, overage, quota: { ...quotaState!, used, remaining: Math.max(0, q.limit - used) } };
  }

  /**
   * A decision the cold-key script made in the key's first round trip (limits/cold-path.ts): its
   * verdict when the script charged exactly the keys this request would have, else null (the
   * caller then decides the ordinary way).
   */
  function adopt(
    api: CompiledApi,
    route: CompiledRoute,
    subject: LimitSubjectInput,
    requestId: string,
    now: number,
    keys: readonly string[],
    reply: readonly number[],
    sentAt: number,
  ): LimitVerdict | null {
    let req: DecideRequest | null;
    try {
      req = requestFor(api, route, subject, now);
    } catch {
      return null;
    }
    if (!req || (req.cost ?? 1) !== 1) return null;
    const n = req.rates.length;
    if (keys.length !== n + (req.quota ? 1 : 0)) return null;
    for (let i = 0; i < n; i++) if (keys[i] !== req.rates[i]!.key) return null;
    if (req.quota && keys[n] !== req.quota.key) return null;
    if (reply.length < 1 + replyLength(req) || !Number.isFinite(reply[0])) return null;
    const d = buildDecision(req, reply, 1, Number(reply[0]), 'redis');
    observe(req, d, sentAt);
    return verdictOf(d, requestId);
  }

  return { enforce, buildRequest, adopt };
}
export type LimitEnforcer = ReturnType<typeof createLimitEnforcer>;
