import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Sql } from 'postgres';
import { createLogger } from '@tollgate/config';
import type { Db } from '@tollgate/db';
import Stripe from 'stripe';
import { newId } from '@tollgate/db';
import {
  cancelStripeSubscription,
  changeSubscriptionPlan,
  createStripeWebhookHandler,
  createCheckoutSession,
  createStripeClient,
  meterEventName,
  previewSubscriptionInvoice,
  reportMeterUsage,
  StripeNotConfiguredError,
  syncPlanToStripe,
  type StripeClient,
} from '@tollgate/billing';
import { startStripeStandIn, type StripeStandIn } from '@tollgate/billing/testing';
import { testDb } from '../harness/db';
import { testEnv, testKeyspace, testRedis } from '../harness/index';
import { createSql } from '../../apps/worker/src/db';
import { applyUsageBatch } from '../../apps/worker/src/ingest/apply-batch';
import { reconcileBilling } from '../../apps/worker/src/billing/reconcile';
import { createFixture, makeBatch, makeEvent, type Fixture } from './fixtures';

const HOUR = 3_600_000;
const logger = createLogger('test', 'silent');
const fast = { attempts: 6, baseMs: 5, maxMs: 20 };

let db: Db;
let sql: Sql;
let standIn: StripeStandIn;
let stripe: StripeClient;

beforeAll(async () => {
  db = testDb();
  sql = createSql(testEnv().databaseUrl, 4);
  standIn = await startStripeStandIn();
  stripe = createStripeClient({ ...standIn.settings, timeoutMs: 300 })!;
});
afterAll(async () => {
  await standIn.stop();
  await sql.end();
  await db.$disconnect();
});

/** A fixture subscription made paid through Checkout on the stand-in, its webhooks delivered and applied. */
async function paidThroughCheckout(secret: string) {
  const f = await createFixture(db);
  await db.plan.update({ where: { id: f.planId }, data: { stripeMeterId: null, stripeProductId: null, stripeMeteredPriceId: null } });
  await db.subscription.update({ where: { id: f.subscriptionId }, data: { status: 'INCOMPLETE' } });
  const handle = createStripeWebhookHandler({ db, webhookSecret: secret, logger });
  const signer = new Stripe('sk_test_signer');
  const session = await createCheckoutSession(
    db,
    stripe,
    { subscriptionId: f.subscriptionId, successUrl: 'https://p/ok', cancelUrl: 'https://p/no' },
    fast,
  );
  const done = standIn.completeCheckout(session.id);
  for (const e of done.events) {
    const payload = JSON.stringify(e);
    expect((await handle(payload, signer.webhooks.generateTestHeaderString({ payload, secret }))).status).toBe(200);
  }
  return { f, session, done };
}

let n = 0;
/** A Stripe-linked subscription with `counts[i]` billable events in the i-th closed hour. */
async function seed(counts: number[]): Promise<Fixture & { customer: string }> {
  const customer = `cus_bill${n++}`;
  const f = await createFixture(db, { stripe: { customerId: customer, subscriptionId: `sub_s_${n}_${Date.now()}`, meterId: 'mtr_x' } });
  const top = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
  const events = counts.flatMap((c, i) => Array.from({ length: c }, () => makeEvent(f, { ts: top - i * HOUR + 1000 })));
  await applyUsageBatch(sql, makeBatch(events));
  return { ...f, customer };
}
const ledgerOf = async (f: Fixture) =>
  (await db.ledgerLine.aggregate({ where: { subscriptionId: f.subscriptionId }, _sum: { quantity: true, reportedQuantity: true } }))._sum;
const standInTotal = (f: Fixture & { customer: string }) => standIn.meterTotals().get(`|${meterEventName(f.planId)}|${f.customer}`) ?? 0;
const sentFor = (f: Fixture) =>
  standIn.requests.filter((r) => r.path === '/v1/billing/meter_events' && String(r.body.event_name) === meterEventName(f.planId));

