import { createHash } from 'node:crypto';
import type { Keyspace, KeyRecord, PlanPolicy, RateLimitPolicy } from '@tollgate/policy';
import { createLimitKeys, type DecideRequest, type RateLimitCheck } from '@tollgate/ratelimit';
import type { CompiledApi, CompiledRoute } from '../routing/route-table';

export type LimitSubjectInput =
  | { kind: 'key'; record: KeyRecord; plan: PlanPolicy | null }
  /** JWT subject or client IP: only route limits apply. */
  | { kind: 'anonymous'; id: string };

/** Calendar month (UTC) around `now`, for keys published without a billing period. */
export function monthPeriod(now: number): { start: number; end: number } {
  const d = new Date(now);
  return { start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
}

const SAFE_PART = /^[A-Za-z0-9_.:-]{1,100}$/;
/** Anonymous callers whose limit request a route keeps (one small object each); past it the map starts over. */
const MAX_ANONYMOUS_PER_ROUTE = 10_000;

/** Subjects from outside (JWT `sub`, IPs) become key-safe by hashing when they aren't already. */
export function subjectId(raw: string): string {
  return SAFE_PART.test(raw) ? raw : createHash('sha256').update(raw).digest('hex').slice(0, 32);
}

const rateCheck = (name: string, key: string, r: RateLimitPolicy): RateLimitCheck => ({
  name,
  key,
  limit: r.limit,
  windowSeconds: r.windowSeconds,
  algorithm: r.algorithm,
});

/**
 * The limit request of each call, built once per (key record, route) or (anonymous subject,
 * route) and reused while they live: one object per caller shape, so the limiter validates and
 * encodes it once and can hold reservations for it (ADR 0013).
 */
export function createLimitRequests(keyspace: Keyspace) {
  function buildRequest(api: CompiledApi, route: CompiledRoute, subject: LimitSubjectInput, now: number): DecideRequest | null {
    const rates: RateLimitCheck[] = [];
    let quota: DecideRequest['quota'] = null;
    const r = route.policy.rateLimit;
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
        rates.push(rateCheck('key', keys.keyRate(), { ...override, algorithm: planRate?.algorithm ?? 'sliding_window' }));
      } else if (planRate) {
        rates.push(rateCheck('plan', keys.keyRate(), planRate));
      }
      if (r) rates.push(rateCheck('route', keys.routeRate(route.id), r));
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
    } else if (r) {
      rates.push(rateCheck('route', keyspace.rate(subject.id, `api:${api.id}:route:${route.id}`), r));
    }
    if (rates.length === 0 && !quota) return null;
    return { rates, quota };
  }

  // Key records and plans are immutable objects replaced on every refresh, so a request built
  // for (record, route) stays right while both live and the billing period hasn't rolled over.
  type Cached = { plan: PlanPolicy | null; req: DecideRequest | null; validUntil: number };
  const built = new WeakMap<KeyRecord, Map<CompiledRoute, Cached>>();
  // Anonymous subjects (JWT `sub`, client IP) have no record object to hang a request on: theirs
  // are kept per route, by subject id.
  const anonymous = new WeakMap<CompiledRoute, Map<string, DecideRequest | null>>();

  function requestFor(api: CompiledApi, route: CompiledRoute, subject: LimitSubjectInput, now: number): DecideRequest | null {
    if (subject.kind !== 'key') return bounded(anonymous, route, subject.id, () => buildRequest(api, route, subject, now));
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

  // Limits of issue 19 (ADR 0025), each in a decision of its own: their counters are shared by
  // many keys, so they can't share a Redis Cluster hash slot with any one key's counters.
  const routeWide = new WeakMap<CompiledRoute, DecideRequest>();
  const perIp = new WeakMap<CompiledApi, Map<string, DecideRequest | null>>();

  /** One limit for every caller of the route (it protects the upstream), or null. */
  function routeWideRequest(api: CompiledApi, route: CompiledRoute): DecideRequest | null {
    const r = route.policy.sharedRateLimit;
    if (!r) return null;
    let req = routeWide.get(route);
    if (req === undefined) {
      req = { rates: [rateCheck('route-shared', keyspace.rate(`route:${route.id}`, `api:${api.id}:shared`), r)], quota: null };
      routeWide.set(route, req);
    }
    return req;
  }

  /** The API's per-address limit for this client address, or null. */
  function perIpRequest(api: CompiledApi, ip: string): DecideRequest | null {
    const r = api.policy.perIpRateLimit;
    if (!r) return null;
    return bounded(perIp, api, ip, () => ({
      rates: [rateCheck('ip', keyspace.rate(subjectId(`ip:${ip}`), `api:${api.id}:ip`), r)],
      quota: null,
    }));
  }

  return { buildRequest, requestFor, routeWideRequest, perIpRequest };
}

function bounded<K extends object, V>(maps: WeakMap<K, Map<string, V>>, owner: K, id: string, make: () => V): V {
  let byId = maps.get(owner);
  if (byId !== undefined) {
    const hit = byId.get(id);
    if (hit !== undefined) return hit;
    if (byId.size >= MAX_ANONYMOUS_PER_ROUTE) byId.clear();
  } else {
    byId = new Map();
    maps.set(owner, byId);
  }
  const v = make();
  byId.set(id, v);
  return v;
}
