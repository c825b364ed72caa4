import { z } from 'zod';

/**
 * The configuration file, one source of truth: the CLI validates with these schemas and
 * schema/tollgate.schema.json (what editors validate with) is generated from them
 * (`npm run schema -w @tollgate/cli`; a test fails when the committed copy is stale).
 * The console validates everything again, deeper (SSRF rules, OpenAPI documents); these
 * rules catch typos and wrong types before a single request is made.
 */
export const CONFIG_VERSION = 1;

const text = (max: number) => z.string().trim().max(max);
const name = (max: number) => z.string().trim().min(1).max(max);
const int = (min: number, max: number) => z.number().int().min(min).max(max);
const Slug = z
  .string()
  .trim()
  .toLowerCase()
  .min(2)
  .max(48)
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, 'may use a-z, 0-9 and inner dashes only')
  .describe('Identifies the object across workspaces: the file refers to APIs and plans by slug.');
const optionalId = (prefix: string) =>
  z
    .string()
    .regex(new RegExp(`^${prefix}_[0-9a-z]{26}$`), `must be a ${prefix}_… id`)
    .optional()
    .describe('Optional. When it names an object of this workspace, that object is updated (a slug or path may then change).');
const BasePath = z
  .string()
  .trim()
  .max(128)
  .regex(/^\/(?:[A-Za-z0-9._~-]+(?:\/[A-Za-z0-9._~-]+)*)?\/?$/, 'must start with / and use letters, digits, . _ ~ - between slashes')
  .describe('Path prefix under which the gateway serves this API.');
const RoutePath = z
  .string()
  .trim()
  .max(256)
  .regex(
    /^\/(?:(?:[A-Za-z0-9._~-]+|:[A-Za-z_][A-Za-z0-9_]*)(?:\/(?:[A-Za-z0-9._~-]+|:[A-Za-z_][A-Za-z0-9_]*))*)?(?:\/\*)?\/?$|^\/\*$/,
    'must start with / and use literal segments, :params and an optional trailing /*',
  );
const HeaderName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be a header name');
const HeaderValue = z
  .string()
  .max(1024)
  .regex(/^[\x20-\x7e\t]*$/, 'must be printable ASCII without line breaks');

const HeaderOps = z
  .object({
    set: z.record(HeaderName, HeaderValue).optional().describe('Headers to add or replace. A value may be ${env:NAME}.'),
    remove: z.array(HeaderName).max(20).optional(),
  })
  .strict();

export const Transform = z
  .object({ requestHeaders: HeaderOps.optional(), responseHeaders: HeaderOps.optional() })
  .strict()
  .describe('Header changes the gateway applies to requests going upstream and responses coming back.');

export const RouteRateLimit = z
  .object({
    limit: int(1, 1_000_000),
    windowSeconds: int(1, 86_400),
    algorithm: z.enum(['sliding_window', 'gcra', 'token_bucket', 'fixed_window']).default('sliding_window'),
  })
  .strict();

// Edge policies (docs/adr/0025). Shapes and bounds here; the console checks the rest (CIDR
// syntax, "*" with credentials) and names the field it refuses.
const Cidr = z.string().trim().min(2).max(64).describe('An IPv4 or IPv6 address or CIDR (a.b.c.d/n, x:y::/n).');
export const IpRules = z
  .object({
    allow: z.array(Cidr).max(5000).default([]).describe('When not empty, only these client addresses may call.'),
    deny: z.array(Cidr).max(5000).default([]).describe('These client addresses may never call (deny wins over allow).'),
  })
  .strict()
  .describe('Client address rules, on the real client address (trusted proxies aside).');
