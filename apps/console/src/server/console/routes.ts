// Routes of an API: list, read, create, update, delete.
import { newId, Prisma } from '@tollgate/db';
import { notFound, requirePermission, ServiceError, type ServiceContext } from '../shared/context';
import { recordAudit } from '../shared/audit';
import { enqueuePolicyPublish } from '../shared/publish';
import { getApi } from './apis';
import { CreateRouteInput, UpdateRouteInput } from './route-schemas';
import { Id, parseInput } from '../shared/validation';
import { jsonColumn, jsonCreate, uniq } from './edge-fields';

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
        requiredScopes: uniq(data.requiredScopes),
        sharedRateLimit: jsonCreate(data.sharedRateLimit),
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
  const { rateLimit, transform, sharedRateLimit, requiredScopes, ...rest } = data;
  await ctx.db.$transaction(async (tx) => {
    await tx.route.update({
      where: { id: route.id },
      data: {
        ...rest,
        ...(rest.methods ? { methods: [...new Set(rest.methods)] } : {}),
        ...(rateLimit !== undefined ? { rateLimit: rateLimit === null ? Prisma.DbNull : (rateLimit as Prisma.InputJsonValue) } : {}),
        ...(transform !== undefined ? { transform: transform === null ? Prisma.DbNull : (transform as Prisma.InputJsonValue) } : {}),
        ...(requiredScopes !== undefined ? { requiredScopes: uniq(requiredScopes) } : {}),
        sharedRateLimit: jsonColumn(sharedRateLimit),
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
