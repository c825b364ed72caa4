import { z } from 'zod';
import { CircuitBreakerPolicy, CorsPolicy, IpRules, Scopes } from './edge';
import { ConsumerClaim, IntrospectionPolicy } from './introspection';
import { ApiLifecycle } from './lifecycle';

/** Bumped when the snapshot's shape changes incompatibly; gateways refuse what they can't read. */
export const POLICY_SCHEMA_VERSION = 1;

const Id = z.string().min(1).max(64);
const Millis = z.number().int().positive().max(600_000);

export const RateAlgorithm = z.enum(['sliding_window', 'gcra', 'token_bucket', 'fixed_window']);
export type RateAlgorithm = z.infer<typeof RateAlgorithm>;

export const RateLimitPolicy = z.object({
  limit: z.number().int().positive(),
  windowSeconds: z.number().int().positive().max(86_400),
  algorithm: RateAlgorithm,
});
export type RateLimitPolicy = z.infer<typeof RateLimitPolicy>;

export const QuotaPolicy = z.object({
  /** Requests per billing period. */
  limit: z.number().int().nonnegative(),
  /** hard_cap: refuse past the limit; overage: serve and bill the excess. */
  mode: z.enum(['hard_cap', 'overage']),
});
export type QuotaPolicy = z.infer<typeof QuotaPolicy>;

export const UpstreamTargetPolicy = z.object({
  id: Id,
  url: z.url(),
  weight: z.number().int().min(0).max(1000),
  healthCheck: z
    .object({
      path: z.string().startsWith('/'),
      intervalMs: Millis,
      unhealthyThreshold: z.number().int().positive(),
      healthyThreshold: z.number().int().positive(),
    })
    .nullable(),
  /**
   * Serves test keys only (ADR 0017): an API with sandbox targets sends its test keys there and
   * never a live key; without any, test keys use the live targets. Absent = false.
   */
  sandbox: z.boolean().optional(),
});
export type UpstreamTargetPolicy = z.infer<typeof UpstreamTargetPolicy>;

export const HeaderTransform = z.object({
  requestHeaders: z
    .object({ set: z.record(z.string(), z.string()), remove: z.array(z.string()) })
    .partial()
    .optional(),
  responseHeaders: z
    .object({ set: z.record(z.string(), z.string()), remove: z.array(z.string()) })
    .partial()
    .optional(),
});
export type HeaderTransform = z.infer<typeof HeaderTransform>;

export const RoutePolicy = z.object({
  id: Id,
  /** Upper-case methods; empty = any. */
  methods: z.array(z.string().regex(/^[A-Z]+$/)),
  /** Below the API's base path: literal segments, `:param`, trailing `*`. */
  path: z.string().startsWith('/'),
  timeoutMs: Millis.nullable(),
  cacheTtlSeconds: z.number().int().nonnegative(),
  transform: HeaderTransform.nullable(),
  rateLimit: RateLimitPolicy.nullable(),
  /** Scopes a key (or token) must all hold to call this route; absent/empty = none (ADR 0025). */
  requiredScopes: Scopes.optional(),
  /** One limit shared by every caller of this route, protecting its upstream (ADR 0025). */
  sharedRateLimit: RateLimitPolicy.nullable().optional(),
});
export type RoutePolicy = z.infer<typeof RoutePolicy>;

export const JwtPolicy = z.object({
  issuer: z.string().nullable(),
  audience: z.string().nullable(),
  jwksUrl: z.url().nullable(),
  /** PEM public key or shared secret (HS256) when no JWKS. */
  key: z.string().nullable(),
  algorithms: z.array(z.string()),
  /** Claims forwarded upstream as X-Tollgate-Claim-{name}. */
  forwardClaims: z.array(z.string()),
  /** Tokens without `exp` are refused unless the API turns this off (they would be valid forever). */
  requireExp: z.boolean().default(true),
  /**
   * Longest lifetime accepted: `exp` − `iat` (or − now, whichever is earlier; without `iat`, − now).
   * A token valid for longer is refused even when its signature is good.
   */
  maxLifetimeSeconds: z.number().int().positive().max(31_536_000).default(86_400),
  /** Claim naming the consumer a token bills to (ADR 0028); absent = the token is not billed to anyone. */
  consumerClaim: ConsumerClaim.nullable().optional(),
});
export type JwtPolicy = z.infer<typeof JwtPolicy>;

export const ApiPolicy = z.object({
  id: Id,
  slug: z.string(),
  name: z.string(),
  /** Canonical, starts with '/', no trailing slash (except '/' itself). */
  basePath: z.string().startsWith('/'),
  version: z.string(),
  authMode: z.enum(['api_key', 'jwt', 'introspection', 'none']),
  allowQueryKey: z.boolean(),
  /** What to do with limits when Redis is unreachable. */
  failMode: z.enum(['open', 'closed']),
  loadBalancing: z.enum(['round_robin', 'weighted']),
  timeouts: z.object({ connectMs: Millis, headersMs: Millis, requestMs: Millis }),
  retries: z.number().int().min(0).max(5),
  jwt: JwtPolicy.nullable(),
  /** OAuth 2.0 token introspection settings (ADR 0028); absent in snapshots before it existed. */
  introspection: IntrospectionPolicy.nullable().optional(),
  /** Deprecation and sunset announced on every response (ADR 0028); absent = none. */
  lifecycle: ApiLifecycle.nullable().optional(),
  targets: z.array(UpstreamTargetPolicy),
  routes: z.array(RoutePolicy),
  /** Edge policies (ADR 0025); absent or null = off. */
  cors: CorsPolicy.nullable().optional(),
  ipRules: IpRules.nullable().optional(),
  /** A rate per client address on top of the key's own limits. */
  perIpRateLimit: RateLimitPolicy.nullable().optional(),
  circuitBreaker: CircuitBreakerPolicy.nullable().optional(),
});
export type ApiPolicy = z.infer<typeof ApiPolicy>;

export const PlanPolicy = z.object({
  id: Id,
  slug: z.string(),
  name: z.string(),
  rateLimit: RateLimitPolicy.nullable(),
  quota: QuotaPolicy.nullable(),
  apiIds: z.array(Id),
  /** Client address rules for every key on this plan, checked once the key is known (ADR 0025). */
  ipRules: IpRules.nullable().optional(),
});
export type PlanPolicy = z.infer<typeof PlanPolicy>;

export const PolicySnapshot = z.object({
  schemaVersion: z.literal(POLICY_SCHEMA_VERSION),
  tenantId: Id,
  tenantSlug: z.string(),
  version: z.number().int().nonnegative(),
  publishedAt: z.iso.datetime(),
  /** Custom domains, lower-case, besides `{tenantSlug}.{base domain}`. */
  hosts: z.array(z.string()),
  /**
   * The tenant allows upstreams on private/loopback/link-local addresses. Gateways check every
   * new upstream connection's resolved address against it (DNS rebinding); cloud metadata is
   * refused either way. Absent in snapshots published before it existed: not allowed.
   */
  allowPrivateTargets: z.boolean().default(false),
  apis: z.array(ApiPolicy),
  plans: z.array(PlanPolicy),
});
export type PolicySnapshot = z.infer<typeof PolicySnapshot>;
