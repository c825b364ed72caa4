import Stripe from 'stripe';
import type { Db } from '@tollgate/db';
import { pricingFromPlan } from '../rating';
import { meterEventName } from './meter-report';
import { withStripeRetry, type RetryOptions } from './retry';

export class StripeNotConfiguredError extends Error {
  override name = 'StripeNotConfiguredError';
  constructor() {
    super('Stripe is not configured (no STRIPE_SECRET_KEY)');
  }
}

export class BillingInputError extends Error {
  override name = 'BillingInputError';
}

/** Connect: a tenant with its own Stripe account gets every call made on that account. */
const onAccount = (stripeAccountId: string | null | undefined, idempotencyKey?: string): Stripe.RequestOptions => ({
  ...(stripeAccountId ? { stripeAccount: stripeAccountId } : {}),
  ...(idempotencyKey ? { idempotencyKey } : {}),
});

export type PlanStripeIds = { productId: string; meterId: string | null; flatPriceId: string | null; meteredPriceId: string | null };

/**
 * Creates what Stripe needs to bill a plan: a product, a usage meter (sum of `value` per
 * customer) and prices — a monthly flat price for the fee and a metered price for requests
 * (graduated: the included requests at 0, then the overage price; or the plan's own tiers).
 * Idempotency keys derive from the plan id, so a crashed or concurrent sync creates each object
 * once. Ids are saved on the plan; existing ones are kept.
 */
export async function syncPlanToStripe(db: Db, stripe: Stripe | null, planId: string, retry?: RetryOptions): Promise<PlanStripeIds> {
  if (!stripe) throw new StripeNotConfiguredError();
  const plan = await db.plan.findUnique({ where: { id: planId }, include: { tenant: { select: { stripeAccountId: true } } } });
  if (!plan) throw new BillingInputError(`no plan ${planId}`);
  const pricing = pricingFromPlan(plan);
  const acct = plan.tenant.stripeAccountId;
  const call = <T>(fn: () => Promise<T>) => withStripeRetry(fn, retry);

  const productId =
    plan.stripeProductId ??
    (
      await call(() =>
        stripe.products.create(
          { name: plan.name, metadata: { tollgate_plan_id: plan.id, tollgate_tenant_id: plan.tenantId } },
          onAccount(acct, `tg-product-${plan.id}`),
        ),
      )
    ).id;

  const metered = pricing.tiers !== null || pricing.overageUnitPriceMinor > 0n;
  let meterId = plan.stripeMeterId;
  if (!meterId && metered) {
    meterId = (
      await call(() =>
        stripe.billing.meters.create(
          {
            display_name: `${plan.name} requests`,
            event_name: meterEventName(plan.id),
            default_aggregation: { formula: 'sum' },
            customer_mapping: { event_payload_key: 'stripe_customer_id', type: 'by_id' },
            value_settings: { event_payload_key: 'value' },
          },
          onAccount(acct, `tg-meter-${plan.id}`),
        ),
      )
    ).id;
  }

  let flatPriceId = plan.stripeFlatPriceId;
  if (!flatPriceId && pricing.flatFeeMinor > 0n) {
    flatPriceId = (
      await call(() =>
        stripe.prices.create(
          {
            product: productId,
            currency: plan.currency,
            unit_amount: Number(pricing.flatFeeMinor),
            recurring: { interval: 'month', usage_type: 'licensed' },
            metadata: { tollgate_plan_id: plan.id },
          },
          onAccount(acct, `tg-price-flat-${plan.id}`),
        ),
      )
    ).id;
  }

  let meteredPriceId = plan.stripeMeteredPriceId;
  if (!meteredPriceId && metered && meterId) {
    const recurring: Stripe.PriceCreateParams.Recurring = { interval: 'month', usage_type: 'metered', meter: meterId };
    let params: Stripe.PriceCreateParams;
    if (pricing.tiers) {
      // Stripe's tiers count from the first request; ours count after the included ones.
      const shift = Number(pricing.includedRequests);
      const tiers: Stripe.PriceCreateParams.Tier[] = [];
      if (shift > 0) tiers.push({ up_to: shift, unit_amount: 0 });
      for (const t of pricing.tiers)
        tiers.push({
          up_to: t.upTo === null ? 'inf' : t.upTo + shift,
          unit_amount: t.unitPriceMinor,
          ...(t.flatMinor ? { flat_amount: t.flatMinor } : {}),
        });
      params = { product: productId, currency: plan.currency, recurring, billing_scheme: 'tiered', tiers_mode: 'graduated', tiers };
    } else if (pricing.includedRequests > 0n) {
      // Per-block overage after an allowance has no exact Stripe price; the block is priced per
      // request (unit price / block size, in decimal) and the invoice preview stays the reference.
      const unit = pricing.overageBlockSize > 1n ? undefined : Number(pricing.overageUnitPriceMinor);
      const decimal =
        pricing.overageBlockSize > 1n
          ? Stripe.Decimal.from((Number(pricing.overageUnitPriceMinor) / Number(pricing.overageBlockSize)).toFixed(12))
          : undefined;
      params = {
        product: productId,
        currency: plan.currency,
        recurring,
        billing_scheme: 'tiered',
        tiers_mode: 'graduated',
        tiers: [
          { up_to: Number(pricing.includedRequests), unit_amount: 0 },
          { up_to: 'inf', ...(unit !== undefined ? { unit_amount: unit } : { unit_amount_decimal: decimal! }) },
        ],
      };
    } else if (pricing.overageBlockSize > 1n) {
      params = {
        product: productId,
        currency: plan.currency,
        recurring,
        unit_amount: Number(pricing.overageUnitPriceMinor),
        transform_quantity: { divide_by: Number(pricing.overageBlockSize), round: 'up' },
      };
    } else {
      params = { product: productId, currency: plan.currency, recurring, unit_amount: Number(pricing.overageUnitPriceMinor) };
    }
    meteredPriceId = (
      await call(() =>
        stripe.prices.create({ ...params, metadata: { tollgate_plan_id: plan.id } }, onAccount(acct, `tg-price-metered-${plan.id}`)),
      )
    ).id;
  }

  await db.plan.update({
    where: { id: plan.id },
    data: { stripeProductId: productId, stripeMeterId: meterId, stripeFlatPriceId: flatPriceId, stripeMeteredPriceId: meteredPriceId },
  });
  return { productId, meterId, flatPriceId, meteredPriceId };
}

