import { z } from 'zod';
import { newId, Prisma } from '@tollgate/db';
import { notFound, requirePermission, ServiceError, type ServiceContext } from '../shared/context';
import { recordAudit } from '../shared/audit';
import { enqueuePolicyPublish } from '../shared/publish';
import { Id, isUniqueViolation, pageArgs, Pagination, parseInput, SafeName, SafeText, Slug, toPage } from '../shared/validation';
import { IpRulesInput, jsonColumn, jsonCreate } from './edge-fields';

const Int = (min: number, max: number) =>
  z
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

const Tier = z.object({
  upTo: Int(1, 2_000_000_000).nullable(),
  unitPriceMinor: Int(0, 100_000_000),
  flatMinor: Int(0, 100_000_000).default(0),
});

const Tiers = z
  .array(Tier, { error: 'must be a list' })
  .max(10, 'at most 10 tiers')
  .refine(
    (tiers) => tiers.every((t, i) => (i === tiers.length - 1 ? t.upTo === null : t.upTo !== null)),
    'every tier but the last needs an upper bound; the last has none',
  )
  .refine((tiers) => tiers.every((t, i) => i === 0 || t.upTo === null || t.upTo > (tiers[i - 1]!.upTo ?? 0)), 'tier bounds must increase');

const PlanFields = {
  name: SafeName(80),
  slug: Slug,
  description: SafeText(1000).default(''),
  public: z.boolean({ error: 'must be true or false' }).default(true),
  /** Requests per window; null = no rate limit. */
  rateLimit: Int(1, 1_000_000).nullable().default(null),
  rateWindowSeconds: Int(1, 86_400).default(1),
  rateAlgorithm: z
    .enum(['SLIDING_WINDOW', 'GCRA', 'TOKEN_BUCKET', 'FIXED_WINDOW'], {
      error: 'must be SLIDING_WINDOW, GCRA, TOKEN_BUCKET or FIXED_WINDOW',
    })
    .default('SLIDING_WINDOW'),
  /** Requests per billing period; null = unlimited. */
  monthlyQuota: Int(1, 2_000_000_000).nullable().default(null),
  quotaMode: z.enum(['HARD_CAP', 'OVERAGE'], { error: 'must be HARD_CAP or OVERAGE' }).default('HARD_CAP'),
  flatFeeMinor: Int(0, 100_000_000).default(0),
  includedRequests: Int(0, 2_000_000_000).default(0),
  overageUnitPriceMinor: Int(0, 100_000_000).default(0),
  overageBlockSize: Int(1, 1_000_000).default(1),
  tiers: Tiers.nullable().default(null),
  trialDays: Int(0, 365).default(0),
  apiIds: z.array(Id('api'), { error: 'must be a list' }).max(100).default([]),
  /** Client address allow/deny lists for every key on the plan (ADR 0025); null = none. */
  ipRules: IpRulesInput.nullable().optional(),
};

export const CreatePlanInput = z.object(PlanFields).strict();
export const UpdatePlanInput = z
  .object({
    name: PlanFields.name,
    slug: Slug,
    description: SafeText(1000),
    public: z.boolean({ error: 'must be true or false' }),
    rateLimit: Int(1, 1_000_000).nullable(),
    rateWindowSeconds: Int(1, 86_400),
    rateAlgorithm: z.enum(['SLIDING_WINDOW', 'GCRA', 'TOKEN_BUCKET', 'FIXED_WINDOW']),
    monthlyQuota: Int(1, 2_000_000_000).nullable(),
    quotaMode: z.enum(['HARD_CAP', 'OVERAGE']),
    flatFeeMinor: Int(0, 100_000_000),
    includedRequests: Int(0, 2_000_000_000),
    overageUnitPriceMinor: Int(0, 100_000_000),
    overageBlockSize: Int(1, 1_000_000),
    tiers: Tiers.nullable(),
    trialDays: Int(0, 365),
    apiIds: z.array(Id('api')).max(100),
    ipRules: IpRulesInput.nullable(),
  })
  .partial()
  .strict();

function checkPricing(p: { quotaMode?: string; monthlyQuota?: number | null; overageUnitPriceMinor?: number; tiers?: unknown }) {
  if (p.quotaMode === 'OVERAGE' && p.monthlyQuota === null) {
    // Overage bills past the quota, so an unlimited plan has nothing to bill as overage.
    throw new ServiceError('unprocessable', 'an overage plan needs a monthly quota', {
      monthlyQuota: 'is required when overage is billed',
    });
  }
}

async function checkApiIds(ctx: ServiceContext, apiIds: string[]) {
  const unique = [...new Set(apiIds)];
  if (unique.length === 0) return unique;
  const found = await ctx.db.api.count({ where: { tenantId: ctx.tenantId, id: { in: unique } } });
  if (found !== unique.length)
    throw new ServiceError('unprocessable', 'apiIds names an API that does not exist', { apiIds: 'names an API that does not exist' });
  return unique;
}

const planInclude = {
  planApis: { include: { api: { select: { id: true, name: true, slug: true } } } },
  _count: { select: { subscriptions: true, changesFrom: true } },
};

