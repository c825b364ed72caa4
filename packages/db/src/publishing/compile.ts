import {
  CircuitBreakerPolicy,
  CorsPolicy,
  HeaderTransform,
  IntrospectionPolicy,
  IpRules,
  JwtPolicy,
  KEY_RECORD_SCHEMA_VERSION,
  KeyRecord,
  POLICY_SCHEMA_VERSION,
  PolicySnapshot,
  RateLimitPolicy,
  type ApiPolicy,
  type PlanPolicy,
} from '@tollgate/policy';
import type { Prisma } from '../generated/prisma/client';
import type { Db } from '../client';

/** A client or an open transaction: every compile/enqueue function works inside the caller's transaction too. */
export type DbClient = Db | Prisma.TransactionClient;

const lower = <T extends string>(v: T) => v.toLowerCase() as Lowercase<T>;

/** Thrown when the database holds something the snapshot contract can't express; the outbox row keeps the message. */
export class PolicyCompileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyCompileError';
  }
}

function parseJson<T>(
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { message: string } } },
  value: unknown,
  what: string,
): T | null {
  if (value === null || value === undefined) return null;
  const res = schema.safeParse(value);
  if (!res.success) throw new PolicyCompileError(`${what} is not valid: ${res.error.message.slice(0, 300)}`);
  return res.data;
}

const JWT_DEFAULTS = { issuer: null, audience: null, jwksUrl: null, key: null, algorithms: [], forwardClaims: [] };

/**
 * The gateway's whole view of one tenant, built from PostgreSQL. `null` when the tenant does not
 * exist. The tenant row (and so `version`) is read before everything else: the data can only be
 * as new as or newer than the version it is labelled with, and the relay's compare-and-set on the
 * version then guarantees a later change is never hidden behind an equal version number.
 *
 * Plans: every ACTIVE plan, plus archived plans that still have live subscriptions (archiving a
 * plan closes it to new subscribers; it must not cut off the people already on it).
 */
export async function compileTenantPolicy(db: DbClient, tenantId: string, now: Date = new Date()): Promise<PolicySnapshot | null> {
  if (typeof tenantId !== 'string' || tenantId.length === 0 || tenantId.length > 64) return null;
  const res = (await compileTenantPolicies(db, [tenantId], now)).get(tenantId);
  if (res instanceof PolicyCompileError) throw res;
  return res ?? null;
}

/**
 * compileTenantPolicy for many tenants in three queries' worth of round trips, whatever their
 * number (`publish:all` compiles pages of tenants). Tenants that don't exist are absent from the
 * result; a tenant whose data the contract can't express maps to its PolicyCompileError, so one
 * bad tenant never fails the others.
 */
export async function compileTenantPolicies(
  db: DbClient,
  tenantIds: readonly string[],
  now: Date = new Date(),
): Promise<Map<string, PolicySnapshot | PolicyCompileError>> {
  const out = new Map<string, PolicySnapshot | PolicyCompileError>();
  const ids = [...new Set(tenantIds.filter((id) => typeof id === 'string' && id.length > 0 && id.length <= 64))];
  if (!ids.length) return out;
  const tenants = await db.tenant.findMany({
    where: { id: { in: ids } },
    select: { id: true, slug: true, policyVersion: true, customDomains: true, allowPrivateTargets: true },
  });
  if (!tenants.length) return out;
  const found = tenants.map((t) => t.id);
  const [apis, plans] = await Promise.all([
    db.api.findMany({
      where: { tenantId: { in: found }, archivedAt: null },
      orderBy: { id: 'asc' },
      include: {
        routes: { orderBy: { id: 'asc' } },
        targets: { where: { enabled: true }, orderBy: { id: 'asc' } },
      },
    }),
    db.plan.findMany({
      where: {
        tenantId: { in: found },
        OR: [{ status: 'ACTIVE' }, { subscriptions: { some: { status: { not: 'CANCELED' } } } }],
      },
      orderBy: { id: 'asc' },
      include: { planApis: { select: { apiId: true } } },
    }),
  ]);
  const apisOf = groupBy(apis, (a) => a.tenantId);
  const plansOf = groupBy(plans, (p) => p.tenantId);
  for (const tenant of tenants) {
    try {
      out.set(tenant.id, buildSnapshot(tenant, apisOf.get(tenant.id) ?? [], plansOf.get(tenant.id) ?? [], now));
    } catch (err) {
      if (!(err instanceof PolicyCompileError)) throw err;
      out.set(tenant.id, err);
    }
  }
  return out;
}

