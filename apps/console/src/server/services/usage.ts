import { z } from 'zod';
import { billingPeriodAt, previewInvoice, pricingFromPlan } from '@tollgate/billing';
import { Prisma } from '@tollgate/db';
import { LATENCY_BUCKETS_MS, MINUTE_ROLLUP_KEEP_DAYS } from '@tollgate/usage';
import { requirePermission, ServiceError, type ServiceContext } from './context';
import { Id, parseInput } from './validation';

export type Granularity = 'minute' | 'hour' | 'day';
const STEP_MS: Record<Granularity, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
const MAX_RANGE_MS = 92 * 86_400_000;
const MAX_POINTS = 1500;

export const RANGES = {
  '1h': 3_600_000,
  '6h': 6 * 3_600_000,
  '24h': 86_400_000,
  '7d': 7 * 86_400_000,
  '30d': 30 * 86_400_000,
  '90d': 90 * 86_400_000,
} as const;
export type RangeName = keyof typeof RANGES;

export const UsageQuery = z
  .object({
    range: z.enum(Object.keys(RANGES) as [RangeName, ...RangeName[]]).optional(),
    from: z.coerce.date({ error: 'must be a date' }).optional(),
    to: z.coerce.date({ error: 'must be a date' }).optional(),
    granularity: z.enum(['minute', 'hour', 'day']).optional(),
    apiId: Id('api').optional(),
    keyId: Id('key').optional(),
    consumerId: Id('con').optional(),
    status: z.enum(['2xx', '3xx', '4xx', '5xx']).optional(),
  })
  .strict();
export type UsageQuery = z.infer<typeof UsageQuery>;

/** The coarsest rollup that still draws a useful curve: ≤ 6 h by minute, ≤ 7 d by hour, else by day. */
export function chooseGranularity(rangeMs: number): Granularity {
  if (rangeMs <= 6 * 3_600_000) return 'minute';
  if (rangeMs <= 7 * 86_400_000) return 'hour';
  return 'day';
}

function truncate(d: Date, g: Granularity): Date {
  return new Date(Math.floor(d.getTime() / STEP_MS[g]) * STEP_MS[g]);
}

export function resolveWindow(q: UsageQuery, now = new Date()) {
  const to = q.to ?? now;
  const from = q.from ?? new Date(to.getTime() - RANGES[q.range ?? '24h']);
  if (from >= to) throw new ServiceError('unprocessable', '"from" must be before "to"', { from: 'must be before to' });
  if (to.getTime() - from.getTime() > MAX_RANGE_MS)
    throw new ServiceError('unprocessable', 'the range can be at most 92 days', { from: 'range too long' });
  // Minute rows are kept MINUTE_ROLLUP_KEEP_DAYS (the worker prunes older ones once their hour is
  // compacted): an older window is drawn by hour, and asking for minutes there is refused.
  const minutesSince = now.getTime() - MINUTE_ROLLUP_KEEP_DAYS * 86_400_000;
  let g = q.granularity ?? chooseGranularity(to.getTime() - from.getTime());
  if (g === 'minute' && from.getTime() < minutesSince) {
    if (q.granularity === 'minute') {
      throw new ServiceError(
        'unprocessable',
        `per-minute data is kept for ${MINUTE_ROLLUP_KEEP_DAYS} days; choose hour or day for older windows`,
        {
          granularity: `minute data only covers the last ${MINUTE_ROLLUP_KEEP_DAYS} days`,
        },
      );
    }
    g = 'hour';
  }
  if ((to.getTime() - from.getTime()) / STEP_MS[g] > MAX_POINTS) {
    throw new ServiceError('unprocessable', `too many ${g} points for this range; choose a coarser granularity`, {
      granularity: 'too fine for this range',
    });
  }
  return { from: truncate(from, g), to, granularity: g };
}

/** p in [0,1] from histogram counts: the upper bound of the bucket where the rank falls. */
export function percentile(buckets: number[], p: number): number | null {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.ceil(total * p);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!;
    if (seen >= rank) return LATENCY_BUCKETS_MS[i] ?? LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1]! * 2;
  }
  return null;
}

/**
 * The rows to read: the chosen granularity where compacted rows exist, finer rows for the
 * recent stretch not compacted yet, so a coarse chart never misses the last hours.
 */