export async function listPlans(ctx: ServiceContext, input: unknown = {}) {
  requirePermission(ctx, 'read');
  const p = parseInput(Pagination.extend({ status: z.enum(['ACTIVE', 'ARCHIVED']).optional() }), input);
  const args = pageArgs(p);
  const rows = await ctx.db.plan.findMany({
    ...args,
    where: { tenantId: ctx.tenantId, ...args.where, ...(p.status ? { status: p.status } : {}) },
    include: planInclude,
  });
  return toPage(rows, p.limit);
}

export async function getPlan(ctx: ServiceContext, planId: string) {
  requirePermission(ctx, 'read');
  if (!Id('pln').safeParse(planId).success) throw notFound('plan');
  const plan = await ctx.db.plan.findFirst({ where: { id: planId, tenantId: ctx.tenantId }, include: planInclude });
  if (!plan) throw notFound('plan');
  return plan;
}

const slugConflict = () => new ServiceError('conflict', 'another plan already uses this slug', { slug: 'is already used by another plan' });

export async function createPlan(ctx: ServiceContext, input: unknown) {
  requirePermission(ctx, 'managePlans');
  const data = parseInput(CreatePlanInput, input);
  checkPricing(data);
  const apiIds = await checkApiIds(ctx, data.apiIds);
  const tenant = await ctx.db.tenant.findUniqueOrThrow({ where: { id: ctx.tenantId }, select: { currency: true } });
  const id = newId('plan');
  const { apiIds: _a, tiers, ipRules, ...rest } = data;
  try {
    await ctx.db.$transaction(async (tx) => {
      await tx.plan.create({
        data: {
          ...rest,
          ipRules: jsonCreate(ipRules),
          id,
          tenantId: ctx.tenantId,
          currency: tenant.currency,
          tiers: tiers ? (tiers as Prisma.InputJsonValue) : Prisma.DbNull,
          planApis: { create: apiIds.map((apiId) => ({ apiId })) },
        },
      });
      await recordAudit(tx, ctx, 'plan.created', { type: 'plan', id }, { name: data.name, slug: data.slug });
      await enqueuePolicyPublish(tx, ctx.tenantId);
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw slugConflict();
    throw err;
  }
  return getPlan(ctx, id);
}

export async function updatePlan(ctx: ServiceContext, planId: string, input: unknown) {
  requirePermission(ctx, 'managePlans');
  const plan = await getPlan(ctx, planId);
  const data = parseInput(UpdatePlanInput, input);
  checkPricing({
    quotaMode: data.quotaMode ?? plan.quotaMode,
    monthlyQuota: data.monthlyQuota !== undefined ? data.monthlyQuota : plan.monthlyQuota,
  });
  const apiIds = data.apiIds ? await checkApiIds(ctx, data.apiIds) : null;
  const { apiIds: _a, tiers, ipRules, ...rest } = data;
  try {
    await ctx.db.$transaction(async (tx) => {
      await tx.plan.update({
        where: { id: plan.id },
        data: {
          ...rest,
          ipRules: jsonColumn(ipRules),
          ...(tiers !== undefined ? { tiers: tiers ? (tiers as Prisma.InputJsonValue) : Prisma.DbNull } : {}),
        },
      });
      if (apiIds) {
        await tx.planApi.deleteMany({ where: { planId: plan.id } });
        await tx.planApi.createMany({ data: apiIds.map((apiId) => ({ planId: plan.id, apiId })) });
      }
      await recordAudit(tx, ctx, 'plan.updated', { type: 'plan', id: plan.id }, { fields: Object.keys(data) });
      await enqueuePolicyPublish(tx, ctx.tenantId);
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw slugConflict();
    throw err;
  }
  return getPlan(ctx, plan.id);
}

export async function setPlanArchived(ctx: ServiceContext, planId: string, archived: boolean) {
  requirePermission(ctx, 'managePlans');
  const plan = await getPlan(ctx, planId);
  await ctx.db.$transaction(async (tx) => {
    await tx.plan.update({ where: { id: plan.id }, data: { status: archived ? 'ARCHIVED' : 'ACTIVE' } });
    await recordAudit(tx, ctx, archived ? 'plan.archived' : 'plan.restored', { type: 'plan', id: plan.id });
    await enqueuePolicyPublish(tx, ctx.tenantId);
  });
  return getPlan(ctx, plan.id);
}

/**
 * Deletes a plan nobody ever subscribed to; one with subscribers, or that subscriptions moved
 * away from (its periods are still rated at it), is archived instead.
 */
export async function deletePlan(ctx: ServiceContext, planId: string): Promise<{ id: string; deleted: boolean; archived: boolean }> {
  requirePermission(ctx, 'managePlans');
  const plan = await getPlan(ctx, planId);
  if (plan._count.subscriptions > 0 || plan._count.changesFrom > 0) {
    await setPlanArchived(ctx, plan.id, true);
    return { id: plan.id, deleted: false, archived: true };
  }
  await ctx.db.$transaction(async (tx) => {
    await tx.plan.delete({ where: { id: plan.id } });
    await recordAudit(tx, ctx, 'plan.deleted', { type: 'plan', id: plan.id }, { name: plan.name });
    await enqueuePolicyPublish(tx, ctx.tenantId);
  });
  return { id: plan.id, deleted: true, archived: false };
}
