import type { Db } from '@tollgate/db';
import { billingPeriodAt, type Period } from './period';
import { previewInvoice, pricingFromPlan, type InvoicePreview, type PlanChange } from './rating';
import { BillingInputError } from './stripe/catalog';

/**
 * The invoice a subscription would get for a period (the current one by default), from the
 * ledger — works the same with Stripe off. Plan changes inside the period are passed in by the
 * caller that knows them (the console's plan-change history).
 */
export async function previewSubscriptionInvoice(
  db: Db,
  subscriptionId: string,
  opts: { at?: Date; period?: Period; planChanges?: PlanChange[] } = {},
): Promise<InvoicePreview> {
  const sub = await db.subscription.findUnique({ where: { id: subscriptionId }, include: { plan: true } });
  if (!sub) throw new BillingInputError(`no subscription ${subscriptionId}`);
  const period = opts.period ?? billingPeriodAt(sub.currentPeriodStart, opts.at ?? new Date());
  const usage = await db.ledgerLine.aggregate({
    // The ledger files each hour under the period its start falls in; match that exactly.
    where: opts.period
      ? { subscriptionId, kind: 'USAGE', hourStart: { gte: period.start, lt: period.end } }
      : { subscriptionId, kind: 'USAGE', periodStart: period.start },
    _sum: { quantity: true },
  });
  return previewInvoice({ id: sub.id, planChanges: opts.planChanges ?? [] }, pricingFromPlan(sub.plan), usage._sum.quantity ?? 0n, period);
}
