import { z } from 'zod';
import { PortalHostname } from '../shared/portal-host';
import { notFound, requirePermission, ServiceError, type ServiceContext } from '../shared/context';
import { recordAudit } from '../shared/audit';
import { enqueuePolicyPublish } from '../shared/publish';
import { isUniqueViolation, parseInput, SafeName } from '../shared/validation';

export const UpdateTenantInput = z
  .object({
    name: SafeName(100),
    allowPrivateTargets: z.boolean({ error: 'must be true or false' }),
    requireDeveloperApproval: z.boolean({ error: 'must be true or false' }),
    currency: z.enum(['usd', 'eur', 'gbp', 'jpy', 'cad', 'aud', 'chf'], { error: 'must be a supported currency' }),
    /** The portal's own host name; null (or an empty string) clears it. */
    portalHost: z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? null : v), PortalHostname.nullable()),
  })
  .partial()
  .strict();

export async function getTenant(ctx: ServiceContext) {
  requirePermission(ctx, 'read');
  const t = await ctx.db.tenant.findUnique({ where: { id: ctx.tenantId } });
  if (!t) throw notFound('workspace');
  return t;
}

/**
 * What an admin may change (so an admin-API token, at most admin, can apply a configuration
 * file); the name, the portal's host, the currency plans are priced in and private upstream
 * targets (an SSRF switch) stay with owners.
 */
const ADMIN_SETTINGS: ReadonlySet<string> = new Set(['requireDeveloperApproval']);

/**
 * `reservedHosts` are names a portal may never take (the console's own host), passed in by the
 * caller that knows the deployment.
 */
export async function updateTenant(ctx: ServiceContext, input: unknown, opts: { reservedHosts?: string[] } = {}) {
  requirePermission(ctx, 'manageSettings');
  const data = parseInput(UpdateTenantInput, input);
  const ownerOnly = Object.keys(data).filter((k) => !ADMIN_SETTINGS.has(k));
  if (ownerOnly.length > 0 && ctx.role !== 'OWNER') {
    throw new ServiceError('forbidden', `changing ${ownerOnly.join(', ')} needs the owner role; you are ${ctx.role.toLowerCase()}`);
  }
  if (data.portalHost && opts.reservedHosts?.includes(data.portalHost)) {
    throw new ServiceError('unprocessable', "invalid input: portalHost is the console's own host", {
      portalHost: "is the console's own host; use a host of your own, like developers.example.com",
    });
  }
  try {
    await ctx.db.$transaction(async (tx) => {
      await tx.tenant.update({ where: { id: ctx.tenantId }, data });
      await recordAudit(tx, ctx, 'tenant.updated', { type: 'tenant', id: ctx.tenantId }, data);
      await enqueuePolicyPublish(tx, ctx.tenantId);
    });
  } catch (err) {
    if (isUniqueViolation(err)) {
      throw new ServiceError('conflict', 'that portal host is already used by another workspace', {
        portalHost: 'is already used by another workspace',
      });
    }
    throw err;
  }
  return getTenant(ctx);
}
