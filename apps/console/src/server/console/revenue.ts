// Billing analytics for the console: quota use of live subscriptions and revenue by plan.
import { billingPeriodAt, previewInvoice, pricingFromPlan } from '@tollgate/billing';
import { requirePermission, type ServiceContext } from '../shared/context';
import { resolveWindow, UsageQuery } from '../shared/usage-query';
import { parseInput } from '../shared/validation';

const n = (v: unknown) => Number(v ?? 0);

/** Quota use of each live subscription in its current period, and billed revenue by plan. */
export async function queryBilling(ctx: ServiceContext, input: unknown) {
  requirePermission(ctx, 'read');
  const q = parseInput(UsageQuery, input ?? {});
  const { from, to } = resolveWindow(q);
  const [quota, revenue] = await Promise.all([
    ctx.db.$queryRaw<Array<{ id: string; consumer: string; plan: string; quota: number | null; used: unknown }>>`
      SELECT s.id, c.email AS consumer, p.name AS plan, p."monthlyQuota" AS quota, COALESCE(sum(l.quantity), 0) AS used
      FROM "Subscription" s JOIN "Consumer" c ON c.id = s."consumerId" JOIN "Plan" p ON p.id = s."planId"
      LEFT JOIN "LedgerLine" l ON l."subscriptionId" = s.id AND l.kind = 'USAGE' AND l."periodStart" = s."currentPeriodStart"
      WHERE s."tenantId" = ${ctx.tenantId} AND s.status IN ('ACTIVE', 'TRIALING', 'PAST_DUE')
      GROUP BY s.id, c.email, p.name, p."monthlyQuota" ORDER BY used DESC LIMIT 50`,
    revenueByPlan(ctx, from, to),
  ]);
  return {
    quota: quota.map((r) => ({ subscriptionId: r.id, consumer: r.consumer, plan: r.plan, quota: r.quota, used: n(r.used) })),
    revenue,
  };
}

/**
 * Revenue by plan for [from, to). Rating is per billing period (included requests, blocks,
 * tiers, flat fee), so an hour's usage has no price of its own and LedgerLine.amountMinor stays
 * unused. Instead every billing period of a subscription that overlaps the range (and in which
 * the subscription existed) is rated whole with the same pure previewInvoice the invoice preview
 * uses: flat fee plus the period's usage from the ledger. The current period counts as billed so
 * far. Each period is rated at the plans it ran on (SubscriptionPlanChange): a change inside a
 * period splits it as Stripe's prorations do, each part's amount going to its own plan, with the
 * usage of the hours that started before the change on the old plan. Subscriptions that never
 * activated (INCOMPLETE) earn nothing.
 */
