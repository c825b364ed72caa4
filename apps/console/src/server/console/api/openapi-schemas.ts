import { z } from 'zod';
import { CreateApiInput, UpdateApiInput } from '../api-schemas';
import { CreateRouteInput, UpdateRouteInput } from '../route-schemas';
import { CreatePlanInput, UpdatePlanInput } from '../plans';
import { CreateConsumerInput, UpdateConsumerInput } from '../consumers';
import { IssueKeyInput, RollKeyInput, UpdateKeyInput } from '../keys';
import { BindSubjectInput } from '../subject-bindings';
import { ChangeRoleInput, InviteInput } from '../members';
import { CreateTokenInput } from '../tokens';
import { UpdateTenantInput } from '../tenant';
import { CircuitBreakerInput, CorsInput, IpRulesInput, SharedRateLimitInput } from '../edge-fields';

// The admin API's component schemas: the response shapes, written out, and the request bodies,
// generated from the services' zod schemas. openapi-doc.ts puts the paths around them.

export type Schema = Record<string, unknown>;

// Request bodies come from the same zod schemas the services validate with, so the document
// can't drift from what is accepted.
function input(schema: z.ZodType): Schema {
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as Schema;
  return rest;
}

export const ts = { type: 'string', format: 'date-time' };
const nts = { type: ['string', 'null'], format: 'date-time' };
export const str = { type: 'string' };
const nstr = { type: ['string', 'null'] };
const int = { type: 'integer' };
const nint = { type: ['integer', 'null'] };
const bool = { type: 'boolean' };
const strs = { type: 'array', items: str };
const obj = (required: string[], properties: Record<string, unknown>): Schema => ({ type: 'object', required, properties });
export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const nullable = (name: string) => ({ oneOf: [{ type: 'null' }, ref(name)] });
const page = (item: string) => obj(['data', 'nextCursor'], { data: { type: 'array', items: ref(item) }, nextCursor: nstr });

