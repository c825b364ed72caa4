import { randomBytes } from 'node:crypto';
import { newId, type Db } from '@tollgate/db';
import { createLogger } from '@tollgate/config';
import type { StripeClient } from '@tollgate/billing';
import { testKeyspace, testRedis } from '../harness/index';
import type { PortalDeps, PortalTenant } from '../../apps/console/src/server/portal/context';
import { findPortalTenant } from '../../apps/console/src/server/portal/context';

export const uniq = (label: string) => `${label}-${randomBytes(4).toString('hex')}`;

export function portalDeps(db: Db, stripe: StripeClient | null = null): PortalDeps {
  return {
    db,
    redis: testRedis(),
    keyspace: testKeyspace('portal'),
    log: createLogger('portal-test', 'silent'),
    email: { from: 'portal@example.com' },
    stripe,
    consoleUrl: 'http://console.test',
  };
}

/** A tenant with one public API granted by a free plan (quota 100) and a paid plan. */
export async function makePortalTenant(db: Db, opts: { requireDeveloperApproval?: boolean } = {}) {
  const id = newId('tenant');
  const slug = uniq('p');
  await db.tenant.create({ data: { id, slug, name: `Portal ${slug}`, requireDeveloperApproval: opts.requireDeveloperApproval ?? false } });
  const apiId = newId('api');
  const privateApiId = newId('api');
  await db.api.create({
    data: { id: apiId, tenantId: id, name: 'Weather', slug: 'weather', basePath: '/weather', visibility: 'PUBLIC', openapi: OPENAPI },
  });
  await db.api.create({
    data: { id: privateApiId, tenantId: id, name: 'Secret', slug: 'secret', basePath: '/secret', visibility: 'PRIVATE' },
  });
  const freePlanId = newId('plan');
  const paidPlanId = newId('plan');
  const privatePlanId = newId('plan');
  await db.plan.create({ data: { id: freePlanId, tenantId: id, name: 'Free', slug: 'free', monthlyQuota: 100, rateLimit: 10 } });
  await db.plan.create({
    data: {
      id: paidPlanId,
      tenantId: id,
      name: 'Pro',
      slug: 'pro',
      monthlyQuota: 100_000,
      quotaMode: 'OVERAGE',
      flatFeeMinor: 2900,
      includedRequests: 1000,
      overageUnitPriceMinor: 1,
    },
  });
  await db.plan.create({ data: { id: privatePlanId, tenantId: id, name: 'Partner', slug: 'partner', public: false } });
  await db.planApi.createMany({ data: [freePlanId, paidPlanId, privatePlanId].map((planId) => ({ planId, apiId })) });
  const tenant = (await findPortalTenant(db, slug)) as PortalTenant;
  return { tenant, apiId, privateApiId, freePlanId, paidPlanId, privatePlanId };
}

export const OPENAPI = {
  openapi: '3.1.0',
  info: { title: 'Weather API', version: '1.2.0', description: 'Forecasts.' },
  paths: {
    '/forecast/{city}': {
      parameters: [{ name: 'city', in: 'path', required: true, schema: { type: 'string' }, example: 'paris' }],
      get: {
        operationId: 'getForecast',
        summary: 'Forecast for a city',
        parameters: [{ name: 'days', in: 'query', required: true, schema: { type: 'integer', minimum: 1 }, example: 3 }],
        responses: { '200': { description: 'OK', content: { 'application/json': { schema: { $ref: '#/components/schemas/Forecast' } } } } },
      },
    },
    '/alerts': {
      post: {
        operationId: 'createAlert',
        summary: 'Subscribe to alerts',
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['city'],
                properties: { city: { type: 'string' }, level: { type: 'string', enum: ['low', 'high'] } },
              },
              example: { city: 'oslo', level: 'high' },
            },
          },
        },
        responses: { '201': { description: 'Created' } },
      },
    },
  },
  components: {
    schemas: {
      Forecast: {
        type: 'object',
        required: ['city'],
        properties: { city: { type: 'string' }, days: { type: 'array', items: { $ref: '#/components/schemas/Day' } } },
      },
      Day: {
        type: 'object',
        properties: {
          date: { type: 'string', format: 'date-time' },
          tempC: { type: 'number' },
          self: { $ref: '#/components/schemas/Day' },
        },
      },
    },
  },
};