async function sourceSql(
  ctx: ServiceContext,
  q: UsageQuery,
  from: Date,
  to: Date,
  g: Granularity,
  totalsOnly = false,
): Promise<Prisma.Sql> {
  const filters: Prisma.Sql[] = [];
  if (q.apiId) filters.push(Prisma.sql`AND "apiId" = ${q.apiId}`);
  if (q.keyId) filters.push(Prisma.sql`AND "keyId" = ${q.keyId}`);
  if (q.consumerId) filters.push(Prisma.sql`AND "consumerId" = ${q.consumerId}`);
  const f = filters.length ? Prisma.join(filters, ' ') : Prisma.empty;
  const cover = async (gran: Granularity): Promise<Date | null> => {
    const rows = await ctx.db.$queryRaw<{ m: Date | null }[]>`
      SELECT max("bucketStart") AS m FROM "UsageRollup" WHERE "tenantId" = ${ctx.tenantId} AND granularity = ${gran}`;
    const m = rows[0]?.m;
    return m ? new Date(m.getTime() + STEP_MS[gran]) : null;
  };
  const part = (gran: Granularity, a: Date, b: Date) => Prisma.sql`
    SELECT * FROM "UsageRollup" WHERE "tenantId" = ${ctx.tenantId} AND granularity = ${gran}
      AND "bucketStart" >= ${a} AND "bucketStart" < ${b} ${f}`;
  if (g === 'minute') return part('minute', from, to);
  const clamp = (d: Date | null, lo: Date) => (d && d > lo ? (d < to ? d : to) : lo);
  if (g === 'hour' && totalsOnly) {
    // Totals need no hourly points: whole days inside the window come from day rows (24× fewer),
    // only the partial first day and the days not yet compacted from hour and minute rows.
    const dayCover = await cover('day');
    const d0 = new Date(Math.ceil(from.getTime() / STEP_MS.day) * STEP_MS.day);
    const floorTo = new Date(Math.floor(to.getTime() / STEP_MS.day) * STEP_MS.day);
    // No day rows yet (compaction never reached a whole day): every day comes from finer rows.
    const dayEnd = dayCover === null ? d0 : dayCover < floorTo ? dayCover : floorTo;
    if (dayEnd > d0) {
      const bHour = clamp(await cover('hour'), dayEnd);
      return Prisma.sql`${part('hour', from, d0)} UNION ALL ${part('day', d0, dayEnd)} UNION ALL ${part('hour', dayEnd, bHour)} UNION ALL ${part('minute', bHour, to)}`;
    }
  }
  if (g === 'hour') {
    const bHour = clamp(await cover('hour'), from);
    return Prisma.sql`${part('hour', from, bHour)} UNION ALL ${part('minute', bHour, to)}`;
  }
  const bDay = clamp(await cover('day'), from);
  const bHour = clamp(await cover('hour'), bDay);
  return Prisma.sql`${part('day', from, bDay)} UNION ALL ${part('hour', bDay, bHour)} UNION ALL ${part('minute', bHour, to)}`;
}

const n = (v: unknown) => Number(v ?? 0);

export type UsagePoint = {
  t: string;
  requests: number;
  /** Of `requests`, those made with test keys (`tg_test_…`): never billed (ADR 0017). */
  testRequests: number;
  errors: number;
  s2xx: number;
  s3xx: number;
  s4xx: number;
  s5xx: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
};