/** The consumer's Stripe customer (on the tenant's account), created once. */
export async function ensureStripeCustomer(db: Db, stripe: Stripe | null, consumerId: string, retry?: RetryOptions): Promise<string> {
  if (!stripe) throw new StripeNotConfiguredError();
  const consumer = await db.consumer.findUnique({ where: { id: consumerId }, include: { tenant: { select: { stripeAccountId: true } } } });
  if (!consumer) throw new BillingInputError(`no consumer ${consumerId}`);
  if (consumer.stripeCustomerId) return consumer.stripeCustomerId;
  const customer = await withStripeRetry(
    () =>
      stripe.customers.create(
        {
          email: consumer.email,
          name: consumer.name,
          metadata: { tollgate_consumer_id: consumer.id, tollgate_tenant_id: consumer.tenantId },
        },
        onAccount(consumer.tenant.stripeAccountId, `tg-customer-${consumer.id}`),
      ),
    retry,
  );
  // Two concurrent callers got the same customer (same idempotency key); either write is right.
  await db.consumer.update({ where: { id: consumer.id }, data: { stripeCustomerId: customer.id } });
  return customer.id;
}

export type CheckoutInput = { subscriptionId: string; successUrl: string; cancelUrl: string };
export type CheckoutSession = { id: string; url: string | null };

/**
 * Starts Stripe Checkout for a paid plan. The console creates the Subscription row first
 * (status INCOMPLETE), then sends the developer to `url`; the `checkout.session.completed` and
 * `customer.subscription.*` webhooks link and activate it. Free plans need no checkout.
 */
export async function createCheckoutSession(
  db: Db,
  stripe: Stripe | null,
  input: CheckoutInput,
  retry?: RetryOptions,
): Promise<CheckoutSession> {
  if (!stripe) throw new StripeNotConfiguredError();
  const sub = await db.subscription.findUnique({
    where: { id: input.subscriptionId },
    include: { plan: true, tenant: { select: { stripeAccountId: true } } },
  });
  if (!sub) throw new BillingInputError(`no subscription ${input.subscriptionId}`);
  const ids = await syncPlanToStripe(db, stripe, sub.planId, retry);
  if (!ids.flatPriceId && !ids.meteredPriceId) throw new BillingInputError('a free plan needs no checkout');
  const customer = await ensureStripeCustomer(db, stripe, sub.consumerId, retry);
  const lineItems: Stripe.Checkout.SessionCreateParams.LineItem[] = [];
  if (ids.flatPriceId) lineItems.push({ price: ids.flatPriceId, quantity: 1 });
  if (ids.meteredPriceId) lineItems.push({ price: ids.meteredPriceId });
  const metadata = { tollgate_subscription_id: sub.id, tollgate_tenant_id: sub.tenantId };
  const session = await withStripeRetry(
    () =>
      stripe.checkout.sessions.create(
        {
          mode: 'subscription',
          customer,
          client_reference_id: sub.id,
          line_items: lineItems,
          success_url: input.successUrl,
          cancel_url: input.cancelUrl,
          metadata,
          subscription_data: { metadata, ...(sub.plan.trialDays > 0 ? { trial_period_days: sub.plan.trialDays } : {}) },
        },
        onAccount(sub.tenant.stripeAccountId, `tg-checkout-${sub.id}-${sub.updatedAt.getTime()}`),
      ),
    retry,
  );
  await db.subscription.update({ where: { id: sub.id }, data: { stripeCheckoutSessionId: session.id } });
  return { id: session.id, url: session.url };
}