export const Cors = z
  .object({
    origins: z
      .array(z.string().trim().max(300))
      .min(1)
      .max(200)
      .describe('Exact origins (scheme://host[:port], lower case), or ["*"] for any (not with credentials).'),
    methods: z
      .array(z.string().regex(/^[A-Z]{1,16}$/))
      .max(32)
      .default([])
      .describe('Methods a preflight may ask for; empty = what the route allows.'),
    headers: z
      .array(HeaderName)
      .max(100)
      .default([])
      .describe('Request headers a preflight may ask for; ["*"] = any (not with credentials).'),
    exposedHeaders: z.array(HeaderName).max(100).default([]).describe('Response headers browser scripts may read.'),
    credentials: z.boolean().default(false),
    maxAgeSeconds: int(0, 86_400).default(600),
  })
  .strict()
  .describe('CORS answered at the gateway: preflights never reach the upstream and are not metered.');
export const CircuitBreaker = z
  .object({
    failureRatio: z.number().gt(0).max(1).describe('Share of 5xx answers and timeouts that opens the circuit.'),
    minRequests: int(1, 100_000).describe('Calls the window must hold before the ratio counts.'),
    windowSeconds: int(1, 600),
    openSeconds: int(1, 3600).describe('How long an open circuit answers 503 before it lets probes through.'),
    halfOpenProbes: int(1, 100).describe('Probes let through at once; that many successes close the circuit.'),
  })
  .strict()
  .describe('Per upstream target, in each gateway process.');
const Scope = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/, 'a scope is 1-128 visible characters, no quote or backslash');

export const Route = z
  .object({
    id: optionalId('rte'),
    name: text(100).default(''),
    methods: z
      .array(z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']))
      .max(7)
      .default([])
      .describe('Empty means any method.'),
    path: RoutePath,
    requestTimeoutMs: int(100, 600_000).nullable().default(null),
    cacheTtlSeconds: int(0, 86_400).default(0),
    rateLimit: RouteRateLimit.nullable().default(null).describe("An extra limit for this route alone, on top of the plan's."),
    transform: Transform.nullable().default(null),
    requiredScopes: z.array(Scope).max(64).default([]).describe('Scopes a key must all hold to call this route (403 insufficient_scope).'),
    sharedRateLimit: RouteRateLimit.nullable()
      .default(null)
      .describe('One limit shared by every caller of this route (it protects the upstream).'),
  })
  .strict();

export const Target = z
  .object({
    url: z.string().trim().min(1).max(2048).describe('http(s) URL of an upstream server, no credentials, query or fragment.'),
    weight: int(0, 1000).default(1),
    sandbox: z.boolean().default(false).describe('Serves test keys only; live keys never reach it (docs/adr/0017).'),
    healthCheckPath: z
      .string()
      .trim()
      .max(256)
      .regex(/^\/[\x21-\x7e]*$/, 'must start with /')
      .nullable()
      .default(null),
  })
  .strict();

const ClaimName = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/);

const Printable = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .regex(/^[\x20-\x7e]+$/, 'must be printable ASCII');

export const Jwt = z
  .object({
    issuer: Printable(512).nullable().default(null),
    audience: Printable(512).nullable().default(null),
    jwksUrl: z.string().trim().max(2048).nullable().default(null),
    key: z
      .string()
      .max(8192)
      .nullable()
      .default(null)
      .describe('A PEM public key, or for HS* algorithms the shared secret: write ${env:NAME}, never the secret itself.'),
    algorithms: z
      .array(z.enum(['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'PS256', 'EdDSA', 'HS256', 'HS384', 'HS512']))
      .max(10)
      .default(['RS256']),
    forwardClaims: z
      .array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/))
      .max(20)
      .default([]),
    requireExp: z.boolean().default(true).describe('Refuse tokens without `exp` (docs/adr/0019).'),
    maxLifetimeSeconds: z
      .number()
      .int()
      .positive()
      .max(31_536_000)
      .default(86_400)
      .describe('The longest lifetime (exp − iat) a token may have, in seconds.'),
    consumerClaim: ClaimName.nullable()
      .default(null)
      .describe('Claim naming the subject binding a token bills to (docs/adr/0028); set, unbound subjects get 403.'),
  })
  .strict();

export const Introspection = z
  .object({
    endpoint: z.string().trim().max(2048).describe('The OAuth 2.0 token introspection endpoint (RFC 7662).'),
    clientId: Printable(256),
    clientSecret: z
      .string()
      .max(1024)
      .nullable()
      .default(null)
      .describe('client_secret_basic secret: write ${env:NAME}, never the secret itself. null keeps the stored one.'),
    cacheMaxTtlSeconds: int(0, 3600).default(60).describe('Longest an answer is reused (never past the token exp).'),
    requiredScopes: z
      .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/))
      .max(32)
      .default([]),
    consumerClaim: ClaimName.nullable().default(null).describe('e.g. client_id: every caller must be bound to a consumer (docs/adr/0028).'),
  })
  .strict();

