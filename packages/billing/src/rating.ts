import { z } from 'zod';
import { periodSeconds, type Period } from './period';

/**
 * Pure pricing maths. Money is integer minor units (cents) held in BigInt end to end, so no
 * amount is ever a float and no sum can overflow. Rounding happens in exactly two places, both
 * half-up on whole minor units: a prorated flat fee and a prorated included allowance.
 */

/** One graduated tier: units up to `upTo` (cumulative, inclusive; null = no end) cost `unitPriceMinor` each, plus `flatMinor` once the tier is entered. */
export const PriceTier = z.object({
  upTo: z.number().int().positive().nullable(),
  unitPriceMinor: z.number().int().nonnegative(),
  flatMinor: z.number().int().nonnegative().default(0),
});
export type PriceTier = z.infer<typeof PriceTier>;

export const PriceTiers = z
  .array(PriceTier)
  .min(1)
  .superRefine((tiers, ctx) => {
    let last = 0;
    tiers.forEach((t, i) => {
      const isLast = i === tiers.length - 1;
      if (t.upTo === null && !isLast) ctx.addIssue({ code: 'custom', message: 'only the last tier may be open-ended', path: [i, 'upTo'] });
      if (t.upTo !== null && t.upTo <= last) ctx.addIssue({ code: 'custom', message: 'tier bounds must increase', path: [i, 'upTo'] });
      if (t.upTo !== null) last = t.upTo;
    });
    if (tiers[tiers.length - 1]?.upTo !== null) ctx.addIssue({ code: 'custom', message: 'the last tier must be open-ended (upTo: null)' });
  });

/** What rating needs of a plan; `pricingFromPlan` builds it from the database row. */
export type PlanPricing = {
  name?: string;
  currency: string;
  flatFeeMinor: bigint;
  includedRequests: bigint;
  overageUnitPriceMinor: bigint;
  /** Overage is sold in blocks of this many requests; a started block is a whole block. */
  overageBlockSize: bigint;
  /** Graduated tiers over the requests beyond the included ones; replaces the per-unit overage. */
  tiers: PriceTier[] | null;
  /** Requests per period; null = unlimited. With a hard cap nothing past it is billed. */
  monthlyQuota: bigint | null;
  quotaMode: 'HARD_CAP' | 'OVERAGE';
};

type PlanRow = {
  name?: string;
  currency: string;
  flatFeeMinor: number;
  includedRequests: number;
  overageUnitPriceMinor: number;
  overageBlockSize: number;
  tiers: unknown;
  monthlyQuota: number | null;
  quotaMode: 'HARD_CAP' | 'OVERAGE';
};

export class PricingError extends Error {
  override name = 'PricingError';
}