async function revenueByPlan(ctx: ServiceContext, from: Date, to: Date) {
  const subs = await ctx.db.subscription.findMany({
    where: {
      tenantId: ctx.tenantId,
      status: { not: 'INCOMPLETE' },
      createdAt: { lt: to },
      currentPeriodEnd: { gt: from },
      OR: [{ canceledAt: null }, { canceledAt: { gt: from } }],
    },
    select: {
      id: true,
      createdAt: true,
      canceledAt: true,
      currentPeriodStart: true,
      currentPeriodEnd: true,
      plan: true,
      planChanges: { orderBy: { changedAt: 'asc' }, select: { changedAt: true, fromPlanId: true, toPlanId: true } },
    },
  });
  if (!subs.length) return [];
  // Periods of interest start at most one period before `from` (≤ 31 days) and before `to`.
  const since = new Date(from.getTime() - 32 * 86_400_000);
  const ids = subs.map((s) => s.id);
  const anyChanges = subs.some((s) => s.planChanges.length > 0);
  const [usage, hourly, pastPlans] = await Promise.all([
    ctx.db.ledgerLine.groupBy({
      by: ['subscriptionId', 'periodStart'],
      where: { tenantId: ctx.tenantId, kind: 'USAGE', subscriptionId: { in: ids }, periodStart: { gte: since, lt: to } },
      _sum: { quantity: true },
    }),
    // Hour by hour only where a plan change splits a period.
    anyChanges
      ? ctx.db.ledgerLine.findMany({
          where: {
            tenantId: ctx.tenantId,
            kind: 'USAGE',
            subscriptionId: { in: subs.filter((s) => s.planChanges.length > 0).map((s) => s.id) },
            periodStart: { gte: since, lt: to },
          },
          select: { subscriptionId: true, periodStart: true, hourStart: true, quantity: true },
        })
      : [],
    anyChanges
      ? ctx.db.plan.findMany({
          where: {
            tenantId: ctx.tenantId,
            id: { in: [...new Set(subs.flatMap((s) => s.planChanges.flatMap((c) => [c.fromPlanId, c.toPlanId])))] },
          },
        })
      : [],
  ]);
  const used = new Map(usage.map((u) => [`${u.subscriptionId}\u0000${u.periodStart.getTime()}`, u._sum.quantity ?? 0n]));
  const plans = new Map(pastPlans.map((p) => [p.id, p]));
  for (const s of subs) plans.set(s.plan.id, s.plan);
  const pricings = new Map<string, ReturnType<typeof pricingFromPlan>>();
  const pricing = (planId: string) => {
    let p = pricings.get(planId);
    if (!p) pricings.set(planId, (p = pricingFromPlan(plans.get(planId)!)));
    return p;
  };
  const hoursBySub = new Map<string, Array<{ periodStart: Date; hourStart: Date; quantity: bigint }>>();
  for (const l of hourly) {
    const list = hoursBySub.get(l.subscriptionId);
    if (list) list.push(l);
    else hoursBySub.set(l.subscriptionId, [l]);
  }
  const byPlan = new Map<string, { plan: string; currency: string; amountMinor: bigint; quantity: bigint }>();
  const add = (planId: string, amountMinor: bigint, quantity: bigint) => {
    const plan = plans.get(planId)!;
    const row = byPlan.get(plan.id) ?? { plan: plan.name, currency: plan.currency, amountMinor: 0n, quantity: 0n };
    row.amountMinor += amountMinor;
    row.quantity += quantity;
    byPlan.set(plan.id, row);
  };
  for (const s of subs) {
    const changes = s.planChanges;
    /** The plan in effect at `at`: the last change at or before it, else the plan before the first change. */
    const planAt = (at: number) => {
      let id = changes.length ? changes[0]!.fromPlanId : s.plan.id;
      for (const c of changes) if (c.changedAt.getTime() <= at) id = c.toPlanId;
      return plans.has(id) ? id : s.plan.id;
    };
    // Periods are anchored on currentPeriodStart. A paid subscription's row is created at
    // Checkout, a little before Stripe starts (and anchors) it: the anchored period holding
    // createdAt then ends moments later and was never billed, so it starts with the next one.
    const created = billingPeriodAt(s.currentPeriodStart, s.createdAt);
    const firstStart = created.end.getTime() - s.createdAt.getTime() < 86_400_000 ? created.end : created.start;
    const end = Math.min(to.getTime(), s.currentPeriodEnd.getTime(), s.canceledAt?.getTime() ?? Infinity);
    const hours = hoursBySub.get(s.id) ?? [];
    let period = billingPeriodAt(s.currentPeriodStart, new Date(Math.max(from.getTime(), firstStart.getTime())));
    while (period.start.getTime() < end) {
      const requests = used.get(`${s.id}\u0000${period.start.getTime()}`) ?? 0n;
      const lastPlan = planAt(period.end.getTime() - 1);
      const inside = changes.filter((c) => c.changedAt > period.start && c.changedAt < period.end);
      const split = inside.map((c) => ({
        at: c.changedAt,
        from: pricing(planAt(c.changedAt.getTime() - 1)),
        usageBefore: hours.reduce(
          (sum, l) => (l.periodStart.getTime() === period.start.getTime() && l.hourStart < c.changedAt ? sum + l.quantity : sum),
          0n,
        ),
      }));
      let bill: ReturnType<typeof previewInvoice>;
      try {
        bill = previewInvoice({ id: s.id, planChanges: split }, pricing(lastPlan), requests, period);
      } catch {
        // A change the rating can't split (another currency): the period goes whole to the plan it ended on.
        bill = previewInvoice({ id: s.id }, pricing(lastPlan), requests, period);
      }
      for (const line of bill.lines) add(planAt(line.from.getTime()), line.amountMinor, line.kind === 'usage' ? line.quantity : 0n);
      period = billingPeriodAt(s.currentPeriodStart, period.end);
    }
  }
  return [...byPlan.values()]
    .sort((x, y) => (y.amountMinor > x.amountMinor ? 1 : y.amountMinor < x.amountMinor ? -1 : 0))
    .map((r) => ({ plan: r.plan, currency: r.currency, amountMinor: Number(r.amountMinor), quantity: Number(r.quantity) }));
}
