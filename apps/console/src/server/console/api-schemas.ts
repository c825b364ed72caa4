// What an API may be created or updated with: the zod schemas the services, the forms and the
// admin API's OpenAPI document share.
import { z } from 'zod';
import { ClaimName, IntrospectionConfig, LifecycleFields } from './api-introspection';
import { CreateRouteInput } from './route-schemas';
import { CircuitBreakerInput, CorsInput, IpRulesInput, SharedRateLimitInput } from './edge-fields';
import { SafeName, SafeText, Slug } from '../shared/validation';

const BasePath = z
  .string({ error: 'must be text' })
  .trim()
  .max(128, 'must be at most 128 characters')
  .regex(/^\/(?:[A-Za-z0-9._~-]+(?:\/[A-Za-z0-9._~-]+)*)?\/?$/, 'must start with / and use letters, digits, . _ ~ - between slashes')
  .refine((p) => !p.split('/').some((s) => s === '.' || s === '..'), 'must not contain . or .. segments')
  .transform((p) => (p.length > 1 ? p.replace(/\/$/, '') : p));

const TargetInput = z.object({
  url: z.string({ error: 'must be text' }).trim().min(1, 'is required').max(2048, 'must be at most 2048 characters'),
  weight: z.number({ error: 'must be a number' }).int('must be a whole number').min(0).max(1000).default(1),
  healthCheckPath: z
    .string()
    .trim()
    .max(256)
    .regex(/^\/[\x21-\x7e]*$/, 'must start with /')
    .nullable()
    .optional(),
  /** Serves test keys only; live keys never reach a sandbox target (ADR 0017). */
  sandbox: z.boolean({ error: 'must be true or false' }).optional(),
});

const Millis = (min: number, max: number) =>
  z
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

// Claims, issuers and audiences end up in headers and logs: printable ASCII only.
const Printable = (max: number) =>
  z
    .string({ error: 'must be text' })
    .trim()
    .min(1, 'is required')
    .max(max, `must be at most ${max} characters`)
    .regex(/^[\x20-\x7e]+$/, 'must be printable ASCII');

const JwtConfig = z.object({
  issuer: Printable(512).nullable().default(null),
  audience: Printable(512).nullable().default(null),
  jwksUrl: z.string({ error: 'must be text' }).trim().max(2048).url('must be a URL').nullable().default(null),
  key: z.string().max(8192).nullable().default(null),
  algorithms: z
    .array(z.enum(['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'PS256', 'EdDSA', 'HS256', 'HS384', 'HS512']))
    .max(10)
    .default(['RS256']),
  forwardClaims: z
    .array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/))
    .max(20)
    .default([]),
  /** Refuse tokens without `exp` (the default); false accepts them (they never expire). */
  requireExp: z.boolean({ error: 'must be true or false' }).default(true),
  /** Longest token lifetime the API accepts, in seconds (default one day, at most a year). */
  maxLifetimeSeconds: z
    .number({ error: 'must be a number of seconds' })
    .int()
    .positive()
    .max(31_536_000, 'must be at most a year')
    .default(86_400),
  /** Claim naming the consumer a token bills to (ADR 0028); set, unbound subjects get 403. */
  consumerClaim: ClaimName.nullable().optional(),
});

const ApiFields = {
  name: SafeName(100),
  slug: Slug,
  description: SafeText(2000).default(''),
  basePath: BasePath,
  version: z
    .string({ error: 'must be text' })
    .trim()
    .min(1, 'is required')
    .max(32)
    .regex(/^[A-Za-z0-9._-]+$/, 'may use letters, digits, . _ - only')
    .default('v1'),
  visibility: z.enum(['PUBLIC', 'PRIVATE'], { error: 'must be PUBLIC or PRIVATE' }).default('PRIVATE'),
  authMode: z
    .enum(['API_KEY', 'JWT', 'INTROSPECTION', 'NONE'], { error: 'must be API_KEY, JWT, INTROSPECTION or NONE' })
    .default('API_KEY'),
  jwtConfig: JwtConfig.nullable().optional(),
  introspectionConfig: IntrospectionConfig.nullable().optional(),
  ...LifecycleFields,
  allowQueryKey: z.boolean({ error: 'must be true or false' }).default(false),
  failMode: z.enum(['OPEN', 'CLOSED'], { error: 'must be OPEN or CLOSED' }).default('OPEN'),
  loadBalancing: z.enum(['ROUND_ROBIN', 'WEIGHTED'], { error: 'must be ROUND_ROBIN or WEIGHTED' }).default('ROUND_ROBIN'),
  connectTimeoutMs: Millis(100, 60_000).default(2000),
  headersTimeoutMs: Millis(100, 600_000).default(10_000),
  requestTimeoutMs: Millis(100, 600_000).default(30_000),
  retries: z.number({ error: 'must be a number' }).int().min(0).max(5).default(1),
  targets: z.array(TargetInput, { error: 'must be a list' }).min(1, 'needs at least one upstream target').max(10, 'at most 10 targets'),
  /** The document itself (object or JSON text); null removes it. */
  openapi: z.unknown().optional(),
  openapiUrl: z.string().trim().max(2048).url('must be a URL').nullable().optional(),
  /** CORS answered at the gateway (ADR 0025); null turns it off. */
  cors: CorsInput.nullable().optional(),
  /** Client address allow/deny lists (CIDRs), checked before any authentication; null = none. */
  ipRules: IpRulesInput.nullable().optional(),
  /** A rate per client address on top of each key's limits; null = none. */
  perIpRateLimit: SharedRateLimitInput.nullable().optional(),
  /** Circuit breaker per upstream target, in each gateway process; null = none. */
  circuitBreaker: CircuitBreakerInput.nullable().optional(),
};

export const CreateApiInput = z
  .object({
    ...ApiFields,
    /** Initial routes; when omitted the API gets one catch-all route (`/*`, any method). */
    routes: z.lazy(() => z.array(CreateRouteInput, { error: 'must be a list' }).max(50, 'at most 50 routes at creation')).optional(),
  })
  .strict();
export const UpdateApiInput = z
  .object({
    ...ApiFields,
    description: SafeText(2000),
    version: ApiFields.version.unwrap(),
    visibility: z.enum(['PUBLIC', 'PRIVATE']),
    authMode: z.enum(['API_KEY', 'JWT', 'INTROSPECTION', 'NONE']),
    allowQueryKey: z.boolean({ error: 'must be true or false' }),
    failMode: z.enum(['OPEN', 'CLOSED']),
    loadBalancing: z.enum(['ROUND_ROBIN', 'WEIGHTED']),
    connectTimeoutMs: Millis(100, 60_000),
    headersTimeoutMs: Millis(100, 600_000),
    requestTimeoutMs: Millis(100, 600_000),
    retries: z.number({ error: 'must be a number' }).int().min(0).max(5),
  })
  .partial()
  .strict();
export type CreateApiInput = z.input<typeof CreateApiInput>;
