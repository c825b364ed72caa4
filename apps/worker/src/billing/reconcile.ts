import type { Redis } from 'ioredis';
import type Stripe from 'stripe';
import type { Logger } from '@tollgate/config';
import type { Db } from '@tollgate/db';
import type { Keyspace } from '@tollgate/policy';
import { meterEventName, reportMeterUsage, type RetryOptions } from '@tollgate/billing';
import type { Metrics } from '../metrics';

const HOUR = 3_600_000;

export type ReconcileKind = 'quota_behind' | 'quota_ahead' | 'unreported' | 'over_reported' | 'stripe_mismatch' | 'stale_pending';

export type Mismatch = { kind: ReconcileKind; subscriptionId: string; detail: Record<string, string | number> };

export type ReconcileResult = { checked: number; mismatches: Mismatch[]; fixed: Record<string, number> };

export type ReconcileOptions = {
  db: Db;
  redis: Redis;
  keyspace: Keyspace;
  stripe: Stripe | null;
  logger: Logger;
  metrics?: Metrics;
  now?: Date;
  /** Same as the meter reporter's: hours younger than this are still settling, not missing. */
  settleMs?: number;
  /** A counter this far above the ledger is reported (events in flight keep it somewhat ahead). */
  aheadTolerance?: (ledger: bigint) => bigint;
  /** Ask Stripe for its meter totals (one call per Stripe-linked subscription, at most this many). */
  stripeChecks?: number;
  retry?: RetryOptions;
  /** Only these tenants (a tenant's own check; tests). */
  tenantIds?: string[];
};

type Row = {
  id: string;
  currentPeriodStart: Date;
  currentPeriodEnd: Date;
  planId: string;
  stripeLinked: boolean;
  stripeCustomerId: string | null;
  stripeMeterId: string | null;
  stripeAccountId: string | null;
  hasQuota: boolean;
  ledger: bigint;
  reported: bigint;
  due: bigint;
};

/**
 * Compares, for every serving subscription's current period, three numbers that should agree:
 * the gateway's Redis quota counter, the ledger, and what was reported to Stripe.
 *
 * Fixes what it can: a counter behind the ledger (lost in a Redis failover, or the gateway ran
 * on its in-memory fallback) is raised to the ledger, so the quota still holds; closed hours not
 * reported yet are reported (same identifiers, so nothing is billed twice). What it cannot fix —
 * more reported than served, Stripe's total differing from ours, a counter far ahead — is logged
 * and exported as `tollgate_reconcile_mismatches{kind}`.
 */
