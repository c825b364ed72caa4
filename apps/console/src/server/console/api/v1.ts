import { makeHandler, pick, Status, type V1Deps } from './handler';
import { createApi, deleteApi, getApi, listApis, updateApi, type ApiServiceOptions } from '../apis';
import { createRoute, deleteRoute, getRoute, listRoutes, updateRoute } from '../routes';
import { createPlan, deletePlan, getPlan, listPlans, updatePlan } from '../plans';
import { createConsumer, deleteConsumer, getConsumer, listConsumers, updateConsumer } from '../consumers';
import { getKey, issueKey, listKeys, revokeKey, rollKey, updateKey } from '../keys';
import { bindSubject } from '../subject-bindings';
import { queryTopUsage, queryUsage } from '../../shared/usage';
import { changeMemberRole, inviteMember, listMembers, removeMember } from '../members';
import { createAccessToken, listAccessTokens, revokeAccessToken } from '../tokens';
import { getTenant, updateTenant } from '../tenant';
import { ServiceError } from '../../shared/context';
import { buildOpenApiDocument } from './openapi-doc';

type IdParam = { id: string };
const PAGE = ['limit', 'cursor'];

// Responses strip internals: plan/consumer counts become plain numbers, relations become ids.
const planDto = (p: Awaited<ReturnType<typeof getPlan>>) => {
  const { planApis, _count, ...rest } = p;
  return { ...rest, apiIds: planApis.map((x) => x.apiId), subscriberCount: _count.subscriptions };
};
const consumerDto = (c: Awaited<ReturnType<typeof getConsumer>>) => {
  const { passwordHash: _p, stripeCustomerId: _s, _count, subscriptions, ...rest } = c;
  return {
    ...rest,
    keyCount: _count.apiKeys,
    subscriptions: subscriptions.map((s) => ({
      id: s.id,
      planId: s.planId,
      status: s.status,
      currentPeriodStart: s.currentPeriodStart,
      currentPeriodEnd: s.currentPeriodEnd,
    })),
  };
};
const apiListDto = (a: Awaited<ReturnType<typeof listApis>>['data'][number]) => {
  const { _count, ...rest } = a;
  return { ...rest, routeCount: _count.routes };
};

const memberDto = (m: Awaited<ReturnType<typeof listMembers>>['members'][number]) => ({
  id: m.id,
  userId: m.userId,
  email: m.user.email,
  name: m.user.name,
  role: m.role,
  lastLoginAt: m.user.lastLoginAt,
  createdAt: m.createdAt,
});

/** The workspace's settings: identity (read-only here) and what a configuration file carries. */
const settingsDto = (t: Awaited<ReturnType<typeof getTenant>>) => ({
  slug: t.slug,
  name: t.name,
  currency: t.currency,
  allowPrivateTargets: t.allowPrivateTargets,
  requireDeveloperApproval: t.requireDeveloperApproval,
  portalHost: t.portalHost,
});