export const schemas: Record<string, Schema> = {
  Error: obj(['error'], {
    error: obj(['code', 'message'], { code: str, message: str, requestId: str, fields: { type: 'object', additionalProperties: str } }),
  }),
  Cors: {
    ...input(CorsInput),
    description:
      'CORS answered at the gateway (ADR 0025): preflights never reach the upstream and are not metered. `origins` lists exact origins or is `["*"]`; `*` with `credentials` is refused.',
  },
  IpRules: {
    ...input(IpRulesInput),
    description: 'IPv4/IPv6 CIDRs (or single addresses). A deny match refuses (403); with an allow list only what it lists passes.',
  },
  CircuitBreaker: {
    ...input(CircuitBreakerInput),
    description:
      'Per upstream target, in each gateway process: opens at `failureRatio` of 5xx/timeouts over `windowSeconds` (once `minRequests` calls), answers 503 with Retry-After for `openSeconds`, then lets `halfOpenProbes` calls through.',
  },
  SharedRateLimit: input(SharedRateLimitInput),
  Target: obj(['id', 'url', 'weight'], { id: str, url: str, weight: int, enabled: bool, healthCheckPath: nstr, sandbox: bool }),
  Route: obj(['id', 'apiId', 'methods', 'path'], {
    id: str,
    apiId: str,
    name: str,
    methods: strs,
    path: str,
    requestTimeoutMs: nint,
    cacheTtlSeconds: int,
    rateLimit: { oneOf: [{ type: 'null' }, obj(['limit', 'windowSeconds'], { limit: int, windowSeconds: int, algorithm: str })] },
    transform: {
      description: 'Header changes the gateway applies: `set` adds or replaces, `remove` drops',
      oneOf: [
        { type: 'null' },
        {
          type: 'object',
          properties: Object.fromEntries(
            ['requestHeaders', 'responseHeaders'].map((k) => [
              k,
              { type: 'object', properties: { set: { type: 'object', additionalProperties: str }, remove: strs } },
            ]),
          ),
        },
      ],
    },
    requiredScopes: { ...strs, description: 'Scopes a key must all hold to call this route (403 `insufficient_scope`)' },
    sharedRateLimit: { ...nullable('SharedRateLimit'), description: 'One limit shared by every caller of the route' },
    createdAt: ts,
    updatedAt: ts,
  }),
  Api: obj(['id', 'tenantId', 'name', 'slug', 'basePath', 'version', 'visibility', 'authMode', 'targets'], {
    id: str,
    tenantId: str,
    name: str,
    slug: str,
    description: str,
    basePath: str,
    version: str,
    visibility: { enum: ['PUBLIC', 'PRIVATE'] },
    authMode: { enum: ['API_KEY', 'JWT', 'INTROSPECTION', 'NONE'] },
    introspectionConfig: {
      type: ['object', 'null'],
      description: 'OAuth 2.0 token introspection (RFC 7662) settings. The client secret is write-only: answers carry `clientSecretSet`.',
      properties: {
        endpoint: str,
        clientId: str,
        clientSecretSet: bool,
        cacheMaxTtlSeconds: int,
        requiredScopes: strs,
        consumerClaim: nstr,
      },
    },
    deprecatedAt: { ...nts, description: 'Announced in a `Deprecation` header (RFC 9745) on every response.' },
    sunsetAt: { ...nts, description: 'Announced in a `Sunset` header (RFC 8594) on every response.' },
    deprecationLink: { ...nstr, description: 'Announced as `Link: <…>; rel="deprecation"`.' },
    allowQueryKey: bool,
    failMode: { enum: ['OPEN', 'CLOSED'] },
    loadBalancing: { enum: ['ROUND_ROBIN', 'WEIGHTED'] },
    connectTimeoutMs: int,
    headersTimeoutMs: {
      ...int,
      description:
        "The upstream's read timeout: the longest the gateway waits for a free connection to it, then for the response headers, then between two reads of the body. 504 when it runs out.",
    },
    requestTimeoutMs: {
      ...int,
      description: 'The whole exchange, response body included, unless a route sets its own. 504 when it runs out.',
    },
    retries: int,
    openapiUrl: nstr,
    cors: nullable('Cors'),
    ipRules: nullable('IpRules'),
    perIpRateLimit: { ...nullable('SharedRateLimit'), description: 'A rate per client address, on top of each key’s limits' },
    circuitBreaker: nullable('CircuitBreaker'),
    targets: { type: 'array', items: ref('Target') },
    routes: { type: 'array', items: ref('Route') },
    routeCount: int,
    createdAt: ts,
    updatedAt: ts,
  }),
  Plan: obj(['id', 'name', 'slug', 'status', 'public', 'currency', 'apiIds', 'subscriberCount'], {
    id: str,
    tenantId: str,
    name: str,
    slug: str,
    description: str,
    public: bool,
    status: { enum: ['ACTIVE', 'ARCHIVED'] },
    rateLimit: nint,
    rateWindowSeconds: int,
    rateAlgorithm: { enum: ['SLIDING_WINDOW', 'GCRA', 'TOKEN_BUCKET', 'FIXED_WINDOW'] },
    monthlyQuota: nint,
    quotaMode: { enum: ['HARD_CAP', 'OVERAGE'] },
    currency: str,
    flatFeeMinor: int,
    includedRequests: int,
    overageUnitPriceMinor: int,
    overageBlockSize: int,
    trialDays: int,
    apiIds: strs,
    ipRules: nullable('IpRules'),
    subscriberCount: int,
    createdAt: ts,
    updatedAt: ts,
  }),
  Consumer: obj(['id', 'email', 'name', 'status', 'keyCount', 'subscriptions'], {
    id: str,
    tenantId: str,
    email: str,
    name: str,
    status: { enum: ['PENDING', 'ACTIVE', 'SUSPENDED'] },
    internal: bool,
    keyCount: int,
    subscriptions: {
      type: 'array',
      items: obj(['id', 'planId', 'status'], { id: str, planId: str, status: str, currentPeriodStart: ts, currentPeriodEnd: ts }),
    },
    createdAt: ts,
    updatedAt: ts,
  }),
  Key: {
    ...obj(['id', 'consumerId', 'prefix', 'env', 'status'], {
      id: str,
      tenantId: str,
      consumerId: str,
      subscriptionId: nstr,
      name: str,
      prefix: str,
      env: str,
      status: { enum: ['ACTIVE', 'REVOKED'] },
      expiresAt: nts,
      apiIds: strs,
      scopes: strs,
      ipRules: nullable('IpRules'),
      rateLimitOverride: nint,
      rateWindowOverride: nint,
      quotaOverride: nint,
      rolledFromId: nstr,
      lastUsedAt: nts,
      revokedAt: nts,
      createdAt: ts,
    }),
    not: { required: ['hash'] },
  },
  IssuedKey: obj(['key', 'secret'], {
    key: ref('Key'),
    secret: { type: 'string', description: 'The key itself. Shown once, never again.' },
  }),
  SubjectBinding: obj(['key', 'subject'], { key: ref('Key'), subject: str }),
  RolledKey: obj(['key', 'secret', 'previous'], { key: ref('Key'), secret: str, previous: ref('Key') }),
  Deleted: obj(['id'], { id: str, deleted: bool, archived: bool }),
  Usage: obj(['from', 'to', 'granularity', 'points', 'totals', 'top'], {
    from: ts,
    to: ts,
    granularity: { enum: ['minute', 'hour', 'day'] },
    points: {
      type: 'array',
      items: obj(['t', 'requests', 'errors'], {
        t: ts,
        requests: int,
        errors: int,
        s2xx: int,
        s3xx: int,
        s4xx: int,
        s5xx: int,
        p50: nint,
        p95: nint,
        p99: nint,
      }),
    },
    totals: obj(['requests', 'errorRate'], { requests: int, errorRate: { type: 'number' }, p50: nint, p95: nint, p99: nint }),
    top: obj(['apis', 'keys', 'consumers'], {
      apis: { type: 'array', items: obj(['id', 'requests'], { id: str, label: str, requests: int, errors: int }) },
      keys: { type: 'array', items: obj(['id', 'requests'], { id: str, label: str, requests: int, errors: int }) },
      consumers: { type: 'array', items: obj(['id', 'requests'], { id: str, label: str, requests: int, errors: int }) },
    }),
  }),
  Member: obj(['id', 'userId', 'email', 'role'], {
    id: str,
    userId: str,
    email: str,
    name: str,
    role: ref('Role'),
    lastLoginAt: nts,
    createdAt: ts,
  }),
  Role: { enum: ['OWNER', 'ADMIN', 'DEVELOPER', 'VIEWER'] },
  Invitation: obj(['id', 'email', 'role', 'expiresAt'], { id: str, email: str, role: ref('Role'), expiresAt: ts, createdAt: ts }),
  MemberPage: obj(['data', 'invitations', 'nextCursor'], {
    data: { type: 'array', items: ref('Member') },
    invitations: { type: 'array', items: ref('Invitation'), description: 'Pending invitations' },
    nextCursor: { type: 'null' },
  }),
  Invited: obj(['id', 'email', 'role', 'link'], {
    id: str,
    email: str,
    role: ref('Role'),
    link: { type: 'string', description: 'Acceptance link (also e-mailed); valid 7 days' },
  }),
  RoleChanged: obj(['id', 'role'], { id: str, role: ref('Role') }),
  AccessToken: {
    ...obj(['id', 'name', 'role', 'prefix'], {
      id: str,
      name: str,
      role: ref('Role'),
      prefix: str,
      createdById: nstr,
      lastUsedAt: nts,
      expiresAt: nts,
      revokedAt: nts,
      createdAt: ts,
    }),
    not: { required: ['hash'] },
  },
  AccessTokenPage: obj(['data', 'nextCursor'], { data: { type: 'array', items: ref('AccessToken') }, nextCursor: { type: 'null' } }),
  CreatedAccessToken: obj(['token', 'secret'], {
    token: ref('AccessToken'),
    secret: { type: 'string', description: 'The token itself. Shown once, never again.' },
  }),
  RevokedAccessToken: obj(['id', 'revoked'], { id: str, revoked: bool }),
  ApiPage: page('Api'),
  RoutePage: page('Route'),
  PlanPage: page('Plan'),
  ConsumerPage: page('Consumer'),
  KeyPage: page('Key'),
  CreateApi: input(CreateApiInput),
  UpdateApi: input(UpdateApiInput),
  CreateRoute: input(CreateRouteInput),
  UpdateRoute: input(UpdateRouteInput),
  CreatePlan: input(CreatePlanInput),
  UpdatePlan: input(UpdatePlanInput),
  CreateConsumer: input(CreateConsumerInput),
  UpdateConsumer: input(UpdateConsumerInput),
  IssueKey: input(IssueKeyInput),
  UpdateKey: input(UpdateKeyInput),
  BindSubject: input(BindSubjectInput),
  RollKey: input(RollKeyInput),
  InviteMember: input(InviteInput),
  ChangeMemberRole: input(ChangeRoleInput),
  CreateAccessToken: input(CreateTokenInput),
  UpdateSettings: input(UpdateTenantInput),
  Settings: obj(['slug', 'name', 'currency', 'allowPrivateTargets', 'requireDeveloperApproval', 'portalHost'], {
    slug: str,
    name: str,
    currency: str,
    allowPrivateTargets: bool,
    requireDeveloperApproval: bool,
    portalHost: nstr,
  }),
};
