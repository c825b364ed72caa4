import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { createLogger } from '@tollgate/config';
import { newId, startOutboxRelay, type Db, type OutboxRelay } from '@tollgate/db';
import { createStripeWebhookHandler } from '@tollgate/billing';
import { testDb } from '../harness/db';
import { testKeyspace, testRedis } from '../harness/index';
import { createHttpServer } from '../../apps/worker/src/server';
import { createMetrics } from '../../apps/worker/src/metrics';
import { createFixture, type Fixture } from './fixtures';

const secret = `whsec_${randomBytes(16).toString('hex')}`;
const signer = new Stripe('sk_test_signer');
const logger = createLogger('test', 'silent');

let db: Db;
let server: Server;
let base: string;
let relay: OutboxRelay;
const keyspace = testKeyspace('webhooks');
const redis = testRedis();

beforeAll(async () => {
  db = testDb();
  const handler = createStripeWebhookHandler({ db, webhookSecret: secret, logger });
  server = createHttpServer({
    logger,
    metrics: createMetrics(),
    ready: async () => ({ ready: true, checks: {} }),
    stripeWebhook: handler,
    maxBodyBytes: 64 * 1024,
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  relay = startOutboxRelay({ db, redis, keyspace, pollMs: 3_600_000 });
});
afterAll(async () => {
  await relay.stop();
  await new Promise<void>((r) => server.close(() => r()));
  redis.disconnect();
  await db.$disconnect();
});

let seq = 0;
function subscriptionEvent(
  f: Fixture,
  stripeSubId: string,
  type: string,
  status: string,
  created: number,
  id = `evt_${Date.now()}_${seq++}`,
) {
  return {
    id,
    object: 'event',
    api_version: '2026-10-28.endive',
    created,
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    data: {
      object: {
        id: stripeSubId,
        object: 'subscription',
        status,
        customer: 'cus_webhook',
        cancel_at_period_end: false,
        canceled_at: status === 'canceled' ? created : null,
        trial_end: null,
        metadata: { tollgate_subscription_id: f.subscriptionId },
        items: {
          object: 'list',
          data: [
            {
              id: 'si_1',
              object: 'subscription_item',
              current_period_start: created - 100,
              current_period_end: created + 2_592_000,
              price: { recurring: { usage_type: 'metered' } },
            },
          ],
        },
      },
    },
  };
}

async function deliver(event: unknown, opts: { timestamp?: number; signWith?: string; header?: string | null; body?: string } = {}) {
  const payload = opts.body ?? JSON.stringify(event);
  const header =
    opts.header === undefined
      ? signer.webhooks.generateTestHeaderString({
          payload,
          secret: opts.signWith ?? secret,
          ...(opts.timestamp ? { timestamp: opts.timestamp } : {}),
        })
      : opts.header;
  const res = await fetch(`${base}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(header !== null ? { 'stripe-signature': header } : {}) },
    body: payload,
  });
  return {
    status: res.status,
    body: (await res.json()) as { received?: boolean; outcome?: string; error?: { code: string; message: string } },
  };
}

const now = () => Math.floor(Date.now() / 1000);

describe('POST /webhooks/stripe', () => {
  it('refuses a body signed with another secret (400) and records nothing', async () => {
    const f = await createFixture(db);
    const e = subscriptionEvent(f, 'sub_bad', 'customer.subscription.updated', 'canceled', now());
    const res = await deliver(e, { signWith: 'whsec_wrong' });
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe('bad_request');
    expect(await db.stripeWebhookEvent.findUnique({ where: { id: e.id } })).toBeNull();
    expect((await db.subscription.findUniqueOrThrow({ where: { id: f.subscriptionId } })).status).toBe('ACTIVE');
  });

  it('refuses a correctly signed but stale delivery (timestamp older than 5 minutes) with 400', async () => {
    const f = await createFixture(db);
    const e = subscriptionEvent(f, 'sub_stale', 'customer.subscription.updated', 'canceled', now());
    const res = await deliver(e, { timestamp: now() - 600 });
    expect(res.status).toBe(400);
    expect(await db.stripeWebhookEvent.findUnique({ where: { id: e.id } })).toBeNull();
  });

  it.each([
    ['no signature header', { header: null }],
    ['a garbage signature header', { header: 't=abc,v1=zzz' }],
    ['a body altered after signing', { header: 'SIGN', body: 'ALTERED' }],
  ])('refuses %s with 400', async (_n, o) => {
    const f = await createFixture(db);
    const e = subscriptionEvent(f, 'sub_x', 'customer.subscription.updated', 'canceled', now());
    const opts =
      o.header === 'SIGN'
        ? {
            header: signer.webhooks.generateTestHeaderString({ payload: JSON.stringify(e), secret }),
            body: JSON.stringify({ ...e, type: 'x' }),
          }
        : o;
    expect((await deliver(e, opts as never)).status).toBe(400);
  });

  it('refuses a signed body that is not JSON with 400, not a crash', async () => {
    const body = '{"id": "evt_broken", ';
    const res = await deliver(null, { body, header: signer.webhooks.generateTestHeaderString({ payload: body, secret }) });
    expect(res.status).toBe(400);
  });

  it('refuses an oversized body with 413', async () => {
    const res = await fetch(`${base}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'stripe-signature': 't=1,v1=x' },
      body: 'x'.repeat(100 * 1024),
    });
    expect(res.status).toBe(413);
  });

  it('answers other methods and paths with the error envelope', async () => {
    const get = await fetch(`${base}/webhooks/stripe`);
    expect(get.status).toBe(405);
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const metrics = await fetch(`${base}/metrics`);
    expect(await metrics.text()).toContain('tollgate_usage_batches_total');
  });

  it('suspends the keys of a canceled subscription and restores them when it is active again, through the outbox', async () => {
    const f = await createFixture(db);
    const stripeSub = `sub_live_${seq++}`;
    const key = await db.apiKey.findUniqueOrThrow({ where: { id: f.keyId } });
    const t = now();

    const canceled = await deliver(subscriptionEvent(f, stripeSub, 'customer.subscription.deleted', 'canceled', t));
    expect(canceled).toMatchObject({ status: 200, body: { outcome: 'applied' } });
    let sub = await db.subscription.findUniqueOrThrow({ where: { id: f.subscriptionId } });
    expect(sub).toMatchObject({ status: 'CANCELED', stripeSubscriptionId: stripeSub, stripeSubscriptionItemId: 'si_1' });
    await relay.drainOnce();
    const record = JSON.parse((await redis.get(keyspace.key(key.hash)))!) as { subscriptionStatus: string };
    expect(record.subscriptionStatus).toBe('canceled');

    const back = await deliver(subscriptionEvent(f, stripeSub, 'customer.subscription.updated', 'active', t + 5));
    expect(back.status).toBe(200);
    sub = await db.subscription.findUniqueOrThrow({ where: { id: f.subscriptionId } });
    expect(sub.status).toBe('ACTIVE');
    await relay.drainOnce();
    expect((JSON.parse((await redis.get(keyspace.key(key.hash)))!) as { subscriptionStatus: string }).subscriptionStatus).toBe('active');
  });

  it('answers a replayed event 200 and changes nothing', async () => {
    const f = await createFixture(db);
    const stripeSub = `sub_replay_${seq++}`;
    const t = now();
    const pastDue = subscriptionEvent(f, stripeSub, 'customer.subscription.updated', 'past_due', t);
    expect((await deliver(pastDue)).body.outcome).toBe('applied');
    expect((await deliver(subscriptionEvent(f, stripeSub, 'customer.subscription.updated', 'active', t + 1))).body.outcome).toBe('applied');
    const outboxBefore = await db.outboxEvent.count();

    const replay = await deliver(pastDue);
    expect(replay).toMatchObject({ status: 200, body: { received: true, outcome: 'duplicate' } });
    expect((await db.subscription.findUniqueOrThrow({ where: { id: f.subscriptionId } })).status).toBe('ACTIVE');
    expect(await db.outboxEvent.count()).toBe(outboxBefore);
    expect(await db.stripeWebhookEvent.count({ where: { id: pastDue.id } })).toBe(1);
  });

  it('ends in the newest state when subscription events arrive out of order', async () => {
    const f = await createFixture(db);
    const stripeSub = `sub_order_${seq++}`;
    const t = now();
    const created = subscriptionEvent(f, stripeSub, 'customer.subscription.created', 'incomplete', t);
    const active = subscriptionEvent(f, stripeSub, 'customer.subscription.updated', 'active', t + 10);
    const pastDue = subscriptionEvent(f, stripeSub, 'customer.subscription.updated', 'past_due', t + 20);
    const results = [];
    for (const e of [pastDue, created, active]) results.push((await deliver(e)).body.outcome);
    expect(results).toEqual(['applied', 'stale', 'stale']);
    const sub = await db.subscription.findUniqueOrThrow({ where: { id: f.subscriptionId } });
    expect(sub.status).toBe('PAST_DUE');
    expect(sub.stripeStateAt?.getTime()).toBe((t + 20) * 1000);
  });

  it('links the Stripe subscription and customer when checkout completes', async () => {
    const f = await createFixture(db);
    const e = {
      id: `evt_checkout_${seq++}`,
      object: 'event',
      created: now(),
      type: 'checkout.session.completed',
      data: {
        object: {
          id: 'cs_test_1',
          object: 'checkout.session',
          mode: 'subscription',
          customer: 'cus_checkout',
          subscription: `sub_from_checkout_${seq}`,
          client_reference_id: f.subscriptionId,
          metadata: { tollgate_subscription_id: f.subscriptionId },
        },
      },
    };
    expect((await deliver(e)).body.outcome).toBe('applied');
    const sub = await db.subscription.findUniqueOrThrow({ where: { id: f.subscriptionId }, include: { consumer: true } });
    expect(sub.stripeSubscriptionId).toBe(`sub_from_checkout_${seq}`);
    expect(sub.stripeCheckoutSessionId).toBe('cs_test_1');
    expect(sub.consumer.stripeCustomerId).toBe('cus_checkout');
  });

  it("a paid upgrade takes over the developer's keys when Stripe activates it, without any portal request", async () => {
    // The developer is on a free plan (no Stripe subscription) with a key, and bought Pro in Checkout.
    const f = await createFixture(db);
    const key = await db.apiKey.findUniqueOrThrow({ where: { id: f.keyId } });
    const paidPlanId = newId('plan');
    await db.plan.create({
      data: { id: paidPlanId, tenantId: f.tenantId, name: 'Scale', slug: 'scale', flatFeeMinor: 9900, quotaMode: 'OVERAGE' },
    });
    const paidId = newId('subscription');
    const start = new Date();
    await db.subscription.create({
      data: {
        id: paidId,
        tenantId: f.tenantId,
        consumerId: f.consumerId,
        planId: paidPlanId,
        status: 'INCOMPLETE',
        currentPeriodStart: start,
        currentPeriodEnd: new Date(start.getTime() + 30 * 86_400_000),
        createdAt: new Date(start.getTime() + 1000),
      },
    });
    const paid = { ...f, subscriptionId: paidId };
    const stripeSub = `sub_upgrade_${seq++}`;
    const t = now();
    const checkout = {
      id: `evt_checkout_${seq++}`,
      object: 'event',
      created: t,
      type: 'checkout.session.completed',
      data: {
        object: {
          id: `cs_up_${seq}`,
          object: 'checkout.session',
          mode: 'subscription',
          customer: `cus_up_${seq}`,
          subscription: stripeSub,
          client_reference_id: paidId,
          metadata: { tollgate_subscription_id: paidId },
        },
      },
    };
    expect((await deliver(checkout)).body.outcome).toBe('applied');
    // Checkout alone does not activate anything: the key still serves the free plan.
    expect((await db.apiKey.findUniqueOrThrow({ where: { id: f.keyId } })).subscriptionId).toBe(f.subscriptionId);

    expect((await deliver(subscriptionEvent(paid, stripeSub, 'customer.subscription.created', 'active', t + 1))).body.outcome).toBe(
      'applied',
    );
    expect((await db.apiKey.findUniqueOrThrow({ where: { id: f.keyId } })).subscriptionId).toBe(paidId);
    expect((await db.subscription.findUniqueOrThrow({ where: { id: f.subscriptionId } })).status).toBe('CANCELED');
    await relay.drainOnce();
    const record = JSON.parse((await redis.get(keyspace.key(key.hash)))!) as {
      subscriptionId: string;
      planId: string;
      subscriptionStatus: string;
    };
    expect(record).toMatchObject({ subscriptionId: paidId, planId: paidPlanId, subscriptionStatus: 'active' });

    // A later update settles nothing more (idempotent) and keeps the key on the paid plan.
    const audits = await db.auditLog.count({ where: { tenantId: f.tenantId, action: 'subscription.replaced' } });
    expect(audits).toBe(1);
    expect((await deliver(subscriptionEvent(paid, stripeSub, 'customer.subscription.updated', 'active', t + 2))).body.outcome).toBe(
      'applied',
    );
    expect(await db.auditLog.count({ where: { tenantId: f.tenantId, action: 'subscription.replaced' } })).toBe(1);
    expect((await db.apiKey.findUniqueOrThrow({ where: { id: f.keyId } })).subscriptionId).toBe(paidId);
  });

  it('records Stripe invoices for the subscription and never moves a paid one back to open', async () => {
    const f = await createFixture(db);
    const stripeSub = `sub_inv_${seq++}`;
    await db.subscription.update({ where: { id: f.subscriptionId }, data: { stripeSubscriptionId: stripeSub } });
    const invoice = (status: string, created: number) => ({
      id: `evt_inv_${seq++}`,
      object: 'event',
      created,
      type: status === 'paid' ? 'invoice.paid' : 'invoice.finalized',
      data: {
        object: {
          id: `in_${f.subscriptionId}`,
          object: 'invoice',
          status,
          total: 3150,
          currency: 'usd',
          hosted_invoice_url: 'https://invoice.stripe.com/i/1',
          period_start: created - 2_592_000,
          period_end: created,
          parent: { type: 'subscription_details', subscription_details: { subscription: stripeSub, metadata: {} } },
          lines: {
            object: 'list',
            data: [
              { description: 'Pro', amount: 2900, quantity: 1 },
              { description: 'requests', amount: 250, quantity: 350 },
            ],
          },
        },
      },
    });
    const t = now();
    expect((await deliver(invoice('paid', t + 10))).body.outcome).toBe('applied');
    expect((await deliver(invoice('open', t))).body.outcome).toBe('stale');
    const row = await db.invoice.findUniqueOrThrow({ where: { stripeInvoiceId: `in_${f.subscriptionId}` } });
    expect(row).toMatchObject({
      status: 'paid',
      totalMinor: 3150n,
      currency: 'usd',
      subscriptionId: f.subscriptionId,
      tenantId: f.tenantId,
    });
    expect(row.lines).toHaveLength(2);
  });

  it('acknowledges events it does not handle (200, ignored) so Stripe stops resending them', async () => {
    const e = {
      id: `evt_other_${seq++}`,
      object: 'event',
      created: now(),
      type: 'charge.refunded',
      data: { object: { id: 'ch_1', object: 'charge' } },
    };
    expect(await deliver(e)).toMatchObject({ status: 200, body: { outcome: 'ignored' } });
  });
});
