import { z } from 'zod';
import { enqueueKeyPublish, newId, type Prisma } from '@tollgate/db';
import {
  addAnchoredMonths,
  BillingInputError,
  cancelStripeSubscription,
  changeSubscriptionPlan,
  createCheckoutSession,
  previewSubscriptionInvoice,
  StripeNotConfiguredError,
} from '@tollgate/billing';
import { notFound, ServiceError } from '../shared/context';
import { Id, parseInput } from '../shared/validation';
import { isPaidPlan } from './catalog';
import { developerActor, portalUrlOf, type DeveloperContext, type PortalDeps } from './context';
import { recordAudit } from '../shared/audit';

export const LIVE_STATUSES = ['ACTIVE', 'TRIALING', 'PAST_DUE'] as const;
export const SubscribeInput = z.object({ planId: Id('pln') }).strict();

type Tx = Prisma.TransactionClient;

function audit(tx: Prisma.TransactionClient, dev: DeveloperContext, action: string, id: string, data?: Record<string, unknown>) {
  return recordAudit(tx, developerActor(dev), action, { type: 'subscription', id }, data);
}

export function requireApproved(dev: DeveloperContext): void {
  if (dev.status === 'PENDING')
    throw new ServiceError(
      'forbidden',
      `your account is waiting for approval by ${dev.tenant.name}; you'll be able to subscribe and create keys once approved`,
    );
  if (dev.status !== 'ACTIVE') throw new ServiceError('forbidden', 'this account is suspended');
}

/** The developer's current subscription (newest live one) with its plan; null when none. */
export async function currentSubscription(dev: DeveloperContext) {
  return dev.db.subscription.findFirst({
    where: { tenantId: dev.tenant.id, consumerId: dev.consumerId, status: { in: [...LIVE_STATUSES] } },
    orderBy: { createdAt: 'desc' },
    include: { plan: true },
  });
}

/** A paid plan bought through Checkout and not yet confirmed by Stripe's webhook. */
export async function pendingSubscription(dev: DeveloperContext) {
  return dev.db.subscription.findFirst({
    where: { tenantId: dev.tenant.id, consumerId: dev.consumerId, status: 'INCOMPLETE' },
    orderBy: { createdAt: 'desc' },
    include: { plan: { select: { id: true, name: true } } },
  });
}

/** Moves every key of `fromId` to `toId` and ends `fromId`, republishing the keys. */
async function replaceSubscription(tx: Tx, dev: DeveloperContext, fromId: string, toId: string) {
  const keys = await tx.apiKey.findMany({ where: { subscriptionId: fromId, consumerId: dev.consumerId }, select: { id: true } });
  await tx.apiKey.updateMany({ where: { subscriptionId: fromId, consumerId: dev.consumerId }, data: { subscriptionId: toId } });
  await tx.subscription.update({ where: { id: fromId }, data: { status: 'CANCELED', canceledAt: new Date() } });
  for (const k of keys) await enqueueKeyPublish(tx, k.id);
  await audit(tx, dev, 'subscription.replaced', fromId, { by: toId, keys: keys.length });
}

/**
 * A paid plan becomes live when Stripe's webhook activates it; the webhook handler (in
 * @tollgate/billing) then already moves the keys off an older free subscription and ends it.
 * This is the idempotent fallback for what it leaves: the developer holding two live
 * subscriptions where the older one is paid (it must be canceled in Stripe, which the webhook
 * transaction cannot do). The newest wins, the older one's keys move to it and the older one
 * ends. Run on every signed-in portal request and after Checkout.
 */
export async function settleSubscriptions(deps: Pick<PortalDeps, 'stripe' | 'log'>, dev: DeveloperContext): Promise<number> {
  const live = await dev.db.subscription.findMany({
    where: { tenantId: dev.tenant.id, consumerId: dev.consumerId, status: { in: [...LIVE_STATUSES] } },
    orderBy: { createdAt: 'desc' },
    select: { id: true, stripeSubscriptionId: true },
  });
  if (live.length < 2) return 0;
  const [newest, ...older] = live;
  await dev.db.$transaction(async (tx) => {
    for (const o of older) await replaceSubscription(tx, dev, o.id, newest!.id);
  });
  // Best effort: the replaced plan stops billing; a failure is logged for reconciliation rather
  // than breaking the page that triggered the settle.
  for (const o of older) {
    if (o.stripeSubscriptionId) await cancelInStripe(deps, dev, o.id, true).catch(() => undefined);
  }
  return older.length;
}

