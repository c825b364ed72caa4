import { z } from 'zod';
import { newId, type Prisma } from '@tollgate/db';
import { addAnchoredMonths } from '@tollgate/billing';
import { displayPrefix, generateApiKey, hashApiKey } from '@tollgate/keys';
import { notFound, requirePermission, ServiceError, type ServiceContext } from '../shared/context';
import { recordAudit } from '../shared/audit';
import { enqueueKeyPublish } from '../shared/publish';
import { ensureInternalConsumer } from './consumers';
import { replaceKeyInTx } from '../shared/key-rotation';
import { Id, pageArgs, Pagination, parseInput, SafeText, toPage } from '../shared/validation';
import { IpRulesInput, jsonColumn, jsonCreate, ScopesInput, uniq } from './edge-fields';

const MAX_GRACE_SECONDS = 30 * 86_400;

const FutureDate = z.coerce
  .date({ error: 'must be a date' })
  .refine((d) => d.getTime() > Date.now(), 'must be in the future')
  .refine((d) => d.getTime() < Date.now() + 10 * 365 * 86_400_000, 'must be within 10 years');

const Overrides = {
  expiresAt: FutureDate.nullable().optional(),
  apiIds: z.array(Id('api'), { error: 'must be a list' }).max(100).optional(),
  rateLimitOverride: z.number({ error: 'must be a number' }).int().min(1).max(1_000_000).nullable().optional(),
  rateWindowOverride: z.number({ error: 'must be a number' }).int().min(1).max(86_400).nullable().optional(),
  quotaOverride: z.number({ error: 'must be a number' }).int().min(0).max(2_000_000_000).nullable().optional(),
  /** What the key may do on routes that require scopes (ADR 0025). */
  scopes: ScopesInput.optional(),
  /** Client address allow/deny lists of this key; null = none. */
  ipRules: IpRulesInput.nullable().optional(),
};

export const IssueKeyInput = z
  .object({
    name: SafeText(100).default(''),
    env: z.enum(['live', 'test'], { error: 'must be live or test' }).default('live'),
    /** Defaults to the tenant's internal consumer. */
    consumerId: Id('con').optional(),
    /** Subscribes the consumer to this plan (or reuses its live subscription) for the key's limits. */
    planId: Id('pln').optional(),
    subscriptionId: Id('sub').optional(),
    ...Overrides,
  })
  .strict();

export const UpdateKeyInput = z
  .object({ name: SafeText(100), ...Overrides })
  .partial()
  .strict();
export const RollKeyInput = z
  .object({
    graceSeconds: z.number({ error: 'must be a number' }).int().min(0).max(MAX_GRACE_SECONDS, 'must be at most 30 days').default(86_400),
  })
  .strict();

// Never return the hash: the prefix is all anyone sees of a key after creation.
const keySelect = {
  id: true,
  tenantId: true,
  consumerId: true,
  subscriptionId: true,
  name: true,
  prefix: true,
  env: true,
  status: true,
  expiresAt: true,
  apiIds: true,
  scopes: true,
  ipRules: true,
  rateLimitOverride: true,
  rateWindowOverride: true,
  quotaOverride: true,
  rolledFromId: true,
  lastUsedAt: true,
  revokedAt: true,
  createdAt: true,
  updatedAt: true,
  consumer: { select: { id: true, name: true, email: true, internal: true } },
  subscription: { select: { id: true, status: true, plan: { select: { id: true, name: true } } } },
} satisfies Prisma.ApiKeySelect;

export async function listKeys(ctx: ServiceContext, input: unknown = {}) {
  requirePermission(ctx, 'read');
  const p = parseInput(
    Pagination.extend({
      consumerId: Id('con').optional(),
      status: z.enum(['ACTIVE', 'REVOKED']).optional(),
      q: z.string().max(100).optional(),
    }),
    input,
  );
  const args = pageArgs(p);
  const rows = await ctx.db.apiKey.findMany({
    ...args,
    where: {
      tenantId: ctx.tenantId,
      ...args.where,
      ...(p.consumerId ? { consumerId: p.consumerId } : {}),
      ...(p.status ? { status: p.status } : {}),
      ...(p.q ? { OR: [{ name: { contains: p.q, mode: 'insensitive' } }, { prefix: { startsWith: p.q } }] } : {}),
    },
    select: keySelect,
  });
  return toPage(rows, p.limit);
}

export async function getKey(ctx: ServiceContext, keyId: string) {
  requirePermission(ctx, 'read');
  if (!Id('key').safeParse(keyId).success) throw notFound('key');
  const key = await ctx.db.apiKey.findFirst({ where: { id: keyId, tenantId: ctx.tenantId }, select: keySelect });
  if (!key) throw notFound('key');
  return key;
}

async function checkApiIds(ctx: ServiceContext, apiIds: string[] | undefined) {
  if (!apiIds?.length) return apiIds;
  const unique = [...new Set(apiIds)];
  const n = await ctx.db.api.count({ where: { tenantId: ctx.tenantId, id: { in: unique } } });
  if (n !== unique.length)
    throw new ServiceError('unprocessable', 'apiIds names an API that does not exist', { apiIds: 'names an API that does not exist' });
  return unique;
}

/** Issues a key; the secret is in the result once and is never stored or shown again. */
/**
 * `credential` (subject bindings, ./subject-bindings.ts): the record's hash and display prefix
 * come from a JWT/OAuth subject instead of a generated secret (the returned secret is then '').
 */