function groupBy<T>(rows: T[], key: (row: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const row of rows) {
    const k = key(row);
    const list = m.get(k);
    if (list) list.push(row);
    else m.set(k, [row]);
  }
  return m;
}

type TenantRow = { id: string; slug: string; policyVersion: number; customDomains: string[]; allowPrivateTargets: boolean };
type ApiRow = Prisma.ApiGetPayload<{ include: { routes: true; targets: true } }>;
type PlanRow = Prisma.PlanGetPayload<{ include: { planApis: { select: { apiId: true } } } }>;

function buildSnapshot(tenant: TenantRow, apis: ApiRow[], plans: PlanRow[], now: Date): PolicySnapshot {
  const tenantId = tenant.id;
  const apiIds = new Set(apis.map((a) => a.id));
  const apiPolicies: ApiPolicy[] = apis.map((api) => ({
    id: api.id,
    slug: api.slug,
    name: api.name,
    basePath: api.basePath,
    version: api.version,
    authMode: lower(api.authMode),
    allowQueryKey: api.allowQueryKey,
    failMode: lower(api.failMode),
    loadBalancing: lower(api.loadBalancing),
    timeouts: { connectMs: api.connectTimeoutMs, headersMs: api.headersTimeoutMs, requestMs: api.requestTimeoutMs },
    retries: api.retries,
    jwt:
      api.authMode === 'JWT' || api.jwtConfig
        ? parseJson(JwtPolicy, { ...JWT_DEFAULTS, ...((api.jwtConfig as object | null) ?? {}) }, `JWT settings of API ${api.id}`)
        : null,
    ...(api.authMode === 'INTROSPECTION' || api.introspectionConfig
      ? { introspection: parseJson(IntrospectionPolicy, api.introspectionConfig, `introspection settings of API ${api.id}`) }
      : {}),
    ...(api.deprecatedAt || api.sunsetAt
      ? {
          lifecycle: {
            deprecatedAt: api.deprecatedAt?.getTime() ?? null,
            sunsetAt: api.sunsetAt?.getTime() ?? null,
            link: api.deprecationLink ?? null,
          },
        }
      : {}),
    targets: api.targets.map((t) => ({
      id: t.id,
      url: t.url,
      weight: t.weight,
      healthCheck: t.healthCheckPath
        ? {
            path: t.healthCheckPath,
            intervalMs: t.healthCheckIntervalMs,
            unhealthyThreshold: t.unhealthyThreshold,
            healthyThreshold: t.healthyThreshold,
          }
        : null,
      ...(t.sandbox ? { sandbox: true } : {}),
    })),
    routes: api.routes.map((r) => ({
      id: r.id,
      methods: r.methods.map((m) => m.toUpperCase()),
      path: r.path,
      timeoutMs: r.requestTimeoutMs,
      cacheTtlSeconds: r.cacheTtlSeconds,
      transform: parseJson(HeaderTransform, r.transform, `transform of route ${r.id}`),
      rateLimit: parseJson(RateLimitPolicy, r.rateLimit, `rate limit of route ${r.id}`),
      // Edge policies (ADR 0025) only when set, so snapshots without them stay as they were.
      ...(r.requiredScopes.length ? { requiredScopes: r.requiredScopes } : {}),
      ...(r.sharedRateLimit !== null
        ? { sharedRateLimit: parseJson(RateLimitPolicy, r.sharedRateLimit, `route-wide limit of route ${r.id}`) }
        : {}),
    })),
    ...(api.cors !== null ? { cors: parseJson(CorsPolicy, api.cors, `CORS of API ${api.id}`) } : {}),
    ...(api.ipRules !== null ? { ipRules: parseJson(IpRules, api.ipRules, `address rules of API ${api.id}`) } : {}),
    ...(api.perIpRateLimit !== null
      ? { perIpRateLimit: parseJson(RateLimitPolicy, api.perIpRateLimit, `per-address limit of API ${api.id}`) }
      : {}),
    ...(api.circuitBreaker !== null
      ? { circuitBreaker: parseJson(CircuitBreakerPolicy, api.circuitBreaker, `circuit breaker of API ${api.id}`) }
      : {}),
  }));

  const planPolicies: PlanPolicy[] = plans.map((p) => ({
    id: p.id,
    slug: p.slug,
    name: p.name,
    rateLimit: p.rateLimit === null ? null : { limit: p.rateLimit, windowSeconds: p.rateWindowSeconds, algorithm: lower(p.rateAlgorithm) },
    quota: p.monthlyQuota === null ? null : { limit: p.monthlyQuota, mode: lower(p.quotaMode) },
    // Separate statements may straddle a commit; never point at an API the snapshot doesn't carry.
    apiIds: p.planApis.map((pa) => pa.apiId).filter((id) => apiIds.has(id)),
    ...(p.ipRules !== null ? { ipRules: parseJson(IpRules, p.ipRules, `address rules of plan ${p.id}`) } : {}),
  }));

  const snapshot = {
    schemaVersion: POLICY_SCHEMA_VERSION,
    tenantId: tenant.id,
    tenantSlug: tenant.slug,
    version: tenant.policyVersion,
    publishedAt: now.toISOString(),
    hosts: [...new Set(tenant.customDomains.map((h) => h.trim().toLowerCase()).filter(Boolean))],
    allowPrivateTargets: tenant.allowPrivateTargets,
    apis: apiPolicies,
    plans: planPolicies,
  };
  const res = PolicySnapshot.safeParse(snapshot);
  if (!res.success) throw new PolicyCompileError(`snapshot of tenant ${tenantId} is not valid: ${res.error.message.slice(0, 500)}`);
  return res.data;
}

