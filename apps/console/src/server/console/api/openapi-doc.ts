import { z } from 'zod';
import { CreateApiInput, UpdateApiInput } from '../api-schemas';
import { CreateRouteInput, UpdateRouteInput } from '../route-schemas';
import { CreatePlanInput, UpdatePlanInput } from '../plans';
import { CreateConsumerInput, UpdateConsumerInput } from '../consumers';
import { IssueKeyInput, RollKeyInput, UpdateKeyInput } from '../keys';
import { ChangeRoleInput, InviteInput } from '../members';
import { CreateTokenInput } from '../tokens';
import { UpdateTenantInput } from '../tenant';

type Schema = Record<string, unknown>;

// Request bodies come from the same zod schemas the services validate with, so the document
// can't drift from what is accepted.
function input(schema: z.ZodType): Schema {
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as Schema;
  return rest;
}

const ts = { type: 'string', format: 'date-time' };
const nts = { type: ['string', 'null'], format: 'date-time' };
const str = { type: 'string' };
const nstr = { type: ['string', 'null'] };
const int = { type: 'integer' };
const nint = { type: ['integer', 'null'] };
const bool = { type: 'boolean' };
const strs = { type: 'array', items: str };
const obj = (required: string[], properties: Record<string, unknown>): Schema => ({ type: 'object', required, properties });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const page = (item: string) => obj(['data', 'nextCursor'], { data: { type: 'array', items: ref(item) }, nextCursor: nstr });

const schemas: Record<string, Schema> = {
  Error: obj(['error'], {
    error: obj(['code', 'message'], { code: str, message: str, requestId: str, fields: { type: 'object', additionalProperties: str } }),
  }),
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
    authMode: { enum: ['API_KEY', 'JWT', 'NONE'] },
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

const errors = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((c) => [String(c), { description: ERROR_TEXT[c] ?? 'error', content: { 'application/json': { schema: ref('Error') } } }]),
  );
const ERROR_TEXT: Record<number, string> = {
  400: 'Malformed request (not JSON, wrong content type)',
  401: 'Missing, invalid, expired or revoked access token',
  403: "The token's role does not allow this",
  404: 'No such resource in this tenant',
  409: 'Conflicts with existing state',
  413: 'Body too large',
  422: 'Validation failed; `fields` names each bad input',
};
const ok = (status: number, schema: string, description = 'OK') => ({
  [String(status)]: { description, content: { 'application/json': { schema: ref(schema) } } },
});
const body = (schema: string) => ({ required: true, content: { 'application/json': { schema: ref(schema) } } });
const idParam = { name: 'id', in: 'path', required: true, schema: str };
const pageParams = [
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 25 } },
  { name: 'cursor', in: 'query', schema: str, description: 'nextCursor of the previous page' },
];

function crud(tag: string, one: string, create: string, update: string, deleteSchema = 'Deleted', deleteText = 'Deleted') {
  return {
    collection: {
      get: {
        tags: [tag],
        operationId: `list${one}s`,
        parameters: pageParams,
        responses: { ...ok(200, `${one}Page`), ...errors(401, 422) },
      },
      post: {
        tags: [tag],
        operationId: `create${one}`,
        requestBody: body(create),
        responses: { ...ok(201, one, 'Created'), ...errors(400, 401, 403, 409, 413, 422) },
      },
    },
    item: {
      parameters: [idParam],
      get: { tags: [tag], operationId: `get${one}`, responses: { ...ok(200, one), ...errors(401, 404) } },
      patch: {
        tags: [tag],
        operationId: `update${one}`,
        requestBody: body(update),
        responses: { ...ok(200, one), ...errors(400, 401, 403, 404, 409, 413, 422) },
      },
      delete: {
        tags: [tag],
        operationId: `delete${one}`,
        responses: { ...ok(200, deleteSchema, deleteText), ...errors(401, 403, 404, 409) },
      },
    },
  };
}