/** Every /api/v1 operation; route files re-export these, tests call them directly. */
export function createV1Handlers(getDeps: () => V1Deps, opts: ApiServiceOptions = {}) {
  const v1 = makeHandler(getDeps);
  const consoleUrl = () => getDeps().consoleUrl ?? 'http://localhost:3000';
  return {
    apis: {
      GET: v1(async ({ ctx, query }) => {
        const page = await listApis(ctx, pick(query, [...PAGE, 'q']));
        return { data: page.data.map(apiListDto), nextCursor: page.nextCursor };
      }),
      POST: v1(async ({ ctx, body }) => new Status(201, await createApi(ctx, await body(), opts))),
    },
    api: {
      GET: v1<IdParam>(async ({ ctx, params }) => getApi(ctx, params.id)),
      PATCH: v1<IdParam>(async ({ ctx, params, body }) => {
        await getApi(ctx, params.id);
        return updateApi(ctx, params.id, await body(), opts);
      }),
      DELETE: v1<IdParam>(async ({ ctx, params }) => deleteApi(ctx, params.id)),
    },
    apiRoutes: {
      GET: v1<IdParam>(async ({ ctx, params }) => ({ data: await listRoutes(ctx, params.id), nextCursor: null })),
      POST: v1<IdParam>(async ({ ctx, params, body }) => {
        await getApi(ctx, params.id);
        return new Status(201, await createRoute(ctx, params.id, await body()));
      }),
    },
    route: {
      GET: v1<IdParam>(async ({ ctx, params }) => getRoute(ctx, params.id)),
      PATCH: v1<IdParam>(async ({ ctx, params, body }) => {
        await getRoute(ctx, params.id);
        return updateRoute(ctx, params.id, await body());
      }),
      DELETE: v1<IdParam>(async ({ ctx, params }) => deleteRoute(ctx, params.id)),
    },
    plans: {
      GET: v1(async ({ ctx, query }) => {
        const page = await listPlans(ctx, pick(query, [...PAGE, 'status']));
        return { data: page.data.map(planDto), nextCursor: page.nextCursor };
      }),
      POST: v1(async ({ ctx, body }) => new Status(201, planDto(await createPlan(ctx, await body())))),
    },
    plan: {
      GET: v1<IdParam>(async ({ ctx, params }) => planDto(await getPlan(ctx, params.id))),
      PATCH: v1<IdParam>(async ({ ctx, params, body }) => {
        await getPlan(ctx, params.id);
        return planDto(await updatePlan(ctx, params.id, await body()));
      }),
      DELETE: v1<IdParam>(async ({ ctx, params }) => deletePlan(ctx, params.id)),
    },
    consumers: {
      GET: v1(async ({ ctx, query }) => {
        const page = await listConsumers(ctx, pick(query, [...PAGE, 'q', 'status']));
        return { data: page.data.map(consumerDto), nextCursor: page.nextCursor };
      }),
      POST: v1(async ({ ctx, body }) => new Status(201, consumerDto(await createConsumer(ctx, await body())))),
    },
    consumer: {
      GET: v1<IdParam>(async ({ ctx, params }) => consumerDto(await getConsumer(ctx, params.id))),
      PATCH: v1<IdParam>(async ({ ctx, params, body }) => {
        await getConsumer(ctx, params.id);
        return consumerDto(await updateConsumer(ctx, params.id, await body()));
      }),
      DELETE: v1<IdParam>(async ({ ctx, params }) => deleteConsumer(ctx, params.id)),
    },
    keys: {
      GET: v1(async ({ ctx, query }) => listKeys(ctx, pick(query, [...PAGE, 'consumerId', 'status', 'q']))),
      POST: v1(async ({ ctx, body }) => new Status(201, await issueKey(ctx, await body()))),
    },
    /** JWT subjects / OAuth clients bound to a consumer (ADR 0028); managed as keys afterwards. */
    subjectBindings: {
      POST: v1(async ({ ctx, body }) => new Status(201, await bindSubject(ctx, await body()))),
    },
    key: {
      GET: v1<IdParam>(async ({ ctx, params }) => getKey(ctx, params.id)),
      PATCH: v1<IdParam>(async ({ ctx, params, body }) => {
        await getKey(ctx, params.id);
        return updateKey(ctx, params.id, await body());
      }),
      /** Revokes: a key row is history (usage, audit), so it is never deleted. */
      DELETE: v1<IdParam>(async ({ ctx, params }) => revokeKey(ctx, params.id)),
    },
    keyRoll: {
      POST: v1<IdParam>(async ({ ctx, params, req, body }) => {
        await getKey(ctx, params.id);
        const hasBody = (req.headers.get('content-length') ?? '0') !== '0' || req.headers.has('content-type');
        return new Status(201, await rollKey(ctx, params.id, hasBody ? await body() : {}));
      }),
    },
    usage: {
      GET: v1(async ({ ctx, query }) => {
        const input = pick(query, ['range', 'from', 'to', 'granularity', 'apiId', 'keyId', 'consumerId', 'status']);
        const [series, top] = await Promise.all([queryUsage(ctx, input), queryTopUsage(ctx, input)]);
        return { ...series, top };
      }),
    },
    members: {
      GET: v1(async ({ ctx }) => {
        const { members, invitations } = await listMembers(ctx);
        return {
          data: members.map(memberDto),
          invitations: invitations.map(({ invitedById: _i, acceptedAt: _a, tenantId: _t, ...i }) => i),
          nextCursor: null,
        };
      }),
      /** Invites by e-mail; the link is also mailed, and returned so automation can deliver it. */
      POST: v1(async ({ ctx, body }) => new Status(201, await inviteMember(ctx, await body(), consoleUrl()))),
    },
    member: {
      PATCH: v1<IdParam>(async ({ ctx, params, body }) => changeMemberRole(ctx, params.id, await body())),
      DELETE: v1<IdParam>(async ({ ctx, params }) => removeMember(ctx, params.id)),
    },
    tokens: {
      GET: v1(async ({ ctx }) => ({ data: await listAccessTokens(ctx), nextCursor: null })),
      POST: v1(async ({ ctx, body }) => new Status(201, await createAccessToken(ctx, await body()))),
    },
    token: {
      /** Revokes: the row stays for the audit trail. */
      DELETE: v1<IdParam>(async ({ ctx, params }) => revokeAccessToken(ctx, params.id)),
    },
    settings: {
      GET: v1(async ({ ctx }) => settingsDto(await getTenant(ctx))),
      /** Admins change developer approval; name, portal host, currency and private targets need an owner. */
      PATCH: v1(async ({ ctx, body }) =>
        settingsDto(await updateTenant(ctx, await body(), { reservedHosts: [new URL(consoleUrl()).hostname] })),
      ),
    },
    notFound: v1(async () => {
      throw new ServiceError('not_found', 'no such endpoint; see /api/v1/openapi.json');
    }),
    openapi: async (req: Request) =>
      Response.json(buildOpenApiDocument(new URL(req.url).origin), { headers: { 'cache-control': 'public, max-age=300' } }),
  };
}

export type V1Handlers = ReturnType<typeof createV1Handlers>;
