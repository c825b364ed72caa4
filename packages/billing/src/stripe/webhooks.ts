import type Stripe from 'stripe';
import type { Logger } from '@tollgate/config';
import { enqueueKeyPublish, enqueueSubscriptionKeysPublish, newId, Prisma, type Db, type SubscriptionStatus } from '@tollgate/db';
import { errorBody } from '@tollgate/policy';
import { createWebhookVerifier } from './client';

export type WebhookResult = { status: number; body: unknown };

export type StripeWebhookOptions = {
  db: Db;
  /** The endpoint's signing secret (`whsec_…`). */
  webhookSecret: string;
  logger: Logger;
  /** Seconds a signature stays valid (Stripe's default: 300). */
  toleranceSeconds?: number;
  /** Called after an event was applied and committed (metrics). */
  onResult?: (result: 'applied' | 'duplicate' | 'ignored' | 'stale' | 'bad_signature' | 'error', type?: string) => void;
};

/** Stripe's subscription states mapped onto ours; keys serve in trialing, active and past_due. */
export function mapStripeStatus(status: Stripe.Subscription.Status): SubscriptionStatus {
  switch (status) {
    case 'trialing':
      return 'TRIALING';
    case 'active':
      return 'ACTIVE';
    case 'past_due':
      return 'PAST_DUE';
    case 'canceled':
    case 'incomplete_expired':
      return 'CANCELED';
    // Unpaid and paused subscriptions stop serving until paid or resumed; they are not over.
    case 'unpaid':
    case 'paused':
    case 'incomplete':
    default:
      return 'INCOMPLETE';
  }
}

type Tx = Prisma.TransactionClient;

const SETTLED = new Set(['paid', 'void', 'uncollectible']);
const LIVE = new Set<SubscriptionStatus>(['ACTIVE', 'TRIALING', 'PAST_DUE']);

/**
 * A paid plan bought through Checkout goes live here, so this is where it takes over: the
 * developer's older live subscriptions end and their keys move to it, republished in the same
 * transaction, so the gateways serve the paid plan without waiting for the developer to come
 * back to the portal. Only older subscriptions without a Stripe subscription (free plans) are
 * settled here: ending a paid one must cancel it in Stripe, which cannot happen inside this
 * transaction, so those stay for the portal's settle (which remains the idempotent fallback).
 */
async function settleReplacedSubscriptions(tx: Tx, sub: { id: string; tenantId: string; consumerId: string; createdAt: Date }) {
  const older = await tx.subscription.findMany({
    where: {
      tenantId: sub.tenantId,
      consumerId: sub.consumerId,
      id: { not: sub.id },
      status: { in: [...LIVE] },
      stripeSubscriptionId: null,
      createdAt: { lt: sub.createdAt },
    },
    select: { id: true },
  });
  for (const o of older) {
    const keys = await tx.apiKey.findMany({ where: { subscriptionId: o.id, consumerId: sub.consumerId }, select: { id: true } });
    await tx.apiKey.updateMany({ where: { subscriptionId: o.id, consumerId: sub.consumerId }, data: { subscriptionId: sub.id } });
    await tx.subscription.update({ where: { id: o.id }, data: { status: 'CANCELED', canceledAt: new Date() } });
    for (const k of keys) await enqueueKeyPublish(tx, k.id);
    await tx.auditLog.create({
      data: {
        id: newId('audit'),
        tenantId: sub.tenantId,
        actorType: 'system',
        actorId: null,
        action: 'subscription.replaced',
        targetType: 'subscription',
        targetId: o.id,
        data: { by: sub.id, keys: keys.length, via: 'stripe_webhook' },
      },
    });
  }
}

/**
 * Builds the handler for `POST /webhooks/stripe` (worker or console: give it the raw body).
 *
 * - The signature is checked on the raw bytes with the SDK; a bad or stale one is a 400.
 * - Each event id is applied once: its row is inserted, applied and marked processed in one
 *   transaction, so a replay answers 200 and changes nothing, and a failure rolls back and
 *   answers 500 for Stripe to redeliver.
 * - Subscription state follows the newest event by Stripe's `created` time
 *   (Subscription.stripeStateAt): an older event arriving late is recorded and ignored.
 * - A state change republishes the subscription's keys through the outbox in the same
 *   transaction, which suspends or restores them on every gateway.
 */
export function createStripeWebhookHandler(opts: StripeWebhookOptions) {
  const verifier = createWebhookVerifier();
  const report = opts.onResult ?? (() => {});

  return async function handleStripeWebhook(rawBody: Buffer | string, signature: string | undefined): Promise<WebhookResult> {
    if (!signature) {
      report('bad_signature');
      return { status: 400, body: errorBody('bad_request', 'missing Stripe-Signature header') };
    }
    let event: Stripe.Event;
    try {
      event = verifier.webhooks.constructEvent(rawBody, signature, opts.webhookSecret, opts.toleranceSeconds ?? 300);
    } catch (err) {
      report('bad_signature');
      opts.logger.warn({ err: (err as Error).message }, 'stripe webhook refused: signature');
      return { status: 400, body: errorBody('bad_request', 'invalid Stripe signature or timestamp') };
    }
    try {
      const outcome = await opts.db.$transaction(async (tx) => {
        await tx.stripeWebhookEvent.createMany({
          data: [
            {
              id: event.id,
              type: event.type,
              account: event.account ?? null,
              createdAt: new Date(event.created * 1000),
              payload: event as unknown as Prisma.InputJsonValue,
            },
          ],
          skipDuplicates: true,
        });
        const [row] = await tx.$queryRaw<
          Array<{ processedAt: Date | null }>
        >`SELECT "processedAt" FROM "StripeWebhookEvent" WHERE "id" = ${event.id} FOR UPDATE`;
        if (row?.processedAt) return 'duplicate' as const;
        const applied = await applyEvent(tx, event);
        await tx.stripeWebhookEvent.update({ where: { id: event.id }, data: { processedAt: new Date() } });
        return applied;
      });
      report(outcome, event.type);
      opts.logger.info({ eventId: event.id, type: event.type, outcome }, 'stripe webhook');
      return { status: 200, body: { received: true, outcome } };
    } catch (err) {
      report('error', event.type);
      opts.logger.error({ eventId: event.id, type: event.type, err }, 'stripe webhook failed; Stripe will redeliver');
      return { status: 500, body: errorBody('internal', 'webhook processing failed') };
    }
  };
}