export const Api = z
  .object({
    id: optionalId('api'),
    slug: Slug,
    name: name(100),
    description: text(2000).default(''),
    basePath: BasePath,
    version: z
      .string()
      .trim()
      .min(1)
      .max(32)
      .regex(/^[A-Za-z0-9._-]+$/)
      .default('v1'),
    visibility: z.enum(['PUBLIC', 'PRIVATE']).default('PRIVATE').describe('PUBLIC APIs are listed in the developer portal.'),
    authMode: z.enum(['API_KEY', 'JWT', 'INTROSPECTION', 'NONE']).default('API_KEY'),
    jwt: Jwt.nullable().default(null),
    introspection: Introspection.nullable().default(null),
    deprecatedAt: z.iso.datetime().nullable().default(null).describe('Announced in a Deprecation header (RFC 9745).'),
    sunsetAt: z.iso.datetime().nullable().default(null).describe('Announced in a Sunset header (RFC 8594).'),
    deprecationLink: z.string().trim().max(2048).nullable().default(null),
    allowQueryKey: z.boolean().default(false),
    failMode: z.enum(['OPEN', 'CLOSED']).default('OPEN').describe('What limits do while Redis is unreachable.'),
    loadBalancing: z.enum(['ROUND_ROBIN', 'WEIGHTED']).default('ROUND_ROBIN'),
    connectTimeoutMs: int(100, 60_000).default(2000),
    headersTimeoutMs: int(100, 600_000).default(10_000),
    requestTimeoutMs: int(100, 600_000).default(30_000),
    retries: int(0, 5).default(1),
    openapiUrl: z.string().trim().max(2048).nullable().default(null),
    openapi: z
      .record(z.string(), z.unknown())
      .nullable()
      .default(null)
      .describe('The OpenAPI document the portal shows, as a mapping (3.x).'),
    cors: Cors.nullable().default(null),
    ipRules: IpRules.nullable().default(null).describe('Checked before any authentication; 403 when refused.'),
    perIpRateLimit: RouteRateLimit.nullable().default(null).describe("A rate per client address, on top of each key's limits."),
    circuitBreaker: CircuitBreaker.nullable().default(null),
    targets: z.array(Target).min(1).max(10),
    routes: z
      .array(Route)
      .max(200)
      .default([
        {
          name: 'All paths',
          methods: [],
          path: '/*',
          requestTimeoutMs: null,
          cacheTtlSeconds: 0,
          rateLimit: null,
          transform: null,
          requiredScopes: [],
          sharedRateLimit: null,
        },
      ])
      .describe('The paths the gateway forwards. Omitted: one catch-all route (/*, any method), as the console creates.'),
  })
  .strict();

const Tier = z
  .object({ upTo: int(1, 2_000_000_000).nullable(), unitPriceMinor: int(0, 100_000_000), flatMinor: int(0, 100_000_000).default(0) })
  .strict();