describe('meter reporting to Stripe', () => {
  beforeEach(() => {
    // No failure left over from another test.
    standIn.failNext(0, { kind: 'hang' });
  });

  it("sends one meter event per subscription-hour with the ledger identifier and the hour's quantity", async () => {
    const f = await seed([3, 5]);
    const res = await reportMeterUsage({ db, stripe, logger, settleMs: 0, retry: fast, subscriptionId: f.subscriptionId });
    expect(res).toMatchObject({ sent: 2, failed: 0, quantity: 8n });
    const lines = await db.ledgerLine.findMany({ where: { subscriptionId: f.subscriptionId }, orderBy: { hourStart: 'asc' } });
    const events = standIn.meterEvents.filter((e) => e.customer === f.customer);
    expect(events.map((e) => [e.identifier, e.value]).sort()).toEqual(lines.map((l) => [`${l.identifier}_0`, Number(l.quantity)]).sort());
    expect(lines.every((l) => l.reportedQuantity === l.quantity && l.reportedAt)).toBe(true);
    // Nothing left: a second run sends nothing.
    expect((await reportMeterUsage({ db, stripe, logger, settleMs: 0, retry: fast, subscriptionId: f.subscriptionId })).sent).toBe(0);
  });

  it("retries 429 and 500 with the same identifier until Stripe takes it; Stripe's total equals the ledger", async () => {
    const f = await seed([7]);
    standIn.failNext(2, { kind: 'status', status: 429 }, /meter_events/);
    standIn.failNext(2, { kind: 'status', status: 500 }, /meter_events/);
    const res = await reportMeterUsage({ db, stripe, logger, settleMs: 0, retry: fast, subscriptionId: f.subscriptionId });
    expect(res).toMatchObject({ sent: 1, failed: 0 });
    const attempts = sentFor(f);
    expect(attempts.map((r) => r.status)).toEqual([429, 429, 500, 500, 200]);
    expect(new Set(attempts.map((r) => r.body.identifier)).size).toBe(1);
    expect(BigInt(standInTotal(f))).toBe((await ledgerOf(f)).quantity);
  });

  it('keeps a report that ran out of retries pending and sends the same identifier on the next run', async () => {
    const f = await seed([4]);
    standIn.failNext(3, { kind: 'status', status: 503 }, /meter_events/);
    const first = await reportMeterUsage({
      db,
      stripe,
      logger,
      settleMs: 0,
      retry: { ...fast, attempts: 3 },
      subscriptionId: f.subscriptionId,
    });
    expect(first).toMatchObject({ sent: 0, failed: 1 });
    expect((await ledgerOf(f)).reportedQuantity).toBe(0n);
    const second = await reportMeterUsage({ db, stripe, logger, settleMs: 0, retry: fast, subscriptionId: f.subscriptionId });
    expect(second).toMatchObject({ sent: 1, quantity: 4n });
    expect(new Set(sentFor(f).map((r) => r.body.identifier)).size).toBe(1);
    expect(standInTotal(f)).toBe(4);
  });

  it('does not bill twice when Stripe took the event but the response was lost (timeout)', async () => {
    const f = await seed([6]);
    standIn.failNext(1, { kind: 'lost-response' }, /meter_events/);
    const res = await reportMeterUsage({ db, stripe, logger, settleMs: 0, retry: fast, subscriptionId: f.subscriptionId });
    // The retry met Stripe's "already exists" refusal and counted it as delivered.
    expect(res).toMatchObject({ sent: 0, duplicates: 1, quantity: 6n });
    expect(standInTotal(f)).toBe(6);
    expect((await ledgerOf(f)).reportedQuantity).toBe(6n);
  });

  it('retries a request Stripe never answers (client timeout) with the same identifier', async () => {
    const f = await seed([9]);
    standIn.failNext(1, { kind: 'hang' }, /meter_events/);
    const res = await reportMeterUsage({ db, stripe, logger, settleMs: 0, retry: fast, subscriptionId: f.subscriptionId });
    expect(res).toMatchObject({ sent: 1, quantity: 9n });
    const attempts = sentFor(f);
    expect(attempts.map((r) => r.status)).toEqual([-1, 200]);
    expect(attempts[0]!.body.identifier).toBe(attempts[1]!.body.identifier);
    expect(standInTotal(f)).toBe(9);
  });

  it('reports usage that arrives late for a reported hour as a delta under a new identifier', async () => {
    const f = await seed([2]);
    await reportMeterUsage({ db, stripe, logger, settleMs: 0, retry: fast, subscriptionId: f.subscriptionId });
    const line = await db.ledgerLine.findFirstOrThrow({ where: { subscriptionId: f.subscriptionId } });
    await applyUsageBatch(
      sql,
      makeBatch([
        makeEvent(f, { ts: line.hourStart.getTime() + 5 }),
        makeEvent(f, { ts: line.hourStart.getTime() + 6 }),
        makeEvent(f, { ts: line.hourStart.getTime() + 7 }),
      ]),
    );
    await reportMeterUsage({ db, stripe, logger, settleMs: 0, retry: fast, subscriptionId: f.subscriptionId });
    expect(sentFor(f).map((r) => [r.body.identifier, (r.body.payload as { value: string }).value])).toEqual([
      [`${line.identifier}_0`, '2'],
      [`${line.identifier}_2`, '3'],
    ]);
    expect(standInTotal(f)).toBe(5);
  });

  it('holds back the current hour until it has closed and settled', async () => {
    const customer = 'cus_open_hour';
    const f = await createFixture(db, { stripe: { customerId: customer, subscriptionId: `sub_open_${Date.now()}`, meterId: 'mtr_x' } });
    await applyUsageBatch(sql, makeBatch([makeEvent(f)]));
    expect((await reportMeterUsage({ db, stripe, logger, retry: fast, subscriptionId: f.subscriptionId })).sent).toBe(0);
  });

  it('sends nothing with Stripe unconfigured, and still previews the invoice from the ledger', async () => {
    const f = await seed([150]);
    expect(await reportMeterUsage({ db, stripe: null, logger, settleMs: 0, subscriptionId: f.subscriptionId })).toMatchObject({
      sent: 0,
      failed: 0,
    });
    expect(sentFor(f)).toHaveLength(0);
    const preview = await previewSubscriptionInvoice(db, f.subscriptionId, { at: new Date(Date.now() - HOUR) });
    // Pro: 29.00 flat + 100 included, 1 cent per extra request.
    expect(preview.requests).toBe(150n);
    expect(preview.totalMinor).toBe(2900n + 50n);
    await expect(
      createCheckoutSession(db, null, { subscriptionId: f.subscriptionId, successUrl: 'https://x/ok', cancelUrl: 'https://x/no' }),
    ).rejects.toBeInstanceOf(StripeNotConfiguredError);
  });
});

