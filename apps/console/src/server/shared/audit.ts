import { z } from 'zod';
import { newId, type Prisma } from '@tollgate/db';
import { requirePermission, type ServiceContext } from './context';
import { pageArgs, Pagination, parseInput, toPage } from './validation';

type Tx = Prisma.TransactionClient;

/** Records one change, in the same transaction as the change, so the log can't miss or invent one. */
export async function recordAudit(
  tx: Tx,
  // A console member or token (a ServiceContext), or a portal developer (developerActor).
  ctx: { tenantId: string; actor: { type: string; id: string }; ip?: string | null },
  action: string,
  target: { type: string; id?: string | null },
  data?: Record<string, unknown>,
): Promise<void> {
  await tx.auditLog.create({
    data: {
      id: newId('audit'),
      tenantId: ctx.tenantId,
      actorType: ctx.actor.type,
      actorId: ctx.actor.id,
      action,
      targetType: target.type,
      targetId: target.id ?? null,
      data: (data ?? undefined) as Prisma.InputJsonValue | undefined,
      ip: ctx.ip ?? null,
    },
  });
}

export const AuditFilter = Pagination.extend({
  action: z
    .string()
    .max(64)
    .regex(/^[a-z_.]*$/)
    .optional(),
  targetType: z
    .string()
    .max(32)
    .regex(/^[a-z_]*$/)
    .optional(),
  actorId: z.string().max(64).optional(),
  targetId: z.string().max(64).optional(),
});
export type AuditFilter = z.infer<typeof AuditFilter>;

export async function listAuditLogs(ctx: ServiceContext, input: unknown) {
  requirePermission(ctx, 'read');
  const f = parseInput(AuditFilter, input ?? {});
  const args = pageArgs(f);
  const rows = await ctx.db.auditLog.findMany({
    ...args,
    where: {
      tenantId: ctx.tenantId,
      ...args.where,
      ...(f.action ? { action: { startsWith: f.action } } : {}),
      ...(f.targetType ? { targetType: f.targetType } : {}),
      ...(f.actorId ? { actorId: f.actorId } : {}),
      ...(f.targetId ? { targetId: f.targetId } : {}),
    },
  });
  return toPage(rows, f.limit);
}
