// APIs: list, read, create, update, delete. Routes are in ./routes, the input schemas in
// ./api-schemas and ./route-schemas.
import { z } from 'zod';
import { newId, Prisma } from '@tollgate/db';
import { notFound, requirePermission, ServiceError, type ServiceContext } from '../shared/context';
import { recordAudit } from '../shared/audit';
import { enqueuePolicyPublish } from '../shared/publish';
import { allowPrivate, checkJwks, checkTargets, resolveOpenApi, type ApiServiceOptions } from './api-upstream-checks';
import { CreateApiInput, UpdateApiInput } from './api-schemas';
import { checkIntrospection, withoutSecrets } from './api-introspection';
import { Id, isUniqueViolation, pageArgs, Pagination, parseInput, toPage } from '../shared/validation';
import { jsonColumn, jsonCreate, uniq } from './edge-fields';

export type { ApiServiceOptions } from './api-upstream-checks';

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
  return toPage(rows.map(withoutSecrets), p.limit);
}

async function loadApi(ctx: ServiceContext, apiId: string) {
  requirePermission(ctx, 'read');
  if (!Id('api').safeParse(apiId).success) throw notFound('API');
  const api = await ctx.db.api.findFirst({ where: { id: apiId, tenantId: ctx.tenantId }, include: apiInclude });
  if (!api) throw notFound('API');
  return api;
}

/** One API; the introspection client secret is never in the answer (ADR 0028). */
export async function getApi(ctx: ServiceContext, apiId: string) {
  requirePermission(ctx, 'read');
  return withoutSecrets(await loadApi(ctx, apiId));
}

export async function createApi(ctx: ServiceContext, input: unknown, opts: ApiServiceOptions = {}) {
  requirePermission(ctx, 'manageApis');
  const data = parseInput(CreateApiInput, input);
  const allow = await allowPrivate(ctx);
  const urls = await checkTargets(data.targets, allow, opts);
  const jwt = await checkJwks(data.jwtConfig, allow, opts);
  const introspection = await checkIntrospection(data.introspectionConfig, null, allow, opts);
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
          introspectionConfig: (introspection ?? undefined) as Prisma.InputJsonValue | undefined,
          deprecatedAt: data.deprecatedAt ?? null,
          sunsetAt: data.sunsetAt ?? null,
          deprecationLink: data.deprecationLink ?? null,
          allowQueryKey: data.allowQueryKey,
          failMode: data.failMode,
          loadBalancing: data.loadBalancing,
          connectTimeoutMs: data.connectTimeoutMs,
          headersTimeoutMs: data.headersTimeoutMs,
          requestTimeoutMs: data.requestTimeoutMs,
          retries: data.retries,
          cors: jsonCreate(data.cors),
          ipRules: jsonCreate(data.ipRules),
          perIpRateLimit: jsonCreate(data.perIpRateLimit),
          circuitBreaker: jsonCreate(data.circuitBreaker),
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
                  requiredScopes: [],
                  sharedRateLimit: null,
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
              requiredScopes: uniq(r.requiredScopes ?? []),
              sharedRateLimit: jsonCreate(r.sharedRateLimit),
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
  const existing = await loadApi(ctx, apiId);
  const data = parseInput(UpdateApiInput, input);
  const allow = await allowPrivate(ctx);
  const urls = data.targets ? await checkTargets(data.targets, allow, opts) : null;
  const jwt = await checkJwks(data.jwtConfig, allow, opts);
  const introspection = await checkIntrospection(data.introspectionConfig, existing.introspectionConfig, allow, opts);
  const doc = data.openapi !== undefined || data.openapiUrl !== undefined ? await resolveOpenApi(data, allow, opts) : {};
  const {
    targets,
    openapi: _o,
    openapiUrl: _u,
    jwtConfig: _j,
    introspectionConfig: _i,
    cors,
    ipRules,
    perIpRateLimit,
    circuitBreaker,
    ...scalar
  } = data;
  try {
    await ctx.db.$transaction(async (tx) => {
      await tx.api.update({
        where: { id: existing.id },
        data: {
          ...scalar,
          ...(jwt !== undefined ? { jwtConfig: jwt === null ? Prisma.DbNull : (jwt as Prisma.InputJsonValue) } : {}),
          cors: jsonColumn(cors),
          ipRules: jsonColumn(ipRules),
          perIpRateLimit: jsonColumn(perIpRateLimit),
          circuitBreaker: jsonColumn(circuitBreaker),
          ...(introspection !== undefined
            ? { introspectionConfig: introspection === null ? Prisma.DbNull : (introspection as Prisma.InputJsonValue) }
            : {}),
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
  const existing = await loadApi(ctx, apiId);
  await ctx.db.$transaction(async (tx) => {
    await tx.api.delete({ where: { id: existing.id } });
    await recordAudit(tx, ctx, 'api.deleted', { type: 'api', id: existing.id }, { name: existing.name, slug: existing.slug });
    await enqueuePolicyPublish(tx, ctx.tenantId);
  });
  return { id: existing.id, deleted: true };
}
