import { z } from 'zod';
import { notFound, requirePermission, type ServiceContext } from './context';
import { recordAudit } from './audit';
import { enqueuePolicyPublish } from './publish';
import { parseInput, SafeName } from './validation';

export const UpdateTenantInput = z
  .object({
    name: SafeName(100),
    allowPrivateTargets: z.boolean({ error: 'must be true or false' }),
    requireDeveloperApproval: z.boolean({ error: 'must be true or false' }),
    currency: z.enum(['usd', 'eur', 'gbp', 'jpy', 'cad', 'aud', 'chf'], { error: 'must be a supported currency' }),
  })
  .partial()
  .strict();

export async function getTenant(ctx: ServiceContext) {
  requirePermission(ctx, 'read');
  const t = await ctx.db.tenant.findUnique({ where: { id: ctx.tenantId } });
  if (!t) throw notFound('workspace');
  return t;
}

export async function updateTenant(ctx: ServiceContext, input: unknown) {
  requirePermission(ctx, 'manageTenant');
  const data = parseInput(UpdateTenantInput, input);
  await ctx.db.$transaction(async (tx) => {
    await tx.tenant.update({ where: { id: ctx.tenantId }, data });
    await recordAudit(tx, ctx, 'tenant.updated', { type: 'tenant', id: ctx.tenantId }, data);
    await enqueuePolicyPublish(tx, ctx.tenantId);
  });
  return getTenant(ctx);
}
