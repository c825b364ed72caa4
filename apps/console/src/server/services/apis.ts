import { z } from 'zod';
import { isGatewayOwnedHeader } from '@tollgate/policy';
import { newId, Prisma } from '@tollgate/db';
import { notFound, requirePermission, ServiceError, type ServiceContext } from './context';
import { recordAudit } from './audit';
import { enqueuePolicyPublish } from './publish';
import { checkUpstreamUrl, type Resolver } from './ssrf';
import { validateOpenApi } from './openapi';
import { Id, isUniqueViolation, pageArgs, Pagination, parseInput, SafeName, SafeText, Slug, toPage } from './validation';

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
  authMode: z.enum(['API_KEY', 'JWT', 'NONE'], { error: 'must be API_KEY, JWT or NONE' }).default('API_KEY'),
  jwtConfig: JwtConfig.nullable().optional(),
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
    authMode: z.enum(['API_KEY', 'JWT', 'NONE']),
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

export type ApiServiceOptions = { resolve?: Resolver; fetchOpenApi?: (url: string) => Promise<string> };

const OPENAPI_FETCH_CAP = 1_000_000;

async function defaultFetchOpenApi(url: string): Promise<string> {
  const res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(5000), headers: { accept: 'application/json' } });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > OPENAPI_FETCH_CAP) {
      await reader.cancel();
      throw new Error('document is larger than 1 MB');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function allowPrivate(ctx: ServiceContext): Promise<boolean> {
  const t = await ctx.db.tenant.findUnique({ where: { id: ctx.tenantId }, select: { allowPrivateTargets: true } });
  return t?.allowPrivateTargets ?? false;
}

async function checkTargets(targets: Array<{ url: string }>, allow: boolean, opts: ApiServiceOptions) {
  const fields: Record<string, string> = {};
  const urls: string[] = [];
  for (const [i, t] of targets.entries()) {
    const res = await checkUpstreamUrl(t.url, { allowPrivate: allow, resolve: opts.resolve });
    if (!res.ok) fields[`targets.${i}.url`] = res.reason;
    else urls.push(res.url);
  }
  if (Object.keys(fields).length) {
    throw new ServiceError('unprocessable', `upstream target ${Object.values(fields)[0]}`, fields);
  }
  return urls;
}

/** The JWKS URL is fetched by the gateway, so it gets the same SSRF rules as an upstream. */
async function checkJwks<T extends { jwksUrl: string | null } | null | undefined>(
  jwt: T,
  allow: boolean,
  opts: ApiServiceOptions,
): Promise<T> {
  if (!jwt?.jwksUrl) return jwt;
  const res = await checkUpstreamUrl(jwt.jwksUrl, { allowPrivate: allow, resolve: opts.resolve });
  if (!res.ok) throw new ServiceError('unprocessable', `JWKS URL ${res.reason}`, { 'jwtConfig.jwksUrl': res.reason });
  return { ...jwt, jwksUrl: res.url };
}

async function resolveOpenApi(
  input: { openapi?: unknown; openapiUrl?: string | null },
  allow: boolean,
  opts: ApiServiceOptions,
): Promise<{ openapi?: Prisma.InputJsonValue | typeof Prisma.DbNull; openapiUrl?: string | null }> {
  const out: { openapi?: Prisma.InputJsonValue | typeof Prisma.DbNull; openapiUrl?: string | null } = {};
  let raw: unknown = input.openapi;
  if (input.openapiUrl !== undefined) out.openapiUrl = input.openapiUrl;
  if (input.openapiUrl && (raw === undefined || raw === null || raw === '')) {
    const check = await checkUpstreamUrl(input.openapiUrl, { allowPrivate: allow, resolve: opts.resolve });
    if (!check.ok) throw new ServiceError('unprocessable', `OpenAPI URL ${check.reason}`, { openapiUrl: check.reason });
    try {
      raw = await (opts.fetchOpenApi ?? defaultFetchOpenApi)(check.url);
    } catch (err) {
      throw new ServiceError('unprocessable', `OpenAPI URL could not be fetched: ${(err as Error).message}`, {
        openapiUrl: 'could not be fetched',
      });
    }
  }
  if (raw === null || raw === '') {
    out.openapi = Prisma.DbNull;
  } else if (raw !== undefined) {
    const res = validateOpenApi(raw);
    if (!res.ok) throw new ServiceError('unprocessable', `OpenAPI document ${res.reason}`, { openapi: res.reason });
    out.openapi = res.doc as Prisma.InputJsonValue;
  }
  return out;
}

function conflictFromUnique(err: unknown): never {
  const target = String((err as { meta?: { target?: unknown } }).meta?.target ?? '');
  if (target.includes('basePath'))
    throw new ServiceError('conflict', 'another API already uses this base path', { basePath: 'is already used by another API' });
  throw new ServiceError('conflict', 'another API already uses this slug', { slug: 'is already used by another API' });
}

const apiInclude = { targets: { orderBy: { createdAt: 'asc' as const } }, routes: { orderBy: { createdAt: 'asc' as const } } };

export async function listApis(ctx: ServiceContext, input: unknown = {}) {
  requirePermission(ctx, 'read');
  const p = parseInput(Pagination.extend({ q: z.string().max(100).optional() }), input);
  const args = pageArgs(p);
  const rows = await ctx.db.api.findMany({
    ...args,
    where: {
      tenantId: ctx.tenantId,
      ...args.where,
      ...(p.q ? { OR: [{ name: { contains: p.q, mode: 'insensitive' } }, { slug: { contains: p.q.toLowerCase() } }] } : {}),
    },
    include: { targets: true, _count: { select: { routes: true } } },
  });
  return toPage(rows, p.limit);
}

export async function getApi(ctx: ServiceContext, apiId: string) {
  requirePermission(ctx, 'read');
  if (!Id('api').safeParse(apiId).success) throw notFound('API');
  const api = await ctx.db.api.findFirst({ where: { id: apiId, tenantId: ctx.tenantId }, include: apiInclude });
  if (!api) throw notFound('API');
  return api;
}

export async function createApi(ctx: ServiceContext, input: unknown, opts: ApiServiceOptions = {}) {
  requirePermission(ctx, 'manageApis');
  const data = parseInput(CreateApiInput, input);
  const allow = await allowPrivate(ctx);
  const urls = await checkTargets(data.targets, allow, opts);
  const jwt = await checkJwks(data.jwtConfig, allow, opts);
  const doc = await resolveOpenApi(data, allow, opts);
  const id = newId('api');
  try {
    await ctx.db.$transaction(async (tx) => {
      await tx.api.create({
        data: {
          id,
          tenantId: ctx.tenantId,
          name: data.name,
          slug: data.slug,
          description: data.description,
          basePath: data.basePath,
          version: data.version,
          visibility: data.visibility,
          authMode: data.authMode,
          jwtConfig: (jwt ?? undefined) as Prisma.InputJsonValue | undefined,
          allowQueryKey: data.allowQueryKey,
          failMode: data.failMode,
          loadBalancing: data.loadBalancing,
          connectTimeoutMs: data.connectTimeoutMs,
          headersTimeoutMs: data.headersTimeoutMs,
          requestTimeoutMs: data.requestTimeoutMs,
          retries: data.retries,
          ...doc,
          targets: {
            create: data.targets.map((t, i) => ({
              id: newId('target'),
              url: urls[i]!,
              weight: t.weight,
              healthCheckPath: t.healthCheckPath ?? null,
              sandbox: t.sandbox ?? false,
            })),
          },
          // The gateway forwards only paths a route matches, so a new API starts open.
          routes: {
            create: (
              data.routes ?? [
                {
                  name: 'All paths',
                  methods: [],
                  path: '/*',
                  requestTimeoutMs: null,
                  cacheTtlSeconds: 0,
                  rateLimit: null,
                  transform: null,
                },
              ]
            ).map((r) => ({
              id: newId('route'),
              name: r.name,
              methods: [...new Set(r.methods)],
              path: r.path,
              requestTimeoutMs: r.requestTimeoutMs,
              cacheTtlSeconds: r.cacheTtlSeconds,
              rateLimit: (r.rateLimit ?? undefined) as Prisma.InputJsonValue | undefined,
              transform: (r.transform ?? undefined) as Prisma.InputJsonValue | undefined,
            })),
          },
        },
      });
      await recordAudit(tx, ctx, 'api.created', { type: 'api', id }, { name: data.name, slug: data.slug, basePath: data.basePath });
      await enqueuePolicyPublish(tx, ctx.tenantId);
    });
  } catch (err) {
    if (isUniqueViolation(err)) conflictFromUnique(err);
    throw err;
  }
  return getApi(ctx, id);
}

export async function updateApi(ctx: ServiceContext, apiId: string, input: unknown, opts: ApiServiceOptions = {}) {
  requirePermission(ctx, 'manageApis');
  const existing = await getApi(ctx, apiId);
  const data = parseInput(UpdateApiInput, input);
  const allow = await allowPrivate(ctx);
  const urls = data.targets ? await checkTargets(data.targets, allow, opts) : null;
  const jwt = await checkJwks(data.jwtConfig, allow, opts);
  const doc = data.openapi !== undefined || data.openapiUrl !== undefined ? await resolveOpenApi(data, allow, opts) : {};
  const { targets, openapi: _o, openapiUrl: _u, jwtConfig: _j, ...scalar } = data;
  try {
    await ctx.db.$transaction(async (tx) => {
      await tx.api.update({
        where: { id: existing.id },
        data: {
          ...scalar,
          ...(jwt !== undefined ? { jwtConfig: jwt === null ? Prisma.DbNull : (jwt as Prisma.InputJsonValue) } : {}),
          ...doc,
        },
      });
      if (targets && urls) {
        await tx.upstreamTarget.deleteMany({ where: { apiId: existing.id } });
        await tx.upstreamTarget.createMany({
          data: targets.map((t, i) => ({
            id: newId('target'),
            apiId: existing.id,
            url: urls[i]!,
            weight: t.weight,
            healthCheckPath: t.healthCheckPath ?? null,
            sandbox: t.sandbox ?? false,
          })),
        });
      }
      await recordAudit(tx, ctx, 'api.updated', { type: 'api', id: existing.id }, { fields: Object.keys(data) });
      await enqueuePolicyPublish(tx, ctx.tenantId);
    });
  } catch (err) {
    if (isUniqueViolation(err)) conflictFromUnique(err);
    throw err;
  }
  return getApi(ctx, existing.id);
}

export async function deleteApi(ctx: ServiceContext, apiId: string) {
  requirePermission(ctx, 'manageApis');
  const existing = await getApi(ctx, apiId);
  await ctx.db.$transaction(async (tx) => {
    await tx.api.delete({ where: { id: existing.id } });
    await recordAudit(tx, ctx, 'api.deleted', { type: 'api', id: existing.id }, { name: existing.name, slug: existing.slug });
    await enqueuePolicyPublish(tx, ctx.tenantId);
  });
  return { id: existing.id, deleted: true };
}

// ─── routes ────────────────────────────────────────────────────────────────────────────

const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
const RoutePath = z
  .string({ error: 'must be text' })
  .trim()
  .max(256, 'must be at most 256 characters')
  .regex(
    /^\/(?:(?:[A-Za-z0-9._~-]+|:[A-Za-z_][A-Za-z0-9_]*)(?:\/(?:[A-Za-z0-9._~-]+|:[A-Za-z_][A-Za-z0-9_]*))*)?(?:\/\*)?\/?$|^\/\*$/,
    'must start with / and use literal segments, :params and an optional trailing /*',
  );

const RouteRateLimit = z.object({
  limit: z.number({ error: 'must be a number' }).int().min(1).max(1_000_000),
  windowSeconds: z.number({ error: 'must be a number' }).int().min(1).max(86_400),
  algorithm: z.enum(['sliding_window', 'gcra', 'token_bucket', 'fixed_window']).default('sliding_window'),
});

const HeaderName = z
  .string({ error: 'must be text' })
  .trim()
  .min(1, 'is required')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be a header name (letters, digits, - and a few symbols)')
  .refine((n) => !isGatewayOwnedHeader(n), 'is set by the gateway and cannot be changed');
// Visible ASCII plus space and tab: no CR/LF, so a value can't smuggle another header.
const HeaderValue = z
  .string({ error: 'must be text' })
  .max(1024, 'must be at most 1024 characters')
  .regex(/^[\x20-\x7e\t]*$/, 'must be printable ASCII without line breaks');
const HeaderOps = z
  .object({
    set: z
      .record(HeaderName, HeaderValue, {
        // Name the bad header and why, instead of zod's generic "invalid key".
        error: (iss) => {
          const inner = (iss as { issues?: Array<{ message?: string }> }).issues?.[0]?.message;
          return iss.code === 'invalid_key' && inner ? `${String(iss.input).slice(0, 64)} ${inner}` : 'must map header names to values';
        },
      })
      .refine((r) => Object.keys(r).length <= 20, 'at most 20 headers')
      .optional(),
    remove: z.array(HeaderName, { error: 'must be a list' }).max(20, 'at most 20 headers').optional(),
  })
  .strict();
export const HeaderTransformInput = z.object({ requestHeaders: HeaderOps.optional(), responseHeaders: HeaderOps.optional() }).strict();

const RouteFields = {
  name: SafeText(100).default(''),
  methods: z
    .array(z.enum(HTTP_METHODS, { error: `must be one of ${HTTP_METHODS.join(', ')}` }), { error: 'must be a list' })
    .max(7)
    .default([]),
  path: RoutePath,
  requestTimeoutMs: z.number({ error: 'must be a number' }).int().min(100).max(600_000).nullable().default(null),
  cacheTtlSeconds: z.number({ error: 'must be a number' }).int().min(0).max(86_400).default(0),
  rateLimit: RouteRateLimit.nullable().default(null),
  transform: HeaderTransformInput.nullable().default(null),
};
export const CreateRouteInput = z.object(RouteFields).strict();
export const UpdateRouteInput = z
  .object({
    name: SafeText(100),
    methods: z.array(z.enum(HTTP_METHODS)).max(7),
    path: RoutePath,
    requestTimeoutMs: z.number().int().min(100).max(600_000).nullable(),
    cacheTtlSeconds: z.number().int().min(0).max(86_400),
    rateLimit: RouteRateLimit.nullable(),
    transform: HeaderTransformInput.nullable(),
  })
  .partial()
  .strict();

const MAX_ROUTES_PER_API = 200;

export async function listRoutes(ctx: ServiceContext, apiId: string) {
  const api = await getApi(ctx, apiId);
  return api.routes;
}

export async function getRoute(ctx: ServiceContext, routeId: string) {
  requirePermission(ctx, 'read');
  if (!Id('rte').safeParse(routeId).success) throw notFound('route');
  const route = await ctx.db.route.findFirst({ where: { id: routeId, api: { tenantId: ctx.tenantId } } });
  if (!route) throw notFound('route');
  return route;
}

export async function createRoute(ctx: ServiceContext, apiId: string, input: unknown) {
  requirePermission(ctx, 'manageApis');
  const api = await getApi(ctx, apiId);
  const data = parseInput(CreateRouteInput, input);
  if (api.routes.length >= MAX_ROUTES_PER_API)
    throw new ServiceError('unprocessable', `an API can have at most ${MAX_ROUTES_PER_API} routes`);
  const id = newId('route');
  await ctx.db.$transaction(async (tx) => {
    await tx.route.create({
      data: {
        id,
        apiId: api.id,
        name: data.name,
        methods: [...new Set(data.methods)],
        path: data.path,
        requestTimeoutMs: data.requestTimeoutMs,
        cacheTtlSeconds: data.cacheTtlSeconds,
        rateLimit: (data.rateLimit ?? undefined) as Prisma.InputJsonValue | undefined,
        transform: (data.transform ?? undefined) as Prisma.InputJsonValue | undefined,
      },
    });
    await recordAudit(tx, ctx, 'route.created', { type: 'route', id }, { apiId: api.id, path: data.path, methods: data.methods });
    await enqueuePolicyPublish(tx, ctx.tenantId);
  });
  return getRoute(ctx, id);
}

export async function updateRoute(ctx: ServiceContext, routeId: string, input: unknown) {
  requirePermission(ctx, 'manageApis');
  const route = await getRoute(ctx, routeId);
  const data = parseInput(UpdateRouteInput, input);
  const { rateLimit, transform, ...rest } = data;
  await ctx.db.$transaction(async (tx) => {
    await tx.route.update({
      where: { id: route.id },
      data: {
        ...rest,
        ...(rest.methods ? { methods: [...new Set(rest.methods)] } : {}),
        ...(rateLimit !== undefined ? { rateLimit: rateLimit === null ? Prisma.DbNull : (rateLimit as Prisma.InputJsonValue) } : {}),
        ...(transform !== undefined ? { transform: transform === null ? Prisma.DbNull : (transform as Prisma.InputJsonValue) } : {}),
      },
    });
    await recordAudit(tx, ctx, 'route.updated', { type: 'route', id: route.id }, { fields: Object.keys(data) });
    await enqueuePolicyPublish(tx, ctx.tenantId);
  });
  return getRoute(ctx, route.id);
}

export async function deleteRoute(ctx: ServiceContext, routeId: string) {
  requirePermission(ctx, 'manageApis');
  const route = await getRoute(ctx, routeId);
  await ctx.db.$transaction(async (tx) => {
    await tx.route.delete({ where: { id: route.id } });
    await recordAudit(tx, ctx, 'route.deleted', { type: 'route', id: route.id }, { apiId: route.apiId, path: route.path });
    await enqueuePolicyPublish(tx, ctx.tenantId);
  });
  return { id: route.id, deleted: true };
}