export const Plan = z
  .object({
    id: optionalId('pln'),
    slug: Slug,
    name: name(80),
    description: text(1000).default(''),
    public: z.boolean().default(true),
    rateLimit: int(1, 1_000_000).nullable().default(null).describe('Requests per rateWindowSeconds; null = no rate limit.'),
    rateWindowSeconds: int(1, 86_400).default(1),
    rateAlgorithm: z.enum(['SLIDING_WINDOW', 'GCRA', 'TOKEN_BUCKET', 'FIXED_WINDOW']).default('SLIDING_WINDOW'),
    monthlyQuota: int(1, 2_000_000_000).nullable().default(null).describe('Requests per billing period; null = unlimited.'),
    quotaMode: z.enum(['HARD_CAP', 'OVERAGE']).default('HARD_CAP'),
    flatFeeMinor: int(0, 100_000_000).default(0).describe('Prices are in minor units (cents) of the workspace currency.'),
    includedRequests: int(0, 2_000_000_000).default(0),
    overageUnitPriceMinor: int(0, 100_000_000).default(0),
    overageBlockSize: int(1, 1_000_000).default(1),
    tiers: z.array(Tier).max(10).nullable().default(null),
    trialDays: int(0, 365).default(0),
    apis: z.array(Slug).max(100).default([]).describe('Slugs of the APIs this plan opens.'),
    ipRules: IpRules.nullable().default(null).describe('Client address rules for every key on this plan, checked once the key is known.'),
  })
  .strict();

export const Settings = z
  .object({
    currency: z
      .enum(['usd', 'eur', 'gbp', 'jpy', 'cad', 'aud', 'chf'])
      .optional()
      .describe('Currency of new plans. Changing it needs the owner role (not a token): do it in the console.'),
    allowPrivateTargets: z
      .boolean()
      .optional()
      .describe('Allow upstream targets on private addresses. Owner role only: change it in the console.'),
    requireDeveloperApproval: z.boolean().optional().describe('Developers who sign up in the portal wait for approval.'),
  })
  .strict();

export const ConfigFile = z
  .object({
    version: z.literal(CONFIG_VERSION).describe('Format version of this file.'),
    settings: Settings.optional().describe('Absent: settings are left as they are.'),
    apis: z.array(Api).max(500).optional().describe('Absent: APIs are left as they are. Present: the complete list.'),
    plans: z.array(Plan).max(500).optional().describe('Absent: plans are left as they are. Present: the complete list.'),
  })
  .strict()
  .describe('A Tollgate workspace configuration (tollgate export / diff / apply).');

export type ConfigFile = z.output<typeof ConfigFile>;
export type ApiConfig = z.output<typeof Api>;
export type RouteConfig = z.output<typeof Route>;
export type TargetConfig = z.output<typeof Target>;
export type PlanConfig = z.output<typeof Plan>;
export type SettingsConfig = z.output<typeof Settings>;

/** The JSON Schema editors validate the file with (draft 2020-12, as yaml-language-server reads it). */
export function buildJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ConfigFile, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, title: 'Tollgate workspace configuration' };
}

/**
 * Each entry's fields, in the order a file writes them (after `id`; an API's `routes` last) and
 * `plan` compares them.
 */
export const API_FIELDS = [
  'slug',
  'name',
  'description',
  'basePath',
  'version',
  'visibility',
  'authMode',
  'jwt',
  'introspection',
  'deprecatedAt',
  'sunsetAt',
  'deprecationLink',
  'allowQueryKey',
  'failMode',
  'loadBalancing',
  'connectTimeoutMs',
  'headersTimeoutMs',
  'requestTimeoutMs',
  'retries',
  'openapiUrl',
  'openapi',
  'cors',
  'ipRules',
  'perIpRateLimit',
  'circuitBreaker',
  'targets',
] as const satisfies readonly (keyof ApiConfig)[];
export const ROUTE_FIELDS = [
  'name',
  'methods',
  'path',
  'requestTimeoutMs',
  'cacheTtlSeconds',
  'rateLimit',
  'transform',
  'requiredScopes',
  'sharedRateLimit',
] as const;
export const PLAN_FIELDS = [
  'slug',
  'name',
  'description',
  'public',
  'rateLimit',
  'rateWindowSeconds',
  'rateAlgorithm',
  'monthlyQuota',
  'quotaMode',
  'flatFeeMinor',
  'includedRequests',
  'overageUnitPriceMinor',
  'overageBlockSize',
  'tiers',
  'trialDays',
  'apis',
  'ipRules',
] as const satisfies readonly (keyof PlanConfig)[];