/** Requests over time, error rate, latency percentiles and status classes for one window. */
export async function queryUsage(ctx: ServiceContext, input: unknown) {
  requirePermission(ctx, 'read');
  const q = parseInput(UsageQuery, input ?? {});
  const { from, to, granularity } = resolveWindow(q);
  const src = await sourceSql(ctx, q, from, to, granularity);
  const trunc = Prisma.raw(`'${granularity}'`);
  const reqCol = Prisma.raw(q.status ? `"status${q.status}"` : '"requests"');
  // One pass: counters and each histogram bucket summed by index (unnesting the arrays costs
  // an order of magnitude more on long ranges).
  const histCols = Prisma.raw(
    Array.from({ length: LATENCY_BUCKETS_MS.length + 1 }, (_, i) => `sum(COALESCE("latencyBuckets"[${i + 1}], 0)) AS l${i}`).join(', '),
  );
  const series = await ctx.db.$queryRaw<Array<Record<string, unknown>>>`
      WITH src AS (${src})
      SELECT date_trunc(${trunc}, "bucketStart") AS t, sum(${reqCol}) AS requests,
        sum("status2xx") AS s2, sum("status3xx") AS s3, sum("status4xx") AS s4, sum("status5xx") AS s5,
        sum("latencySumMs") AS lsum, sum("bytesIn") AS bi, sum("bytesOut") AS bo,
        sum("rejectedAuth") AS ra, sum("rejectedRate") AS rr, sum("rejectedQuota") AS rq,
        sum(CASE WHEN "keyId" IN (SELECT k."id" FROM "ApiKey" k WHERE k."tenantId" = ${ctx.tenantId} AND k."env" = 'test')
          THEN ${reqCol} ELSE 0 END) AS tr, ${histCols}
      FROM src GROUP BY 1 ORDER BY 1`;
  const histByT = new Map<number, number[]>();
  const totalHist: number[] = new Array(LATENCY_BUCKETS_MS.length + 1).fill(0);
  for (const r of series) {
    const arr = Array.from({ length: LATENCY_BUCKETS_MS.length + 1 }, (_, i) => n(r[`l${i}`]));
    arr.forEach((v, i) => (totalHist[i] = (totalHist[i] ?? 0) + v));
    histByT.set(new Date(r.t as Date).getTime(), arr);
  }
  const byT = new Map(series.map((r) => [new Date(r.t as Date).getTime(), r]));
  const points: UsagePoint[] = [];
  const totals = {
    requests: 0,
    testRequests: 0,
    s2xx: 0,
    s3xx: 0,
    s4xx: 0,
    s5xx: 0,
    bytesIn: 0,
    bytesOut: 0,
    latencySumMs: 0,
    rejectedAuth: 0,
    rejectedRate: 0,
    rejectedQuota: 0,
  };
  // Zero-filled so charts show quiet periods as quiet, not as gaps.
  for (let t = from.getTime(); t < to.getTime(); t += STEP_MS[granularity]) {
    const r = byT.get(t);
    const h = histByT.get(t) ?? [];
    const p = {
      t: new Date(t).toISOString(),
      requests: n(r?.requests),
      testRequests: n(r?.tr),
      s2xx: n(r?.s2),
      s3xx: n(r?.s3),
      s4xx: n(r?.s4),
      s5xx: n(r?.s5),
      errors: n(r?.s4) + n(r?.s5),
      p50: percentile(h, 0.5),
      p95: percentile(h, 0.95),
      p99: percentile(h, 0.99),
    };
    points.push(p);
    totals.requests += p.requests;
    totals.testRequests += p.testRequests;
    totals.s2xx += p.s2xx;
    totals.s3xx += p.s3xx;
    totals.s4xx += p.s4xx;
    totals.s5xx += p.s5xx;
    totals.bytesIn += n(r?.bi);
    totals.bytesOut += n(r?.bo);
    totals.latencySumMs += n(r?.lsum);
    totals.rejectedAuth += n(r?.ra);
    totals.rejectedRate += n(r?.rr);
    totals.rejectedQuota += n(r?.rq);
  }
  const all = totals.s2xx + totals.s3xx + totals.s4xx + totals.s5xx;
  return {
    from: from.toISOString(),
    to: to.toISOString(),
    granularity,
    points,
    totals: {
      ...totals,
      errorRate: all ? (totals.s4xx + totals.s5xx) / all : 0,
      p50: percentile(totalHist, 0.5),
      p95: percentile(totalHist, 0.95),
      p99: percentile(totalHist, 0.99),
    },
  };
}