/** The admin API's OpenAPI 3.1 description, served at /api/v1/openapi.json. */
export function buildOpenApiDocument(serverUrl = 'http://localhost:3000') {
  const apis = crud('APIs', 'Api', 'CreateApi', 'UpdateApi');
  const plans = crud('Plans', 'Plan', 'CreatePlan', 'UpdatePlan', 'Deleted', 'Deleted, or archived when it has subscribers');
  const consumers = crud('Consumers', 'Consumer', 'CreateConsumer', 'UpdateConsumer');
  const keys = crud('Keys', 'Key', 'IssueKey', 'UpdateKey', 'Key', 'Revoked (keys are never deleted)');
  keys.collection.post.responses = {
    ...ok(201, 'IssuedKey', 'Issued; `secret` is shown only in this response'),
    ...errors(400, 401, 403, 404, 413, 422),
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tollgate admin API',
      version: '1.0.0',
      description:
        'Automate a Tollgate workspace. Authenticate with an access token created in the console (Settings → Admin API tokens): `Authorization: Bearer tgat_…`. Every error is `{ "error": { "code", "message", "requestId" } }`. Lists are cursor-paginated: pass `nextCursor` back as `cursor`.',
    },
    servers: [{ url: `${serverUrl}/api/v1` }],
    security: [{ bearer: [] }],
    paths: {
      '/apis': apis.collection,
      '/apis/{id}': apis.item,
      '/apis/{id}/routes': {
        parameters: [idParam],
        get: { tags: ['Routes'], operationId: 'listRoutes', responses: { ...ok(200, 'RoutePage'), ...errors(401, 404) } },
        post: {
          tags: ['Routes'],
          operationId: 'createRoute',
          requestBody: body('CreateRoute'),
          responses: { ...ok(201, 'Route', 'Created'), ...errors(400, 401, 403, 404, 413, 422) },
        },
      },
      '/routes/{id}': {
        parameters: [idParam],
        get: { tags: ['Routes'], operationId: 'getRoute', responses: { ...ok(200, 'Route'), ...errors(401, 404) } },
        patch: {
          tags: ['Routes'],
          operationId: 'updateRoute',
          requestBody: body('UpdateRoute'),
          responses: { ...ok(200, 'Route'), ...errors(400, 401, 403, 404, 413, 422) },
        },
        delete: { tags: ['Routes'], operationId: 'deleteRoute', responses: { ...ok(200, 'Deleted'), ...errors(401, 403, 404) } },
      },
      '/plans': plans.collection,
      '/plans/{id}': plans.item,
      '/consumers': consumers.collection,
      '/consumers/{id}': consumers.item,
      '/keys': keys.collection,
      '/keys/{id}': keys.item,
      '/keys/{id}/roll': {
        parameters: [idParam],
        post: {
          tags: ['Keys'],
          operationId: 'rollKey',
          description: 'Issues a replacement key; the old one keeps working for `graceSeconds` (0 = revoked now).',
          requestBody: { required: false, content: { 'application/json': { schema: ref('RollKey') } } },
          responses: { ...ok(201, 'RolledKey', 'Rolled'), ...errors(400, 401, 403, 404, 409, 422) },
        },
      },
      '/members': {
        get: {
          tags: ['Members'],
          operationId: 'listMembers',
          description: 'Members and pending invitations.',
          responses: { ...ok(200, 'MemberPage'), ...errors(401) },
        },
        post: {
          tags: ['Members'],
          operationId: 'inviteMember',
          description: 'Invites by e-mail. Only an owner can grant the owner role, so a token (at most admin) cannot.',
          requestBody: body('InviteMember'),
          responses: { ...ok(201, 'Invited', 'Invited'), ...errors(400, 401, 403, 409, 413, 422) },
        },
      },
      '/members/{id}': {
        parameters: [idParam],
        patch: {
          tags: ['Members'],
          operationId: 'changeMemberRole',
          description: "Only an owner changes an owner's role or grants the owner role; the last owner keeps it.",
          requestBody: body('ChangeMemberRole'),
          responses: { ...ok(200, 'RoleChanged'), ...errors(400, 401, 403, 404, 409, 413, 422) },
        },
        delete: {
          tags: ['Members'],
          operationId: 'removeMember',
          description: 'Only an owner removes an owner; the last owner cannot be removed.',
          responses: { ...ok(200, 'Deleted'), ...errors(401, 403, 404, 409) },
        },
      },
      '/tokens': {
        get: {
          tags: ['Access tokens'],
          operationId: 'listAccessTokens',
          responses: { ...ok(200, 'AccessTokenPage'), ...errors(401, 403) },
        },
        post: {
          tags: ['Access tokens'],
          operationId: 'createAccessToken',
          description: 'A token never gets more rights than its creator; the secret is returned only here, and only its hash is kept.',
          requestBody: body('CreateAccessToken'),
          responses: {
            ...ok(201, 'CreatedAccessToken', 'Created; `secret` is shown only in this response'),
            ...errors(400, 401, 403, 413, 422),
          },
        },
      },
      '/tokens/{id}': {
        parameters: [idParam],
        delete: {
          tags: ['Access tokens'],
          operationId: 'revokeAccessToken',
          description: 'Revokes at once; the row stays for the audit trail.',
          responses: { ...ok(200, 'RevokedAccessToken', 'Revoked'), ...errors(401, 403, 404) },
        },
      },
      '/settings': {
        get: { tags: ['Settings'], operationId: 'getSettings', responses: { ...ok(200, 'Settings'), ...errors(401) } },
        patch: {
          tags: ['Settings'],
          operationId: 'updateSettings',
          description:
            'An admin (so any token) may change `requireDeveloperApproval`; the name, the portal host, the currency and `allowPrivateTargets` need the owner role.',
          requestBody: body('UpdateSettings'),
          responses: { ...ok(200, 'Settings'), ...errors(400, 401, 403, 409, 413, 422) },
        },
      },
      '/usage': {
        get: {
          tags: ['Usage'],
          operationId: 'queryUsage',
          description:
            'Requests, status classes and latency percentiles over time from the usage rollups; granularity is chosen by range unless given.',
          parameters: [
            { name: 'range', in: 'query', schema: { enum: ['1h', '6h', '24h', '7d', '30d', '90d'] } },
            { name: 'from', in: 'query', schema: ts },
            { name: 'to', in: 'query', schema: ts },
            { name: 'granularity', in: 'query', schema: { enum: ['minute', 'hour', 'day'] } },
            { name: 'apiId', in: 'query', schema: str },
            { name: 'keyId', in: 'query', schema: str },
            { name: 'consumerId', in: 'query', schema: str },
            { name: 'status', in: 'query', schema: { enum: ['2xx', '3xx', '4xx', '5xx'] } },
          ],
          responses: { ...ok(200, 'Usage'), ...errors(401, 422) },
        },
      },
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas },
  };
}