async function cancelInStripe(deps: Pick<PortalDeps, 'stripe' | 'log'>, dev: DeveloperContext, subscriptionId: string, now: boolean) {
  try {
    await cancelStripeSubscription(dev.db, deps.stripe, subscriptionId, { atPeriodEnd: !now });
  } catch (err) {
    deps.log.error({ err: (err as Error).message, subscriptionId }, 'stripe cancel failed');
    throw new ServiceError('unavailable', 'the payment provider did not answer; nothing was changed, try again');
  }
}

export type SubscribeResult = { kind: 'active'; subscriptionId: string } | { kind: 'checkout'; subscriptionId: string; url: string };

/**
 * Subscribes to or switches to a public plan.
 * - free: instant; keys of the previous plan move to the new subscription.
 * - paid, from no plan or a free one: a Checkout session; live on Stripe's webhook (then settled).
 * - paid to paid (a Stripe subscription exists): the Stripe subscription's prices are swapped
 *   with proration, and the plan changes here at once.
 */
export async function subscribeToPlan(deps: PortalDeps, dev: DeveloperContext, input: unknown): Promise<SubscribeResult> {
  requireApproved(dev);
  const { planId } = parseInput(SubscribeInput, input);
  const plan = await dev.db.plan.findFirst({ where: { id: planId, tenantId: dev.tenant.id, public: true, status: 'ACTIVE' } });
  if (!plan) throw notFound('plan');
  const current = await currentSubscription(dev);
  if (current?.planId === plan.id) throw new ServiceError('conflict', `you are already on the ${plan.name} plan`);
  const now = new Date();

  if (!isPaidPlan(plan)) {
    if (current?.stripeSubscriptionId) await cancelInStripe(deps, dev, current.id, true);
    const id = newId('subscription');
    await dev.db.$transaction(async (tx) => {
      await tx.subscription.create({
        data: {
          id,
          tenantId: dev.tenant.id,
          consumerId: dev.consumerId,
          planId: plan.id,
          status: 'ACTIVE',
          currentPeriodStart: now,
          currentPeriodEnd: addAnchoredMonths(now, 1),
        },
      });
      if (current) await replaceSubscription(tx, dev, current.id, id);
      await audit(tx, dev, 'subscription.created', id, { planId: plan.id });
    });
    return { kind: 'active', subscriptionId: id };
  }

  if (!deps.stripe) throw new ServiceError('unavailable', 'paid plans are not available yet: the API owner has not set up payments');
  const stripe = deps.stripe;

  if (current?.stripeSubscriptionId && isPaidPlan(current.plan)) {
    // Paid to paid: Stripe swaps the prices with prorations; the plan and keys switch here at once.
    try {
      await changeSubscriptionPlan(dev.db, stripe, current.id, plan.id);
    } catch (err) {
      deps.log.error({ err: (err as Error).message }, 'stripe plan change failed');
      throw new ServiceError('unavailable', 'the payment provider did not answer; your plan was not changed, try again');
    }
    await dev.db.$transaction((tx) =>
      audit(tx, dev, 'subscription.plan_changed', current.id, { from: current.planId, to: plan.id, proration: true }),
    );
    return { kind: 'active', subscriptionId: current.id };
  }

  const id = newId('subscription');
  await dev.db.$transaction(async (tx) => {
    // An abandoned Checkout leaves an INCOMPLETE row; a new attempt supersedes it.
    await tx.subscription.updateMany({
      where: { tenantId: dev.tenant.id, consumerId: dev.consumerId, status: 'INCOMPLETE' },
      data: { status: 'CANCELED', canceledAt: now },
    });
    await tx.subscription.create({
      data: {
        id,
        tenantId: dev.tenant.id,
        consumerId: dev.consumerId,
        planId: plan.id,
        status: 'INCOMPLETE',
        currentPeriodStart: now,
        currentPeriodEnd: addAnchoredMonths(now, 1),
      },
    });
    await audit(tx, dev, 'subscription.checkout_started', id, { planId: plan.id });
  });
  const base = portalUrlOf(deps, dev.tenant);
  try {
    const session = await createCheckoutSession(dev.db, stripe, {
      subscriptionId: id,
      successUrl: `${base}/billing?checkout=success`,
      cancelUrl: `${base}/pricing?checkout=canceled`,
    });
    if (!session.url) throw new BillingInputError('checkout session without a URL');
    return { kind: 'checkout', subscriptionId: id, url: session.url };
  } catch (err) {
    if (err instanceof StripeNotConfiguredError) throw new ServiceError('unavailable', 'payments are not configured');
    deps.log.error({ err: (err as Error).message, subscriptionId: id }, 'checkout session failed');
    await dev.db.subscription.update({ where: { id }, data: { status: 'CANCELED', canceledAt: new Date() } });
    throw new ServiceError('unavailable', 'the payment provider did not answer; nothing was charged, try again');
  }
}