export async function issueKey(
  ctx: ServiceContext,
  input: unknown,
  credential?: { hash: string; prefix: string },
): Promise<{ key: Awaited<ReturnType<typeof getKey>>; secret: string }> {
  requirePermission(ctx, 'manageKeys');
  const data = parseInput(IssueKeyInput, input);
  const apiIds = await checkApiIds(ctx, data.apiIds);
  let consumerId = data.consumerId;
  if (consumerId) {
    const c = await ctx.db.consumer.findFirst({ where: { id: consumerId, tenantId: ctx.tenantId }, select: { id: true } });
    if (!c) throw notFound('consumer');
  }
  let subscriptionId: string | null = null;
  if (data.subscriptionId) {
    const s = await ctx.db.subscription.findFirst({
      where: { id: data.subscriptionId, tenantId: ctx.tenantId },
      select: { id: true, consumerId: true },
    });
    if (!s) throw notFound('subscription');
    if (consumerId && s.consumerId !== consumerId)
      throw new ServiceError('unprocessable', 'the subscription belongs to another consumer', {
        subscriptionId: 'belongs to another consumer',
      });
    consumerId = s.consumerId;
    subscriptionId = s.id;
  }
  if (data.planId) {
    const plan = await ctx.db.plan.findFirst({ where: { id: data.planId, tenantId: ctx.tenantId }, select: { id: true, status: true } });
    if (!plan) throw notFound('plan');
    if (plan.status === 'ARCHIVED') throw new ServiceError('unprocessable', 'the plan is archived', { planId: 'is archived' });
  }
  const secret = credential ? '' : generateApiKey(data.env);
  const hash = credential?.hash ?? hashApiKey(secret);
  const prefix = credential?.prefix ?? displayPrefix(secret);
  const id = newId('key');
  await ctx.db.$transaction(async (tx) => {
    const owner = consumerId ?? (await ensureInternalConsumer(tx, ctx.tenantId));
    if (data.planId && !subscriptionId) {
      const live = await tx.subscription.findFirst({
        where: { tenantId: ctx.tenantId, consumerId: owner, planId: data.planId, status: { in: ['ACTIVE', 'TRIALING'] } },
        select: { id: true },
      });
      if (live) subscriptionId = live.id;
      else {
        subscriptionId = newId('subscription');
        const now = new Date();
        await tx.subscription.create({
          data: {
            id: subscriptionId,
            tenantId: ctx.tenantId,
            consumerId: owner,
            planId: data.planId,
            status: 'ACTIVE',
            currentPeriodStart: now,
            currentPeriodEnd: addAnchoredMonths(now, 1),
          },
        });
      }
    }
    await tx.apiKey.create({
      data: {
        id,
        tenantId: ctx.tenantId,
        consumerId: owner,
        subscriptionId,
        name: data.name,
        hash,
        prefix,
        env: data.env,
        expiresAt: data.expiresAt ?? null,
        apiIds: apiIds ?? [],
        rateLimitOverride: data.rateLimitOverride ?? null,
        rateWindowOverride: data.rateWindowOverride ?? null,
        quotaOverride: data.quotaOverride ?? null,
        scopes: uniq(data.scopes ?? []),
        ipRules: jsonCreate(data.ipRules),
      },
    });
    await recordAudit(tx, ctx, 'key.issued', { type: 'key', id }, { prefix, consumerId: owner, subscriptionId });
    await enqueueKeyPublish(tx, id);
  });
  return { key: await getKey(ctx, id), secret };
}

export async function updateKey(ctx: ServiceContext, keyId: string, input: unknown) {
  requirePermission(ctx, 'manageKeys');
  const key = await getKey(ctx, keyId);
  const data = parseInput(UpdateKeyInput, input);
  if (key.status === 'REVOKED') throw new ServiceError('conflict', 'a revoked key cannot be changed');
  const apiIds = await checkApiIds(ctx, data.apiIds);
  await ctx.db.$transaction(async (tx) => {
    const { ipRules, scopes, ...rest } = data;
    await tx.apiKey.update({
      where: { id: key.id },
      data: { ...rest, ...(apiIds ? { apiIds } : {}), ...(scopes ? { scopes: uniq(scopes) } : {}), ipRules: jsonColumn(ipRules) },
    });
    await recordAudit(tx, ctx, 'key.updated', { type: 'key', id: key.id }, { fields: Object.keys(data) });
    await enqueueKeyPublish(tx, key.id);
  });
  return getKey(ctx, key.id);
}

export async function revokeKey(ctx: ServiceContext, keyId: string) {
  requirePermission(ctx, 'manageKeys');
  const key = await getKey(ctx, keyId);
  if (key.status === 'REVOKED') return key;
  await ctx.db.$transaction(async (tx) => {
    await tx.apiKey.update({ where: { id: key.id }, data: { status: 'REVOKED', revokedAt: new Date() } });
    await recordAudit(tx, ctx, 'key.revoked', { type: 'key', id: key.id }, { prefix: key.prefix });
    await enqueueKeyPublish(tx, key.id);
  });
  return getKey(ctx, key.id);
}

/**
 * Replaces a key: the new one has the same consumer, plan and overrides; the old one keeps
 * working for the grace period (0 = revoked now) so clients can switch without downtime.
 */
export async function rollKey(ctx: ServiceContext, keyId: string, input: unknown = {}) {
  requirePermission(ctx, 'manageKeys');
  const old = await getKey(ctx, keyId);
  const { graceSeconds } = parseInput(RollKeyInput, input ?? {});
  if (old.status === 'REVOKED') throw new ServiceError('conflict', 'a revoked key cannot be rolled; issue a new one');
  const rolled = await ctx.db.$transaction(async (tx) => {
    const next = await replaceKeyInTx(tx, old.id, graceSeconds);
    await recordAudit(tx, ctx, 'key.rolled', { type: 'key', id: old.id }, { newKeyId: next.id, graceSeconds });
    return next;
  });
  return { key: await getKey(ctx, rolled.id), secret: rolled.secret, previous: await getKey(ctx, old.id) };
}
