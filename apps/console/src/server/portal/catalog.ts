import type { Db } from '@tollgate/db';
import { buildReference } from './reference';
import type { PortalTenant } from './context';

const API_SLUG = /^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$/;

/** Only PUBLIC, unarchived APIs are in the storefront; private ones 404 like unknown ones. */
export async function listPublicApis(db: Db, tenant: PortalTenant) {
  return db.api
    .findMany({
      where: { tenantId: tenant.id, visibility: 'PUBLIC', archivedAt: null },
      select: { id: true, name: true, slug: true, description: true, version: true, basePath: true, openapi: true },
      orderBy: { name: 'asc' },
    })
    .then((rows) => rows.map(({ openapi, ...a }) => ({ ...a, hasReference: openapi !== null })));
}

export async function getPublicApi(db: Db, tenant: PortalTenant, apiSlug: string) {
  if (typeof apiSlug !== 'string' || !API_SLUG.test(apiSlug)) return null;
  const api = await db.api.findFirst({
    where: { tenantId: tenant.id, slug: apiSlug, visibility: 'PUBLIC', archivedAt: null },
    select: { id: true, name: true, slug: true, description: true, version: true, basePath: true, openapi: true, authMode: true },
  });
  if (!api) return null;
  return { ...api, reference: buildReference(api.openapi ?? {}, api.name) };
}

export function isPaidPlan(p: { flatFeeMinor: number; overageUnitPriceMinor: number; tiers: unknown }): boolean {
  return p.flatFeeMinor > 0 || p.overageUnitPriceMinor > 0 || (Array.isArray(p.tiers) && p.tiers.length > 0);
}

/** Public, active plans with the public APIs each grants, cheapest first. */
export async function listPublicPlans(db: Db, tenant: PortalTenant) {
  const plans = await db.plan.findMany({
    where: { tenantId: tenant.id, public: true, status: 'ACTIVE' },
    select: {
      id: true,
      name: true,
      slug: true,
      description: true,
      rateLimit: true,
      rateWindowSeconds: true,
      monthlyQuota: true,
      quotaMode: true,
      currency: true,
      flatFeeMinor: true,
      includedRequests: true,
      overageUnitPriceMinor: true,
      overageBlockSize: true,
      tiers: true,
      trialDays: true,
      planApis: { select: { api: { select: { name: true, slug: true, visibility: true, archivedAt: true } } } },
    },
    orderBy: [{ flatFeeMinor: 'asc' }, { name: 'asc' }],
  });
  return plans.map(({ planApis, ...p }) => ({
    ...p,
    paid: isPaidPlan(p),
    apis: planApis
      .map((pa) => pa.api)
      .filter((a) => a.visibility === 'PUBLIC' && !a.archivedAt)
      .map((a) => ({ name: a.name, slug: a.slug })),
  }));
}