export async function reconcileBilling(opts: ReconcileOptions): Promise<ReconcileResult> {
  const now = opts.now ?? new Date();
  const settle = opts.settleMs ?? 120_000;
  const dueBefore = new Date(now.getTime() - HOUR - settle);
  const tolerance = opts.aheadTolerance ?? ((l: bigint) => 1000n + l / 100n);
  const mismatches: Mismatch[] = [];
  const fixed: Record<string, number> = {};
  const fix = (kind: string, n = 1) => {
    fixed[kind] = (fixed[kind] ?? 0) + n;
    opts.metrics?.reconcileFixed.inc({ kind }, n);
  };

  const rows = await opts.db.$queryRaw<Row[]>`
    SELECT s."id", s."currentPeriodStart", s."currentPeriodEnd", s."planId",
      (s."stripeSubscriptionId" IS NOT NULL AND c."stripeCustomerId" IS NOT NULL AND p."stripeMeterId" IS NOT NULL) AS "stripeLinked",
      c."stripeCustomerId", p."stripeMeterId", t."stripeAccountId", (p."monthlyQuota" IS NOT NULL) AS "hasQuota",
      COALESCE(sum(l."quantity"), 0)::bigint AS "ledger",
      COALESCE(sum(l."reportedQuantity"), 0)::bigint AS "reported",
      COALESCE(sum(CASE WHEN l."hourStart" <= ${dueBefore} THEN l."quantity" - l."reportedQuantity" ELSE 0 END), 0)::bigint AS "due"
    FROM "Subscription" s
    JOIN "Consumer" c ON c."id" = s."consumerId"
    JOIN "Plan" p ON p."id" = s."planId"
    JOIN "Tenant" t ON t."id" = s."tenantId"
    LEFT JOIN "LedgerLine" l ON l."subscriptionId" = s."id" AND l."kind" = 'USAGE' AND l."periodStart" = s."currentPeriodStart"
    WHERE s."status" IN ('ACTIVE', 'TRIALING', 'PAST_DUE')
      AND (${opts.tenantIds ?? null}::text[] IS NULL OR s."tenantId" = ANY(${opts.tenantIds ?? null}::text[]))
    GROUP BY s."id", c."stripeCustomerId", p."stripeMeterId", p."monthlyQuota", t."stripeAccountId"`;

  // Quota counters (the gateway keeps one per subscription and period only when the plan has a
  // quota): one pipelined GET per subscription, as the keys live in different Cluster slots.
  const quoted = rows.filter((r) => r.hasQuota);
  const keys = quoted.map((r) => opts.keyspace.quota(r.id, r.currentPeriodStart.getTime()));
  const counters = quoted.length ? await opts.redis.pipeline(keys.map((k) => ['get', k])).exec() : [];
  for (let i = 0; i < quoted.length; i++) {
    const r = quoted[i]!;
    const raw = counters?.[i]?.[1];
    const counter = typeof raw === 'string' ? BigInt(raw) : null;
    if (counter === null || counter < r.ledger) {
      mismatches.push({
        kind: 'quota_behind',
        subscriptionId: r.id,
        detail: { counter: counter === null ? -1 : Number(counter), ledger: Number(r.ledger) },
      });
      if (r.ledger > 0n) {
        await raiseCounter(opts.redis, keys[i]!, r.ledger, r.currentPeriodEnd.getTime() + HOUR);
        fix('quota_behind');
      }
    } else if (counter - r.ledger > tolerance(r.ledger)) {
      mismatches.push({ kind: 'quota_ahead', subscriptionId: r.id, detail: { counter: Number(counter), ledger: Number(r.ledger) } });
    }
  }
  for (const r of rows) {
    if (r.reported > r.ledger) {
      mismatches.push({ kind: 'over_reported', subscriptionId: r.id, detail: { reported: Number(r.reported), ledger: Number(r.ledger) } });
    }
  }

  // Closed hours not yet reported: report them now (a no-op for Stripe if they had arrived).
  const unreported = rows.filter((r) => r.stripeLinked && r.due > 0n);
  for (const r of unreported) {
    mismatches.push({ kind: 'unreported', subscriptionId: r.id, detail: { due: Number(r.due) } });
    if (!opts.stripe) continue;
    const res = await reportMeterUsage({
      db: opts.db,
      stripe: opts.stripe,
      logger: opts.logger,
      now,
      settleMs: settle,
      subscriptionId: r.id,
      ...(opts.retry ? { retry: opts.retry } : {}),
    });
    if (res.quantity > 0n) fix('unreported', Number(res.quantity));
  }

  // A report pending for most of Stripe's identifier window: resending it much later could bill twice.
  const stale = await opts.db.$queryRaw<Array<{ subscriptionId: string; identifier: string; createdAt: Date }>>`
    SELECT l."subscriptionId", r."identifier", r."createdAt" FROM "MeterReport" r JOIN "LedgerLine" l ON l."id" = r."ledgerLineId"
    WHERE r."sentAt" IS NULL AND r."createdAt" < ${new Date(now.getTime() - 20 * HOUR)}
      AND (${opts.tenantIds ?? null}::text[] IS NULL OR l."tenantId" = ANY(${opts.tenantIds ?? null}::text[]))
    LIMIT 1000`;
  for (const r of stale)
    mismatches.push({
      kind: 'stale_pending',
      subscriptionId: r.subscriptionId,
      detail: { identifier: r.identifier, since: r.createdAt.toISOString() },
    });

  // Stripe's own total for the period, against what we recorded as reported.
  if (opts.stripe) {
    const linked = rows.filter((r) => r.stripeLinked).slice(0, opts.stripeChecks ?? 100);
    for (const r of linked) {
      try {
        const reported = await opts.db.ledgerLine.aggregate({
          where: { subscriptionId: r.id, kind: 'USAGE', periodStart: r.currentPeriodStart },
          _sum: { reportedQuantity: true },
        });
        const ours = reported._sum.reportedQuantity ?? 0n;
        const start = Math.floor(r.currentPeriodStart.getTime() / 60_000) * 60;
        const end = Math.ceil((now.getTime() + 1) / 60_000) * 60;
        const summaries = await opts.stripe.billing.meters.listEventSummaries(
          r.stripeMeterId!,
          { customer: r.stripeCustomerId!, start_time: start, end_time: end },
          r.stripeAccountId ? { stripeAccount: r.stripeAccountId } : {},
        );
        const theirs = BigInt(Math.round(summaries.data.reduce((a, s) => a + Number(s.aggregated_value), 0)));
        if (theirs !== ours) {
          mismatches.push({
            kind: 'stripe_mismatch',
            subscriptionId: r.id,
            detail: { stripe: Number(theirs), reported: Number(ours), meter: meterEventName(r.planId) },
          });
        }
      } catch (err) {
        opts.logger.warn({ subscriptionId: r.id, err: (err as Error).message }, 'could not read Stripe meter totals');
      }
    }
  }

  const counts: Record<ReconcileKind, number> = {
    quota_behind: 0,
    quota_ahead: 0,
    unreported: 0,
    over_reported: 0,
    stripe_mismatch: 0,
    stale_pending: 0,
  };
  for (const m of mismatches) counts[m.kind]++;
  for (const [kind, n] of Object.entries(counts)) opts.metrics?.reconcileMismatches.set({ kind }, n);
  for (const m of mismatches) {
    const fixable = m.kind === 'quota_behind' || (m.kind === 'unreported' && opts.stripe);
    (fixable ? opts.logger.info : opts.logger.warn).call(
      opts.logger,
      { ...m },
      fixable ? 'reconciliation fixed a mismatch' : 'reconciliation found a mismatch it cannot fix',
    );
  }
  return { checked: rows.length, mismatches, fixed };
}

/** Raises a quota counter to at least `target`, racing safely with the gateway's INCRBYs. */
async function raiseCounter(redis: Redis, key: string, target: bigint, expireAtMs: number): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const set = await redis.set(key, target.toString(), 'PXAT', expireAtMs, 'NX');
    if (set === 'OK') return;
    const current = BigInt((await redis.get(key)) ?? '0');
    if (current >= target) return;
    // Additive, so increments the gateway makes meanwhile are kept on top.
    await redis.incrby(key, (target - current).toString());
    return;
  }
}
