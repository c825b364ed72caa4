import { z } from 'zod';
import { newId, type Db, type Prisma } from '@tollgate/db';
import { notFound, requirePermission, ServiceError, type ServiceContext } from '../shared/context';
import { recordAudit } from '../shared/audit';
import { enqueueKeyPublish } from '../shared/publish';
import { Email } from '../shared/credentials';
import { Id, isUniqueViolation, pageArgs, Pagination, parseInput, SafeName, toPage } from '../shared/validation';

export const INTERNAL_CONSUMER_EMAIL = 'internal@tollgate.invalid';

export const CreateConsumerInput = z.object({ email: Email, name: SafeName(100) }).strict();
export const UpdateConsumerInput = z
  .object({ name: SafeName(100), status: z.enum(['PENDING', 'ACTIVE', 'SUSPENDED'], { error: 'must be PENDING, ACTIVE or SUSPENDED' }) })
  .partial()
  .strict();

const consumerInclude = {
  subscriptions: { include: { plan: { select: { id: true, name: true, slug: true } } }, orderBy: { createdAt: 'desc' as const } },
  _count: { select: { apiKeys: true } },
};

export async function listConsumers(ctx: ServiceContext, input: unknown = {}) {
  requirePermission(ctx, 'read');
  const p = parseInput(
    Pagination.extend({
      q: z.string().max(100).optional(),
      status: z.enum(['PENDING', 'ACTIVE', 'SUSPENDED']).optional(),
      includeInternal: z.coerce.boolean().default(false),
    }),
    input,
  );
  const args = pageArgs(p);
  const rows = await ctx.db.consumer.findMany({
    ...args,
    where: {
      tenantId: ctx.tenantId,
      ...args.where,
      ...(p.includeInternal ? {} : { internal: false }),
      ...(p.status ? { status: p.status } : {}),
      ...(p.q ? { OR: [{ email: { contains: p.q, mode: 'insensitive' } }, { name: { contains: p.q, mode: 'insensitive' } }] } : {}),
    },
    include: consumerInclude,
  });
  return toPage(rows, p.limit);
}

export async function getConsumer(ctx: ServiceContext, consumerId: string) {
  requirePermission(ctx, 'read');
  if (!Id('con').safeParse(consumerId).success) throw notFound('consumer');
  const c = await ctx.db.consumer.findFirst({ where: { id: consumerId, tenantId: ctx.tenantId }, include: consumerInclude });
  if (!c) throw notFound('consumer');
  return c;
}

export async function createConsumer(ctx: ServiceContext, input: unknown) {
  requirePermission(ctx, 'manageConsumers');
  const data = parseInput(CreateConsumerInput, input);
  const id = newId('consumer');
  try {
    await ctx.db.$transaction(async (tx) => {
      await tx.consumer.create({ data: { id, tenantId: ctx.tenantId, email: data.email, name: data.name } });
      await recordAudit(tx, ctx, 'consumer.created', { type: 'consumer', id }, { email: data.email });
    });
  } catch (err) {
    if (isUniqueViolation(err))
      throw new ServiceError('conflict', 'a consumer with this e-mail already exists', { email: 'is already registered' });
    throw err;
  }
  return getConsumer(ctx, id);
}

export async function updateConsumer(ctx: ServiceContext, consumerId: string, input: unknown) {
  requirePermission(ctx, 'manageConsumers');
  const c = await getConsumer(ctx, consumerId);
  const data = parseInput(UpdateConsumerInput, input);
  await ctx.db.$transaction(async (tx) => {
    await tx.consumer.update({ where: { id: c.id }, data });
    // A suspended consumer's keys must stop working at the gateway, so each key is republished.
    if (data.status && data.status !== c.status) {
      const keys = await tx.apiKey.findMany({ where: { consumerId: c.id, status: 'ACTIVE' }, select: { id: true } });
      for (const k of keys) await enqueueKeyPublish(tx, k.id);
    }
    await recordAudit(tx, ctx, 'consumer.updated', { type: 'consumer', id: c.id }, data);
  });
  return getConsumer(ctx, c.id);
}

/** Removes a consumer that never held a key or a subscription; others are suspended instead. */
export async function deleteConsumer(ctx: ServiceContext, consumerId: string) {
  requirePermission(ctx, 'manageConsumers');
  const c = await getConsumer(ctx, consumerId);
  if (c.internal) throw new ServiceError('conflict', 'the internal consumer holds console-issued keys and cannot be deleted');
  if (c._count.apiKeys > 0 || c.subscriptions.length > 0) {
    throw new ServiceError('conflict', 'this consumer has keys or subscriptions; suspend it instead so its history stays intact');
  }
  await ctx.db.$transaction(async (tx) => {
    await tx.consumer.delete({ where: { id: c.id } });
    await recordAudit(tx, ctx, 'consumer.deleted', { type: 'consumer', id: c.id }, { email: c.email });
  });
  return { id: c.id, deleted: true };
}

/** The tenant's own consumer, holder of keys issued from the console for internal use. */
export async function ensureInternalConsumer(db: Db | Prisma.TransactionClient, tenantId: string): Promise<string> {
  const existing = await db.consumer.findFirst({ where: { tenantId, email: INTERNAL_CONSUMER_EMAIL }, select: { id: true } });
  if (existing) return existing.id;
  const id = newId('consumer');
  await db.consumer.upsert({
    where: { tenantId_email: { tenantId, email: INTERNAL_CONSUMER_EMAIL } },
    create: {
      id,
      tenantId,
      email: INTERNAL_CONSUMER_EMAIL,
      name: 'Internal (console-issued keys)',
      internal: true,
      emailVerifiedAt: new Date(),
    },
    update: {},
  });
  const row = await db.consumer.findFirstOrThrow({ where: { tenantId, email: INTERNAL_CONSUMER_EMAIL }, select: { id: true } });
  return row.id;
}