/** Top APIs, keys and consumers by requests in the window, with their error counts. */
export async function queryTopUsage(ctx: ServiceContext, input: unknown, limit = 10) {
  requirePermission(ctx, 'read');
  const q = parseInput(UsageQuery, input ?? {});
  const { from, to, granularity } = resolveWindow(q);
  const src = await sourceSql(ctx, q, from, to, granularity, true);
  // One scan for all three lists: grouping sets, ranked inside PostgreSQL.
  const ranked = await ctx.db.$queryRaw<Array<{ kind: string; id: string | null; requests: unknown; errors: unknown }>>`
    WITH src AS (${src})
    SELECT kind, id, requests, errors FROM (
      SELECT CASE WHEN GROUPING("apiId") = 0 THEN 'api' WHEN GROUPING("keyId") = 0 THEN 'key' ELSE 'consumer' END AS kind,
        COALESCE("apiId", "keyId", "consumerId") AS id, sum("requests") AS requests, sum("status4xx" + "status5xx") AS errors,
        row_number() OVER (PARTITION BY GROUPING("apiId"), GROUPING("keyId") ORDER BY sum("requests") DESC) AS rn
      FROM src GROUP BY GROUPING SETS (("apiId"), ("keyId"), ("consumerId"))
    ) x WHERE rn <= ${limit + 1}`;
  const pickKind = (kind: string) =>
    ranked
      .filter((r) => r.kind === kind && r.id)
      .map((r) => ({ id: r.id!, requests: r.requests, errors: r.errors }))
      .sort((x, y) => n(y.requests) - n(x.requests))
      .slice(0, limit);
  const [apis, keys, consumers] = [pickKind('api'), pickKind('key'), pickKind('consumer')];
  const [apiRows, keyRows, consumerRows] = await Promise.all([
    ctx.db.api.findMany({ where: { tenantId: ctx.tenantId, id: { in: apis.map((a) => a.id) } }, select: { id: true, name: true } }),
    ctx.db.apiKey.findMany({
      where: { tenantId: ctx.tenantId, id: { in: keys.map((a) => a.id) } },
      select: { id: true, name: true, prefix: true },
    }),
    ctx.db.consumer.findMany({
      where: { tenantId: ctx.tenantId, id: { in: consumers.map((a) => a.id) } },
      select: { id: true, name: true, email: true },
    }),
  ]);
  const label = <T extends { id: string }>(rows: T[], f: (r: T) => string) => new Map(rows.map((r) => [r.id, f(r)]));
  const apiName = label(apiRows, (r) => r.name);
  const keyName = label(keyRows, (r) => (r.name ? `${r.name} (${r.prefix}…)` : `${r.prefix}…`));
  const conName = label(consumerRows, (r) => `${r.name} <${r.email}>`);
  const shape = (rows: ReturnType<typeof pickKind>, names: Map<string, string>) =>
    rows.map((r) => ({ id: r.id, label: names.get(r.id) ?? r.id, requests: n(r.requests), errors: n(r.errors) }));
  return { apis: shape(apis, apiName), keys: shape(keys, keyName), consumers: shape(consumers, conName) };
}

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

/**
 * One CSV cell. Spreadsheets run a cell starting with = + - @ (or a tab/CR that hides one) as a
 * formula, so such text gets a leading apostrophe; quotes, commas and line breaks are quoted.
 */
export function csvCell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  let s = v;
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) || s !== v ? `"${s.replace(/"/g, '""')}"` : s;
}

const csvLine = (cells: Array<string | number | null | undefined>) => cells.map(csvCell).join(',');

/**
 * CSV export: the time series, or with `kind=top` the top APIs, keys and consumers with their
 * names (which users chose, so every cell goes through csvCell).
 */
export async function exportUsageCsv(ctx: ServiceContext, input: unknown): Promise<string> {
  const { kind, ...rest } = (input && typeof input === 'object' ? input : {}) as Record<string, unknown>;
  if (kind !== undefined && kind !== 'series' && kind !== 'top')
    throw new ServiceError('unprocessable', 'kind must be series or top', { kind: 'must be series or top' });
  if (kind === 'top') {
    const top = await queryTopUsage(ctx, rest, 100);
    const lines = [csvLine(['kind', 'id', 'name', 'requests', 'errors'])];
    for (const [k, rows] of [
      ['api', top.apis],
      ['key', top.keys],
      ['consumer', top.consumers],
    ] as const) {
      for (const r of rows) lines.push(csvLine([k, r.id, r.label, r.requests, r.errors]));
    }
    return lines.join('\n') + '\n';
  }
  const u = await queryUsage(ctx, rest);
  const lines = ['bucket_start,requests,2xx,3xx,4xx,5xx,errors,p50_ms,p95_ms,p99_ms'];
  for (const p of u.points) lines.push(csvLine([p.t, p.requests, p.s2xx, p.s3xx, p.s4xx, p.s5xx, p.errors, p.p50, p.p95, p.p99]));
  return lines.join('\n') + '\n';
}