/** Free (or Stripe-less) plans end now; a paid Stripe plan ends at the period's end. */
export async function cancelSubscription(deps: PortalDeps, dev: DeveloperContext) {
  const current = await currentSubscription(dev);
  if (!current) throw new ServiceError('conflict', 'you have no active plan to cancel');
  if (current.stripeSubscriptionId && deps.stripe) {
    await cancelInStripe(deps, dev, current.id, false);
    await dev.db.$transaction(async (tx) => {
      await tx.subscription.update({ where: { id: current.id }, data: { cancelAtPeriodEnd: true } });
      await audit(tx, dev, 'subscription.cancel_scheduled', current.id);
    });
    return { id: current.id, endsAt: current.currentPeriodEnd, immediate: false };
  }
  await dev.db.$transaction(async (tx) => {
    await tx.subscription.update({ where: { id: current.id }, data: { status: 'CANCELED', canceledAt: new Date() } });
    const keys = await tx.apiKey.findMany({ where: { subscriptionId: current.id }, select: { id: true } });
    for (const k of keys) await enqueueKeyPublish(tx, k.id);
    await audit(tx, dev, 'subscription.canceled', current.id);
  });
  return { id: current.id, endsAt: new Date(), immediate: true };
}

/** Requests billed in the subscription's current period (the ledger the quota and invoice use). */
export async function periodUsage(
  dev: DeveloperContext,
  sub: { id: string; currentPeriodStart: Date; currentPeriodEnd: Date },
): Promise<number> {
  const agg = await dev.db.ledgerLine.aggregate({
    // The ledger files each hour under the period of its first event, so a mid-hour start's first
    // hour is in this period and a renewal hour is counted in one period only.
    where: { subscriptionId: sub.id, tenantId: dev.tenant.id, kind: 'USAGE', periodStart: sub.currentPeriodStart },
    _sum: { quantity: true },
  });
  return Number(agg._sum.quantity ?? 0n);
}

export type QuotaLevel = 'ok' | 'warning' | 'exhausted' | 'unlimited';
export function quotaLevel(used: number, quota: number | null): QuotaLevel {
  if (quota === null) return 'unlimited';
  if (quota === 0 || used >= quota) return 'exhausted';
  return used >= quota * 0.8 ? 'warning' : 'ok';
}

/** The billing page: plan, this period's usage and projected charge, and past invoices. */
export async function billingOverview(dev: DeveloperContext) {
  const [current, pending, invoices] = await Promise.all([
    currentSubscription(dev),
    pendingSubscription(dev),
    dev.db.invoice.findMany({
      where: { tenantId: dev.tenant.id, subscription: { consumerId: dev.consumerId } },
      orderBy: { periodStart: 'desc' },
      take: 24,
      select: {
        id: true,
        number: true,
        periodStart: true,
        periodEnd: true,
        currency: true,
        totalMinor: true,
        status: true,
        hostedUrl: true,
      },
    }),
  ]);
  let period: null | {
    used: number;
    quota: number | null;
    level: QuotaLevel;
    projectedMinor: number;
    currency: string;
    lines: Array<{ description: string; amountMinor: number }>;
  } = null;
  if (current) {
    const used = await periodUsage(dev, current);
    const preview = await previewSubscriptionInvoice(dev.db, current.id, { at: current.currentPeriodStart });
    period = {
      used,
      quota: current.plan.monthlyQuota,
      level: quotaLevel(used, current.plan.monthlyQuota),
      projectedMinor: Number(preview.totalMinor),
      currency: current.plan.currency,
      lines: preview.lines.map((l) => ({ description: l.description, amountMinor: Number(l.amountMinor) })),
    };
  }
  return {
    current: current && {
      id: current.id,
      status: current.status,
      plan: { id: current.plan.id, name: current.plan.name, paid: isPaidPlan(current.plan) },
      currentPeriodStart: current.currentPeriodStart,
      currentPeriodEnd: current.currentPeriodEnd,
      cancelAtPeriodEnd: current.cancelAtPeriodEnd,
    },
    pending: pending && { id: pending.id, plan: pending.plan },
    period,
    invoices: invoices.map((i) => ({ ...i, totalMinor: Number(i.totalMinor) })),
  };
}
