import type Stripe from 'stripe';
import type { Logger } from '@tollgate/config';
import type { Db } from '@tollgate/db';
import { meterEventIdentifier } from '../ledger';
import { withStripeRetry, type RetryOptions } from './retry';

const HOUR = 3_600_000;
const DAY = 86_400_000;

/** The meter event name of a plan's usage meter (one meter per plan, so two plans never share a meter). */
export const meterEventName = (planId: string) => `tollgate_requests_${planId}`;

export type MeterReportResult = {
  /** Meter events Stripe accepted. */
  sent: number;
  /** Meter events Stripe already had (a retry after a lost response): counted as delivered. */
  duplicates: number;
  /** Meter events that failed after retries; they stay pending with the same identifier. */
  failed: number;
  /** Requests reported. */
  quantity: bigint;
};

export type MeterReportOptions = {
  db: Db;
  stripe: Stripe | null;
  logger: Logger;
  now?: Date;
  /** Only hours that ended at least this long ago are reported (late batches settle first). */
  settleMs?: number;
  /** Lines per run. */
  limit?: number;
  retry?: RetryOptions;
  /** Only this subscription (reconciliation, plan changes, tests). */
  subscriptionId?: string;
  /**
   * Report everything in the ledger up to now, the running hour included, instead of only hours
   * that closed and settled: a plan change closes out the old plan's meter this way.
   */
  throughNow?: boolean;
};

type Candidate = {
  id: string;
  hourStart: Date;
  stripeCustomerId: string;
  stripeAccountId: string | null;
  planId: string;
};

type PendingReport = { identifier: string; quantity: bigint };

export function isDuplicateMeterEvent(err: unknown): boolean {
  const e = err as { type?: string; statusCode?: number; message?: string } | null;
  return !!e && e.statusCode === 400 && /already exists with identifier/i.test(e.message ?? '');
}

/**
 * Reports the ledger's unreported usage to Stripe, one meter event per (ledger line, delta).
 *
 * Exactly once, through crashes and retries: the event to send is first written as a pending
 * MeterReport whose identifier is the line's identifier plus the quantity already reported
 * before it. Until Stripe confirms, every attempt — after a 429, a 5xx, a timeout or a crash —
 * resends that same identifier and quantity, and Stripe refuses an identifier it already has.
 * Only a confirmed report advances the line's reportedQuantity, once (guarded by sentAt).
 */
export async function reportMeterUsage(opts: MeterReportOptions): Promise<MeterReportResult> {
  const result: MeterReportResult = { sent: 0, duplicates: 0, failed: 0, quantity: 0n };
  if (!opts.stripe) return result;
  const stripe = opts.stripe;
  const now = opts.now ?? new Date();
  const cutoff = opts.throughNow ? now : new Date(now.getTime() - HOUR - (opts.settleMs ?? 120_000));
  const limit = opts.limit ?? 500;
  const onlySub = opts.subscriptionId ?? null;

  const candidates = await opts.db.$queryRaw<Candidate[]>`
    SELECT l."id", l."hourStart", c."stripeCustomerId", t."stripeAccountId", p."id" AS "planId"
    FROM "LedgerLine" l
    JOIN "Subscription" s ON s."id" = l."subscriptionId"
    JOIN "Consumer" c ON c."id" = s."consumerId"
    JOIN "Plan" p ON p."id" = s."planId"
    JOIN "Tenant" t ON t."id" = l."tenantId"
    WHERE l."kind" = 'USAGE' AND l."hourStart" <= ${cutoff}
      AND (l."quantity" > l."reportedQuantity" OR EXISTS (SELECT 1 FROM "MeterReport" r WHERE r."ledgerLineId" = l."id" AND r."sentAt" IS NULL))
      AND s."stripeSubscriptionId" IS NOT NULL AND c."stripeCustomerId" IS NOT NULL AND p."stripeMeterId" IS NOT NULL
      AND (${onlySub}::text IS NULL OR l."subscriptionId" = ${onlySub}::text)
    ORDER BY l."hourStart", l."id"
    LIMIT ${limit}`;

  for (const c of candidates) {
    const report = await claimReport(opts.db, c.id);
    if (!report) continue;
    // Stripe takes events from the last 35 days; the hour's middle attributes usage to its period.
    const ts = Math.min(now.getTime(), Math.max(c.hourStart.getTime() + HOUR / 2, now.getTime() - 34 * DAY));
    try {
      await withStripeRetry(
        () =>
          stripe.billing.meterEvents.create(
            {
              event_name: meterEventName(c.planId),
              identifier: report.identifier,
              timestamp: Math.floor(ts / 1000),
              payload: { stripe_customer_id: c.stripeCustomerId, value: report.quantity.toString() },
            },
            c.stripeAccountId ? { stripeAccount: c.stripeAccountId } : {},
          ),
        {
          ...opts.retry,
          onRetry: (err, attempt, delayMs) =>
            opts.logger.warn(
              { identifier: report.identifier, attempt, delayMs, err: (err as Error).message },
              'meter event failed; retrying',
            ),
        },
      );
      result.sent++;
    } catch (err) {
      if (!isDuplicateMeterEvent(err)) {
        result.failed++;
        opts.logger.error({ identifier: report.identifier, err: (err as Error).message }, 'meter event not delivered; it stays pending');
        continue;
      }
      result.duplicates++;
      opts.logger.info({ identifier: report.identifier }, 'Stripe already had this meter event; marking it delivered');
    }
    if (await confirmReport(opts.db, c.id, report, now)) result.quantity += report.quantity;
  }
  return result;
}

/** The line's pending report, or a new one for its unreported delta; null when nothing is due. */
async function claimReport(db: Db, lineId: string): Promise<PendingReport | null> {
  return db.$transaction(async (tx) => {
    const [line] = await tx.$queryRaw<Array<{ identifier: string; quantity: bigint; reportedQuantity: bigint }>>`
      SELECT "identifier", "quantity", "reportedQuantity" FROM "LedgerLine" WHERE "id" = ${lineId} FOR UPDATE`;
    if (!line) return null;
    const pending = await tx.meterReport.findFirst({ where: { ledgerLineId: lineId, sentAt: null }, orderBy: { createdAt: 'asc' } });
    if (pending) return { identifier: pending.identifier, quantity: pending.quantity };
    if (line.quantity <= line.reportedQuantity) return null;
    const created = await tx.meterReport.create({
      data: {
        identifier: meterEventIdentifier(line.identifier, line.reportedQuantity),
        ledgerLineId: lineId,
        quantity: line.quantity - line.reportedQuantity,
      },
    });
    return { identifier: created.identifier, quantity: created.quantity };
  });
}

async function confirmReport(db: Db, lineId: string, report: PendingReport, now: Date): Promise<boolean> {
  return db.$transaction(async (tx) => {
    const marked = await tx.meterReport.updateMany({ where: { identifier: report.identifier, sentAt: null }, data: { sentAt: now } });
    if (marked.count !== 1) return false;
    await tx.ledgerLine.update({ where: { id: lineId }, data: { reportedQuantity: { increment: report.quantity }, reportedAt: now } });
    return true;
  });
}