async function findSubscription(tx: Tx, stripeSubscriptionId: string | null, tollgateId: string | undefined) {
  if (stripeSubscriptionId) {
    const s = await tx.subscription.findUnique({ where: { stripeSubscriptionId } });
    if (s) return s;
  }
  if (tollgateId) return tx.subscription.findUnique({ where: { id: tollgateId } });
  return null;
}

async function applyEvent(tx: Tx, event: Stripe.Event): Promise<'applied' | 'ignored' | 'stale'> {
  const at = new Date(event.created * 1000);
  switch (event.type) {
    case 'checkout.session.completed': {
      const s = event.data.object;
      const subId = s.metadata?.tollgate_subscription_id ?? s.client_reference_id ?? undefined;
      const stripeSubId = typeof s.subscription === 'string' ? s.subscription : (s.subscription?.id ?? null);
      const sub = subId ? await tx.subscription.findUnique({ where: { id: subId } }) : null;
      if (!sub) return 'ignored';
      await tx.subscription.update({
        where: { id: sub.id },
        data: { stripeSubscriptionId: stripeSubId ?? sub.stripeSubscriptionId, stripeCheckoutSessionId: s.id },
      });
      const customer = typeof s.customer === 'string' ? s.customer : (s.customer?.id ?? null);
      if (customer)
        await tx.consumer.updateMany({ where: { id: sub.consumerId, stripeCustomerId: null }, data: { stripeCustomerId: customer } });
      return 'applied';
    }
    case 'customer.subscription.created':
    case 'customer.subscription.updated':
    case 'customer.subscription.deleted':
    case 'customer.subscription.paused':
    case 'customer.subscription.resumed': {
      const obj = event.data.object;
      const sub = await findSubscription(tx, obj.id, obj.metadata?.tollgate_subscription_id);
      if (!sub) return 'ignored';
      // Stripe does not deliver in order; the newest event by creation time wins.
      if (sub.stripeStateAt && sub.stripeStateAt.getTime() > at.getTime()) return 'stale';
      const status = event.type === 'customer.subscription.deleted' ? 'CANCELED' : mapStripeStatus(obj.status);
      const item = obj.items?.data?.[0];
      const data: Prisma.SubscriptionUpdateInput = {
        status,
        stripeStateAt: at,
        stripeSubscriptionId: obj.id,
        cancelAtPeriodEnd: obj.cancel_at_period_end ?? false,
        canceledAt: obj.canceled_at ? new Date(obj.canceled_at * 1000) : status === 'CANCELED' ? at : null,
        trialEndsAt: obj.trial_end ? new Date(obj.trial_end * 1000) : null,
      };
      const metered = obj.items?.data?.find((i) => i.price?.recurring?.usage_type === 'metered') ?? item;
      if (metered?.id) data.stripeSubscriptionItemId = metered.id;
      if (item?.current_period_start && item.current_period_end) {
        data.currentPeriodStart = new Date(item.current_period_start * 1000);
        data.currentPeriodEnd = new Date(item.current_period_end * 1000);
      }
      await tx.subscription.update({ where: { id: sub.id }, data });
      if (status !== sub.status || data.currentPeriodStart) await enqueueSubscriptionKeysPublish(tx, sub.id);
      if (LIVE.has(status)) await settleReplacedSubscriptions(tx, sub);
      return 'applied';
    }
    case 'invoice.finalized':
    case 'invoice.paid':
    case 'invoice.payment_failed':
    case 'invoice.voided': {
      const inv = event.data.object;
      const parent = inv.parent?.subscription_details?.subscription;
      const stripeSubId = typeof parent === 'string' ? parent : (parent?.id ?? null);
      const sub = await findSubscription(tx, stripeSubId, inv.parent?.subscription_details?.metadata?.tollgate_subscription_id);
      if (!sub || !inv.id) return 'ignored';
      const fields = {
        status: inv.status ?? 'open',
        number: inv.number ?? null,
        totalMinor: BigInt(inv.total ?? 0),
        hostedUrl: inv.hosted_invoice_url ?? null,
        lines: (inv.lines?.data ?? []).map((l) => ({
          description: l.description,
          amount: l.amount,
          quantity: l.quantity,
        })) as Prisma.InputJsonValue,
      };
      // Invoice events arrive out of order too: a settled invoice never goes back to open.
      const existing = await tx.invoice.findUnique({ where: { stripeInvoiceId: inv.id }, select: { status: true } });
      if (existing && SETTLED.has(existing.status) && !SETTLED.has(fields.status)) return 'stale';
      await tx.invoice.upsert({
        where: { stripeInvoiceId: inv.id },
        create: {
          id: newId('invoice'),
          tenantId: sub.tenantId,
          subscriptionId: sub.id,
          stripeInvoiceId: inv.id,
          periodStart: new Date(inv.period_start * 1000),
          periodEnd: new Date(inv.period_end * 1000),
          currency: inv.currency,
          ...fields,
        },
        update: fields,
      });
      return 'applied';
    }
    default:
      return 'ignored';
  }
}