/** What compileKeyRecord reads of a key; republishAll loads the same shape in batches. */
export const KEY_RECORD_INCLUDE = {
  consumer: { select: { status: true } },
  subscription: {
    select: {
      id: true,
      planId: true,
      status: true,
      currentPeriodStart: true,
      currentPeriodEnd: true,
      plan: { select: { rateWindowSeconds: true } },
    },
  },
} as const satisfies Prisma.ApiKeyInclude;

export type KeyRow = Prisma.ApiKeyGetPayload<{ include: typeof KEY_RECORD_INCLUDE }>;

/**
 * Maps one loaded key to its record. A key whose consumer is suspended or not yet approved is
 * published as revoked: the gateway has one question to ask ("may this key call?") and the
 * record answers it. An expired or rolled key keeps `status: 'active'` with its `expiresAt`; the
 * gateway compares the time itself, so expiry needs no publish.
 */
export function toKeyRecord(key: KeyRow): KeyRecord {
  const sub = key.subscription;
  const consumerServing = key.consumer.status === 'ACTIVE';
  const record = {
    schemaVersion: KEY_RECORD_SCHEMA_VERSION,
    keyId: key.id,
    tenantId: key.tenantId,
    consumerId: key.consumerId,
    subscriptionId: sub?.id ?? null,
    planId: sub?.planId ?? null,
    status: key.status === 'ACTIVE' && consumerServing ? 'active' : 'revoked',
    subscriptionStatus: sub ? lower(sub.status) : null,
    expiresAt: key.expiresAt ? key.expiresAt.getTime() : null,
    apiIds: key.apiIds,
    scopes: key.scopes,
    rateLimitOverride:
      key.rateLimitOverride === null
        ? null
        : { limit: key.rateLimitOverride, windowSeconds: key.rateWindowOverride ?? sub?.plan.rateWindowSeconds ?? 1 },
    quotaOverride: key.quotaOverride,
    periodStart: sub ? sub.currentPeriodStart.getTime() : null,
    periodEnd: sub ? sub.currentPeriodEnd.getTime() : null,
    env: key.env === 'test' ? ('test' as const) : ('live' as const),
    ...(key.ipRules !== null ? { ipRules: parseJson(IpRules, key.ipRules, `address rules of key ${key.id}`) } : {}),
  };
  const res = KeyRecord.safeParse(record);
  if (!res.success) throw new PolicyCompileError(`record of key ${key.id} is not valid: ${res.error.message.slice(0, 300)}`);
  return res.data;
}

/** The record the gateway should hold for one key, or `null` when the key no longer exists. */
export async function compileKeyRecord(db: DbClient, keyId: string): Promise<KeyRecord | null> {
  if (typeof keyId !== 'string' || keyId.length === 0 || keyId.length > 64) return null;
  const key = await db.apiKey.findUnique({ where: { id: keyId }, include: KEY_RECORD_INCLUDE });
  return key ? toKeyRecord(key) : null;
}
