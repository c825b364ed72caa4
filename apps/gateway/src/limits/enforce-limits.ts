import { performance } from 'node:perf_hooks';
import type { Keyspace } from '@tollgate/policy';
import {
  buildDecision,
  replyLength,
  limitExceededBody,
  rateLimitHeaders,
  type DecideRequest,
  type Decision,
  type Limiter,
  type LimitOutcome,
  type MemoryLimiter,
  type Unavailable,
} from '@tollgate/ratelimit';
import type { ErrorBody } from '@tollgate/policy';
import type { CompiledApi, CompiledRoute } from '../routing/route-table';
import { createFallback } from './fallback';
import { createLimitRequests, type LimitSubjectInput } from './limit-requests';

export { monthPeriod, subjectId, type LimitSubjectInput } from './limit-requests';

export type LimitVerdict =
  | { kind: 'skip' }
  | { kind: 'allow'; headers: Record<string, string>; overage: boolean; source: 'redis' | 'memory' }
  | { kind: 'reject'; status: 429; reason: 'rate' | 'quota'; headers: Record<string, string>; body: ErrorBody; source: 'redis' | 'memory' }
  | { kind: 'unavailable' };

const SKIP: LimitVerdict = { kind: 'skip' };

function combine(x: LimitVerdict, y: LimitVerdict): LimitVerdict {
  if (x.kind === 'reject' || x.kind === 'unavailable') return x;
  if (y.kind === 'reject' || y.kind === 'unavailable') return y;
  if (x.kind === 'skip') return y;
  if (y.kind === 'skip') return x;
  return { ...x, headers: mergeLimitHeaders(x.headers, y.headers) };
}

/**
 * Two allowed decisions' headers as one: the IETF lists joined (one member per limit), the
 * `X-RateLimit-*` trio of whichever has fewer calls left.
 */
export function mergeLimitHeaders(a: Record<string, string>, b: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const remaining = (h: Record<string, string>) =>
    h['X-RateLimit-Remaining'] === undefined ? Infinity : Number(h['X-RateLimit-Remaining']);
  const [tight, loose] = remaining(a) <= remaining(b) ? [a, b] : [b, a];
  Object.assign(out, loose, tight);
  for (const name of ['RateLimit-Policy', 'RateLimit']) {
    if (a[name] !== undefined && b[name] !== undefined) out[name] = `${a[name]}, ${b[name]}`;
  }
  return out;
}

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

/**
 * Builds the one decision a request needs — the key's plan rate (or its override), the route's
 * own rate, the subscription's quota — and runs it in one Redis round trip. When Redis can't
 * answer (breaker open, or no reply within the wait bound) the API's fail mode decides: open =
 * this process's share of each limit and quota (docs/adr/0020), closed = 503. A key Redis refused
 * is refused locally until its reset (the deny cache), so a 429 flood costs no round trips.
 */
export function createLimitEnforcer(deps: LimitEnforcerDeps) {
  const { keyspace } = deps;

  const requests = createLimitRequests(keyspace);
  const { requestFor } = requests;
  const fallback = createFallback(deps.memory, deps.liveProcesses);

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

  /** What a Redis decision teaches: its quota counter, and (refused) how long to refuse locally. */
  function observe(req: DecideRequest, d: Decision, sentAt: number): void {
    fallback.observeQuota(req, d);
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
      verdict = verdictOf(fallback.fallbackDecision(req), requestId);
    } catch {
      verdict = { kind: 'skip' };
    }
    deps.onFallback?.(reason, 'open', verdict.kind === 'reject' ? verdict.reason : 'allowed');
    return verdict;
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

  /**
   * The route-wide limit and the per-address limit (ADR 0025): each is a decision of its own
   * (their counters are shared by many keys: no common hash slot with a key's), asked at once.
   * Either refusing refuses the call; allowed, their headers are merged.
   */
  function enforceShared(
    api: CompiledApi,
    route: CompiledRoute,
    ip: string | null,
    requestId: string,
  ): LimitVerdict | Promise<LimitVerdict> {
    const a = requests.routeWideRequest(api, route);
    const b = ip === null ? null : requests.perIpRequest(api, ip);
    const va = a === null ? SKIP : decide(api, a, requestId);
    const vb = b === null ? SKIP : decide(api, b, requestId);
    if (va instanceof Promise || vb instanceof Promise) return Promise.all([va, vb]).then(([x, y]) => combine(x, y));
    return combine(va, vb);
  }

  return { enforce, enforceShared, buildRequest: requests.buildRequest, adopt };
}
export type LimitEnforcer = ReturnType<typeof createLimitEnforcer>;
