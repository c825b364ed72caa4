import type Stripe from 'stripe';
import { enqueueSubscriptionKeysPublish, newId, type Db } from '@tollgate/db';
import { BillingInputError, StripeNotConfiguredError, syncPlanToStripe } from './catalog';
import { withStripeRetry, type RetryOptions } from './retry';
import { reportMeterUsage } from './meter-report';
import { createLogger, type Logger } from '@tollgate/config';

const onAccount = (acct: string | null | undefined, idempotencyKey?: string): Stripe.RequestOptions => ({
  ...(acct ? { stripeAccount: acct } : {}),
  ...(idempotencyKey ? { idempotencyKey } : {}),
});

/**
 * Cancels a developer's paid subscription on Stripe, at the period's end by default (keys keep
 * working until then) or now. Our state follows from the `customer.subscription.*` webhook, so
 * a lost response changes nothing here and the call can simply be repeated.
 */
export async function cancelStripeSubscription(
  db: Db,
  stripe: Stripe | null,
  subscriptionId: string,
  opts: { atPeriodEnd?: boolean; retry?: RetryOptions } = {},
): Promise<void> {
  if (!stripe) throw new StripeNotConfiguredError();
  const sub = await db.subscription.findUnique({
    where: { id: subscriptionId },
    include: { tenant: { select: { stripeAccountId: true } } },
  });
  if (!sub) throw new BillingInputError(`no subscription ${subscriptionId}`);
  if (!sub.stripeSubscriptionId) throw new BillingInputError('this subscription is not billed through Stripe');
  const acct = sub.tenant.stripeAccountId;
  const id = sub.stripeSubscriptionId;
  if (opts.atPeriodEnd ?? true) {
    await withStripeRetry(() => stripe.subscriptions.update(id, { cancel_at_period_end: true }, onAccount(acct)), opts.retry);
  } else {
    await withStripeRetry(() => stripe.subscriptions.cancel(id, {}, onAccount(acct)), opts.retry);
  }
}

/**
 * Moves a subscription to another plan of the same tenant. On Stripe (when the subscription is
 * billed there) the old plan's items are replaced by the new plan's with prorations, which
 * Stripe computes by the second like `previewInvoice`; then, in one transaction, the
 * subscription row points at the new plan and its keys are republished so every gateway
 * enforces the new limits. Moving from an unbilled (free) subscription to a paid plan needs a
 * payment method: use `createCheckoutSession` instead.
 *
 * Usage so far belongs to the old plan: before its price leaves the subscription, everything the
 * ledger holds for it — the running hour included — is reported to the old plan's meter. If that
 * fails the plan is not changed (a report left pending would otherwise be re-sent to the new
 * plan's meter); usage after the change goes to the new plan's meter as deltas.
 */
export async function changeSubscriptionPlan(
  db: Db,
  stripe: Stripe | null,
  subscriptionId: string,
  newPlanId: string,
  opts: { retry?: RetryOptions; logger?: Logger } = {},
): Promise<void> {
  const sub = await db.subscription.findUnique({
    where: { id: subscriptionId },
    include: { tenant: { select: { stripeAccountId: true } } },
  });
  if (!sub) throw new BillingInputError(`no subscription ${subscriptionId}`);
  const plan = await db.plan.findUnique({ where: { id: newPlanId } });
  if (!plan || plan.tenantId !== sub.tenantId) throw new BillingInputError(`no plan ${newPlanId} in this tenant`);
  if (plan.id === sub.planId) return;
  const paid = plan.flatFeeMinor > 0 || plan.overageUnitPriceMinor > 0 || plan.tiers !== null;

  if (sub.stripeSubscriptionId) {
    if (!stripe) throw new StripeNotConfiguredError();
    const acct = sub.tenant.stripeAccountId;
    const stripeSubId = sub.stripeSubscriptionId;
    const closed = await reportMeterUsage({
      db,
      stripe,
      logger: opts.logger ?? createLogger('billing', 'silent'),
      subscriptionId: sub.id,
      throughNow: true,
      retry: opts.retry,
    });
    if (closed.failed > 0) throw new Error('usage on the current plan could not be reported to Stripe; the plan was not changed');
    const ids = await syncPlanToStripe(db, stripe, plan.id, opts.retry);
    const current = await withStripeRetry(() => stripe.subscriptions.retrieve(stripeSubId, {}, onAccount(acct)), opts.retry);
    const items: Stripe.SubscriptionUpdateParams.Item[] = current.items.data.map((i) => ({ id: i.id, deleted: true }));
    if (ids.flatPriceId) items.push({ price: ids.flatPriceId, quantity: 1 });
    if (ids.meteredPriceId) items.push({ price: ids.meteredPriceId });
    await withStripeRetry(
      () =>
        stripe.subscriptions.update(
          stripeSubId,
          { items, proration_behavior: 'create_prorations', metadata: { tollgate_plan_id: plan.id } },
          onAccount(acct, `tg-plan-change-${sub.id}-${plan.id}-${sub.updatedAt.getTime()}`),
        ),
      opts.retry,
    );
  } else if (paid) {
    throw new BillingInputError('moving to a paid plan needs checkout (createCheckoutSession)');
  }

  await db.$transaction(async (tx) => {
    // The plan it is on now, under a row lock: a change racing this one is recorded from what it
    // really replaced.
    const [locked] = await tx.$queryRaw<Array<{ planId: string }>>`SELECT "planId" FROM "Subscription" WHERE id = ${sub.id} FOR UPDATE`;
    if (!locked || locked.planId === plan.id) return;
    await tx.subscription.update({ where: { id: sub.id }, data: { planId: plan.id } });
    // Past billing periods are rated at the plan they ran on (console revenue by plan).
    await tx.subscriptionPlanChange.create({
      data: { id: newId('planChange'), tenantId: sub.tenantId, subscriptionId: sub.id, fromPlanId: locked.planId, toPlanId: plan.id },
    });
    await enqueueSubscriptionKeysPublish(tx, sub.id);
  });
}