describe('plans, customers and checkout on Stripe (Connect)', () => {
  it("syncs a plan once to a product, a meter and prices on the tenant's connected account", async () => {
    const f = await createFixture(db);
    await db.tenant.update({ where: { id: f.tenantId }, data: { stripeAccountId: 'acct_tenant1' } });
    await db.plan.update({ where: { id: f.planId }, data: { stripeMeterId: null, stripeProductId: null, stripeMeteredPriceId: null } });
    const before = standIn.requests.length;
    const ids = await syncPlanToStripe(db, stripe, f.planId, fast);
    expect(ids.productId).toMatch(/^prod_/);
    expect(ids.meterId).toMatch(/^mtr_/);
    expect(ids.flatPriceId).toMatch(/^price_/);
    expect(ids.meteredPriceId).toMatch(/^price_/);
    const made = standIn.requests.slice(before);
    expect(made.every((r) => r.account === 'acct_tenant1' && r.idempotencyKey?.startsWith('tg-'))).toBe(true);
    const meter = made.find((r) => r.path === '/v1/billing/meters')!;
    expect(meter.body).toMatchObject({ event_name: meterEventName(f.planId), default_aggregation: { formula: 'sum' } });
    const metered = made.find((r) => r.path === '/v1/prices' && (r.body.recurring as { usage_type: string }).usage_type === 'metered')!;
    expect(metered.body).toMatchObject({
      billing_scheme: 'tiered',
      tiers_mode: 'graduated',
      tiers: [
        { up_to: '100', unit_amount: '0' },
        { up_to: 'inf', unit_amount: '1' },
      ],
    });
    const again = standIn.requests.length;
    expect(await syncPlanToStripe(db, stripe, f.planId, fast)).toEqual(ids);
    expect(standIn.requests.length).toBe(again);
  });

  it('creates the customer once and a subscription-mode Checkout Session for a paid plan', async () => {
    const f = await createFixture(db);
    await db.plan.update({ where: { id: f.planId }, data: { stripeMeterId: null, stripeProductId: null, stripeMeteredPriceId: null } });
    const session = await createCheckoutSession(
      db,
      stripe,
      { subscriptionId: f.subscriptionId, successUrl: 'https://portal.example/ok', cancelUrl: 'https://portal.example/no' },
      fast,
    );
    expect(session.url).toMatch(/^https:\/\/checkout\.stripe\.com\//);
    const consumer = await db.consumer.findUniqueOrThrow({ where: { id: f.consumerId } });
    expect(consumer.stripeCustomerId).toMatch(/^cus_/);
    const req = standIn.requests.filter((r) => r.path === '/v1/checkout/sessions').at(-1)!;
    expect(req.body).toMatchObject({
      mode: 'subscription',
      customer: consumer.stripeCustomerId,
      client_reference_id: f.subscriptionId,
      metadata: { tollgate_subscription_id: f.subscriptionId },
    });
    expect((req.body.line_items as unknown[]).length).toBe(2);
    expect((await db.subscription.findUniqueOrThrow({ where: { id: f.subscriptionId } })).stripeCheckoutSessionId).toBe(session.id);
  });

  it('checkout → webhooks → plan change with proration → cancel at period end, end to end on the stand-in', async () => {
    const { f, session, done } = await paidThroughCheckout('whsec_e2e');
    let sub = await db.subscription.findUniqueOrThrow({ where: { id: f.subscriptionId } });
    expect(sub).toMatchObject({ status: 'ACTIVE', stripeSubscriptionId: done.subscription.id, stripeCheckoutSessionId: session.id });
    expect(sub.stripeSubscriptionItemId).toMatch(/^si_/);

    const bigger = newId('plan');
    await db.plan.create({
      data: {
        id: bigger,
        tenantId: f.tenantId,
        name: 'Scale',
        slug: 'scale',
        flatFeeMinor: 9900,
        includedRequests: 100_000,
        overageUnitPriceMinor: 1,
      },
    });
    const outboxBefore = await db.outboxEvent.count({ where: { tenantId: f.tenantId } });
    await changeSubscriptionPlan(db, stripe, f.subscriptionId, bigger, { retry: fast });
    const update = standIn.requests.filter((r) => r.method === 'POST' && r.path === `/v1/subscriptions/${done.subscription.id}`).at(-1)!;
    expect(update.body.proration_behavior).toBe('create_prorations');
    const newPrices = await db.plan.findUniqueOrThrow({ where: { id: bigger } });
    const remote = (await stripe.subscriptions.retrieve(done.subscription.id)) as unknown as {
      items: { data: Array<{ price: { id: string } }> };
    };
    expect(remote.items.data.map((i) => i.price.id).sort()).toEqual([newPrices.stripeFlatPriceId, newPrices.stripeMeteredPriceId].sort());
    sub = await db.subscription.findUniqueOrThrow({ where: { id: f.subscriptionId } });
    expect(sub.planId).toBe(bigger);
    expect(await db.outboxEvent.count({ where: { tenantId: f.tenantId } })).toBeGreaterThan(outboxBefore);
    // The change is on record, so past periods are rated at the plan they ran on.
    const changes = await db.subscriptionPlanChange.findMany({ where: { subscriptionId: f.subscriptionId } });
    expect(changes).toMatchObject([{ tenantId: f.tenantId, fromPlanId: f.planId, toPlanId: bigger }]);
    expect(Date.now() - changes[0]!.changedAt.getTime()).toBeLessThan(60_000);
    // Asking again for the plan it is on changes nothing and records nothing.
    await changeSubscriptionPlan(db, stripe, f.subscriptionId, bigger, { retry: fast });
    expect(await db.subscriptionPlanChange.count({ where: { subscriptionId: f.subscriptionId } })).toBe(1);

    await cancelStripeSubscription(db, stripe, f.subscriptionId, { retry: fast });
    expect(
      ((await stripe.subscriptions.retrieve(done.subscription.id)) as unknown as { cancel_at_period_end: boolean }).cancel_at_period_end,
    ).toBe(true);
  });

  it("a plan change first reports the usage so far, running hour included, to the old plan's meter; later usage goes to the new plan's", async () => {
    const { f } = await paidThroughCheckout('whsec_change');
    const customer = (await db.consumer.findUniqueOrThrow({ where: { id: f.consumerId } })).stripeCustomerId!;
    const total = (planId: string) => standIn.meterTotals().get(`|${meterEventName(planId)}|${customer}`) ?? 0;

    // On the old plan: 2 calls in the last closed hour (not yet reported) and 3 in the running one.
    const now = Date.now();
    const hour = Math.floor(now / HOUR) * HOUR;
    await applyUsageBatch(
      sql,
      makeBatch([...[1, 2].map((i) => makeEvent(f, { ts: hour - HOUR + i * 1000 })), ...[1, 2, 3].map(() => makeEvent(f, { ts: now }))]),
    );
    const bigger = newId('plan');
    await db.plan.create({
      data: {
        id: bigger,
        tenantId: f.tenantId,
        name: 'Scale',
        slug: 'scale',
        flatFeeMinor: 9900,
        includedRequests: 100_000,
        overageUnitPriceMinor: 1,
      },
    });
    await changeSubscriptionPlan(db, stripe, f.subscriptionId, bigger, { retry: fast });
    expect(total(f.planId)).toBe(5);
    expect(total(bigger)).toBe(0);
    expect((await ledgerOf(f)).reportedQuantity).toBe(5n);

    // After the change: 4 more calls in the same hour are the new plan's (reported here without
    // waiting for the hour to settle: Stripe refuses meter events stamped in the future).
    await applyUsageBatch(sql, makeBatch([1, 2, 3, 4].map(() => makeEvent(f, { ts: Date.now() }))));
    await reportMeterUsage({ db, stripe, logger, retry: fast, subscriptionId: f.subscriptionId, throughNow: true });
    expect(total(f.planId)).toBe(5);
    expect(total(bigger)).toBe(4);
  });

  it("does not change the plan when the old plan's usage cannot be reported", async () => {
    const { f } = await paidThroughCheckout('whsec_change2');
    await applyUsageBatch(sql, makeBatch([makeEvent(f, { ts: Date.now() })]));
    const bigger = newId('plan');
    await db.plan.create({
      data: {
        id: bigger,
        tenantId: f.tenantId,
        name: 'Scale',
        slug: 'scale',
        flatFeeMinor: 9900,
        includedRequests: 100_000,
        overageUnitPriceMinor: 1,
      },
    });
    // Every attempt at the meter event fails (fast retry makes 6).
    standIn.failNext(fast.attempts, { kind: 'status', status: 500 }, /meter_events/);
    await expect(changeSubscriptionPlan(db, stripe, f.subscriptionId, bigger, { retry: fast })).rejects.toThrow(/not changed/);
    expect((await db.subscription.findUniqueOrThrow({ where: { id: f.subscriptionId } })).planId).toBe(f.planId);
    expect(await db.subscriptionPlanChange.count({ where: { subscriptionId: f.subscriptionId } })).toBe(0);
  });

  it("refuses a plan change to another tenant's plan, and a free-to-paid change without checkout", async () => {
    const f = await createFixture(db);
    const other = await createFixture(db);
    await expect(changeSubscriptionPlan(db, stripe, f.subscriptionId, other.planId)).rejects.toThrow(/no plan/);
    const paid = newId('plan');
    await db.plan.create({ data: { id: paid, tenantId: f.tenantId, name: 'Paid', slug: 'paid', flatFeeMinor: 100 } });
    await expect(changeSubscriptionPlan(db, stripe, f.subscriptionId, paid)).rejects.toThrow(/checkout/);
    expect((await db.subscription.findUniqueOrThrow({ where: { id: f.subscriptionId } })).planId).toBe(f.planId);
  });

  it('refuses checkout for a free plan', async () => {
    const f = await createFixture(db);
    await db.plan.update({
      where: { id: f.planId },
      data: { flatFeeMinor: 0, overageUnitPriceMinor: 0, stripeMeterId: null, stripeProductId: null, stripeMeteredPriceId: null },
    });
    await expect(
      createCheckoutSession(db, stripe, { subscriptionId: f.subscriptionId, successUrl: 'https://x/ok', cancelUrl: 'https://x/no' }, fast),
    ).rejects.toThrow(/free plan/);
  });
});

describe('reconciliation', () => {
  const keyspace = testKeyspace('reconcile');
  const redis = testRedis();
  afterAll(() => redis.disconnect());

  it('raises a lost quota counter to the ledger, reports unreported hours, and flags what it cannot fix', async () => {
    const lost = await seed([40]);
    const ahead = await seed([10]);
    const extra = await seed([5]);
    const tenantIds = [lost, ahead, extra].map((f) => f.tenantId);
    await db.plan.updateMany({ where: { id: { in: [lost.planId, ahead.planId, extra.planId] } }, data: { monthlyQuota: 1_000_000 } });
    const unlimited = await seed([7]);
    tenantIds.push(unlimited.tenantId);
    for (const f of [lost, ahead, extra]) {
      const meter = await stripe.billing.meters.create({
        display_name: 'requests',
        event_name: meterEventName(f.planId),
        default_aggregation: { formula: 'sum' },
      });
      await db.plan.update({ where: { id: f.planId }, data: { stripeMeterId: meter.id } });
    }
    await redis.set(keyspace.quota(ahead.subscriptionId, ahead.periodStart.getTime()), '999999');
    await redis.set(keyspace.quota(extra.subscriptionId, extra.periodStart.getTime()), '5');
    await reportMeterUsage({ db, stripe, logger, settleMs: 0, retry: fast, subscriptionId: extra.subscriptionId });
    // Stripe holds one more request than we reported (e.g. sent by hand).
    standIn.meterEvents.push({
      identifier: 'manual_1',
      event_name: meterEventName(extra.planId),
      customer: extra.customer,
      value: 1,
      timestamp: Math.floor(Date.now() / 1000) - 60,
      account: null,
    });

    const res = await reconcileBilling({ db, redis, keyspace, stripe, logger, settleMs: 0, retry: fast, tenantIds });
    const kinds = (id: string) =>
      res.mismatches
        .filter((m) => m.subscriptionId === id)
        .map((m) => m.kind)
        .sort();
    expect(kinds(lost.subscriptionId)).toEqual(['quota_behind', 'unreported']);
    expect(kinds(ahead.subscriptionId)).toEqual(['quota_ahead', 'unreported']);
    expect(kinds(extra.subscriptionId)).toEqual(['stripe_mismatch']);
    // A plan without a quota has no counter to compare (the gateway keeps none).
    expect(kinds(unlimited.subscriptionId)).toEqual(['unreported']);
    expect(await redis.exists(keyspace.quota(unlimited.subscriptionId, unlimited.periodStart.getTime()))).toBe(0);
    expect(await redis.get(keyspace.quota(lost.subscriptionId, lost.periodStart.getTime()))).toBe('40');
    expect(await redis.pttl(keyspace.quota(lost.subscriptionId, lost.periodStart.getTime()))).toBeGreaterThan(0);
    expect(standInTotal(lost)).toBe(40);
    expect(res.fixed).toMatchObject({ quota_behind: 1, unreported: 57 });

    const again = await reconcileBilling({ db, redis, keyspace, stripe, logger, settleMs: 0, retry: fast, tenantIds });
    expect(again.mismatches.map((m) => m.kind).sort()).toEqual(['quota_ahead', 'stripe_mismatch']);
  });

  it("flags a meter report pending for most of Stripe's identifier window, and fixes nothing with Stripe off", async () => {
    const f = await seed([3]);
    await redis.set(keyspace.quota(f.subscriptionId, f.periodStart.getTime()), '3');
    const line = await db.ledgerLine.findFirstOrThrow({ where: { subscriptionId: f.subscriptionId } });
    await db.meterReport.create({
      data: { identifier: `${line.identifier}_0`, ledgerLineId: line.id, quantity: 3n, createdAt: new Date(Date.now() - 21 * HOUR) },
    });
    const res = await reconcileBilling({ db, redis, keyspace, stripe: null, logger, settleMs: 0, tenantIds: [f.tenantId] });
    expect(res.mismatches.map((m) => m.kind).sort()).toEqual(['stale_pending', 'unreported']);
    expect(res.fixed).toEqual({});
  });
});