export function pricingFromPlan(plan: PlanRow): PlanPricing {
  if (plan.overageBlockSize < 1) throw new PricingError('overageBlockSize must be at least 1');
  if (plan.flatFeeMinor < 0 || plan.overageUnitPriceMinor < 0 || plan.includedRequests < 0)
    throw new PricingError('prices and allowances cannot be negative');
  let tiers: PriceTier[] | null = null;
  if (plan.tiers !== null && plan.tiers !== undefined) {
    const parsed = PriceTiers.safeParse(plan.tiers);
    if (!parsed.success) throw new PricingError(`invalid tiers: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
    tiers = parsed.data;
  }
  return {
    ...(plan.name !== undefined ? { name: plan.name } : {}),
    currency: plan.currency,
    flatFeeMinor: BigInt(plan.flatFeeMinor),
    includedRequests: BigInt(plan.includedRequests),
    overageUnitPriceMinor: BigInt(plan.overageUnitPriceMinor),
    overageBlockSize: BigInt(plan.overageBlockSize),
    tiers,
    monthlyQuota: plan.monthlyQuota === null ? null : BigInt(plan.monthlyQuota),
    quotaMode: plan.quotaMode,
  };
}

/** a / b rounded half up, for non-negative a and positive b. */
export function divRoundHalfUp(a: bigint, b: bigint): bigint {
  if (b <= 0n) throw new PricingError('division by a non-positive number');
  if (a < 0n) return -divRoundHalfUp(-a, b);
  return (2n * a + b) / (2n * b);
}

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b;
const max = (a: bigint, b: bigint) => (a > b ? a : b);
const min = (a: bigint, b: bigint) => (a < b ? a : b);

/** Price of `units` through graduated tiers. */
export function rateTiers(tiers: PriceTier[], units: bigint): bigint {
  let amount = 0n;
  let floor = 0n;
  for (const t of tiers) {
    if (units <= floor) break;
    const ceiling = t.upTo === null ? units : min(units, BigInt(t.upTo));
    const inTier = ceiling - floor;
    if (inTier > 0n) amount += inTier * BigInt(t.unitPriceMinor) + BigInt(t.flatMinor);
    if (t.upTo === null) break;
    floor = BigInt(t.upTo);
  }
  return amount;
}

export type UsageCharge = {
  /** Requests counted toward billing (after a hard cap). */
  billable: bigint;
  included: bigint;
  overage: bigint;
  /** Blocks charged (per-block pricing) or overage units (per unit / tiers). */
  chargedUnits: bigint;
  amountMinor: bigint;
};

/** The usage part of a bill: what `requests` cost beyond `included` under `plan`. */
export function rateUsage(plan: PlanPricing, requests: bigint, included: bigint = plan.includedRequests): UsageCharge {
  if (requests < 0n) throw new PricingError('usage cannot be negative');
  const billable = plan.quotaMode === 'HARD_CAP' && plan.monthlyQuota !== null ? min(requests, plan.monthlyQuota) : requests;
  const overage = max(0n, billable - included);
  if (plan.tiers) return { billable, included, overage, chargedUnits: overage, amountMinor: rateTiers(plan.tiers, overage) };
  const chargedUnits = plan.overageBlockSize > 1n ? ceilDiv(overage, plan.overageBlockSize) : overage;
  return { billable, included, overage, chargedUnits, amountMinor: chargedUnits * plan.overageUnitPriceMinor };
}

export type InvoiceLine = {
  kind: 'flat_fee' | 'usage';
  description: string;
  from: Date;
  to: Date;
  quantity: bigint;
  amountMinor: bigint;
};

export type InvoicePreview = {
  currency: string;
  period: Period;
  lines: InvoiceLine[];
  totalMinor: bigint;
  /** Requests served in the period (all segments). */
  requests: bigint;
};

/** A plan change inside the period: `from` applied before `at`; `usageBefore` = requests in [period.start, at). */
export type PlanChange = { at: Date; from: PlanPricing; usageBefore: bigint };

export type SubscriptionTerms = { id?: string; planChanges?: PlanChange[] };

/**
 * The invoice for one subscription and period. `plan` is the plan in effect at the period's
 * end and `usage` the period's total requests (from the ledger). A mid-period plan change
 * splits the period at the change: each part pays its plan's flat fee and gets its included
 * requests in proportion to its seconds (half-up to a whole cent / request), and its usage is
 * rated under its own plan.
 */
export function previewInvoice(subscription: SubscriptionTerms, plan: PlanPricing, usage: bigint, period: Period): InvoicePreview {
  const total = periodSeconds(period);
  if (total <= 0n) throw new PricingError('the period must end after it starts');
  const changes = [...(subscription.planChanges ?? [])].sort((a, b) => a.at.getTime() - b.at.getTime());
  for (const c of changes) {
    if (c.at <= period.start || c.at >= period.end) throw new PricingError('a plan change must fall inside the period');
    if (c.from.currency !== plan.currency) throw new PricingError('a plan change cannot change currency');
  }

  const segments: Array<{ plan: PlanPricing; from: Date; to: Date; usage: bigint }> = [];
  let from = period.start;
  let usedBefore = 0n;
  for (const c of changes) {
    if (c.usageBefore < usedBefore) throw new PricingError('usageBefore must not decrease');
    segments.push({ plan: c.from, from, to: c.at, usage: c.usageBefore - usedBefore });
    usedBefore = c.usageBefore;
    from = c.at;
  }
  if (usage < usedBefore) throw new PricingError('usage is less than the usage before a plan change');
  segments.push({ plan, from, to: period.end, usage: usage - usedBefore });

  const lines: InvoiceLine[] = [];
  const whole = segments.length === 1;
  for (const s of segments) {
    const secs = periodSeconds({ start: s.from, end: s.to });
    const label = s.plan.name ? `${s.plan.name}: ` : '';
    const flat = whole ? s.plan.flatFeeMinor : divRoundHalfUp(s.plan.flatFeeMinor * secs, total);
    const included = whole ? s.plan.includedRequests : divRoundHalfUp(s.plan.includedRequests * secs, total);
    if (s.plan.flatFeeMinor > 0n) {
      lines.push({
        kind: 'flat_fee',
        description: `${label}${whole ? 'subscription' : 'subscription (prorated)'}`,
        from: s.from,
        to: s.to,
        quantity: 1n,
        amountMinor: flat,
      });
    }
    const charge = rateUsage(s.plan, s.usage, included);
    lines.push({
      kind: 'usage',
      description: `${label}${s.usage} requests, ${charge.included} included, ${charge.overage} over`,
      from: s.from,
      to: s.to,
      quantity: s.usage,
      amountMinor: charge.amountMinor,
    });
  }
  return { currency: plan.currency, period, lines, totalMinor: lines.reduce((a, l) => a + l.amountMinor, 0n), requests: usage };
}
