import { randomBytes } from 'node:crypto';
import { monotonicFactory } from 'ulid';
import { newId, type Db } from '@tollgate/db';
import { addAnchoredMonths } from '@tollgate/billing';
import { USAGE_BATCH_VERSION, type UsageBatch, type UsageEvent } from '@tollgate/usage';

const ulid = monotonicFactory();

export type Fixture = {
  tenantId: string;
  apiId: string;
  planId: string;
  consumerId: string;
  subscriptionId: string;
  keyId: string;
  periodStart: Date;
};

/**
 * The default fixture's billing period began ten days ago (to the hour), so the recent past the
 * tests write usage into (a few hours, a day) and the near future are always inside it, whatever
 * today's date. A period anchored to the 1st of "this month" left the previous hour in last
 * month's period during the first hour of every month.
 */
export function currentPeriodStart(now = Date.now()): Date {
  const HOUR = 3_600_000;
  return new Date(Math.floor((now - 10 * 24 * HOUR) / HOUR) * HOUR);
}

/** A tenant with one paid plan, one consumer subscribed to it and one key. */
export async function createFixture(
  db: Db,
  opts: { periodStart?: Date; stripe?: { customerId: string; subscriptionId: string; meterId: string } } = {},
): Promise<Fixture> {
  const tenantId = newId('tenant');
  const planId = newId('plan');
  const consumerId = newId('consumer');
  const subscriptionId = newId('subscription');
  const keyId = newId('key');
  const periodStart = opts.periodStart ?? currentPeriodStart();
  const periodEnd = addAnchoredMonths(periodStart, 1);
  await db.tenant.create({ data: { id: tenantId, slug: tenantId.replace('_', '-'), name: 'Acme' } });
  await db.plan.create({
    data: {
      id: planId,
      tenantId,
      name: 'Pro',
      slug: 'pro',
      flatFeeMinor: 2900,
      includedRequests: 100,
      overageUnitPriceMinor: 1,
      quotaMode: 'OVERAGE',
      ...(opts.stripe ? { stripeMeterId: opts.stripe.meterId, stripeProductId: 'prod_x', stripeMeteredPriceId: 'price_x' } : {}),
    },
  });
  await db.consumer.create({
    data: {
      id: consumerId,
      tenantId,
      email: `${consumerId}@example.com`,
      name: 'Dev',
      ...(opts.stripe ? { stripeCustomerId: opts.stripe.customerId } : {}),
    },
  });
  await db.subscription.create({
    data: {
      id: subscriptionId,
      tenantId,
      consumerId,
      planId,
      currentPeriodStart: periodStart,
      currentPeriodEnd: periodEnd,
      ...(opts.stripe ? { stripeSubscriptionId: opts.stripe.subscriptionId } : {}),
    },
  });
  await db.apiKey.create({
    data: { id: keyId, tenantId, consumerId, subscriptionId, hash: randomBytes(32).toString('hex'), prefix: 'tg_test_abcd' },
  });
  return { tenantId, apiId: newId('api'), planId, consumerId, subscriptionId, keyId, periodStart };
}

export function makeEvent(f: Fixture, over: Partial<UsageEvent> = {}): UsageEvent {
  return {
    id: ulid(),
    ts: Date.now(),
    tenantId: f.tenantId,
    apiId: f.apiId,
    routeId: null,
    keyId: f.keyId,
    consumerId: f.consumerId,
    subscriptionId: f.subscriptionId,
    planId: f.planId,
    method: 'GET',
    status: 200,
    latencyMs: 12.5,
    upstreamLatencyMs: 10,
    bytesIn: 100,
    bytesOut: 1000,
    cacheHit: false,
    rejected: null,
    ...over,
  };
}

export function makeBatch(events: UsageEvent[]): UsageBatch {
  return { v: USAGE_BATCH_VERSION, batchId: ulid(), source: 'test', events };
}
