// Analytics: requests over time and the top APIs, keys and consumers. Revenue is in ./revenue,
// the CSV export in ./usage-csv, the query vocabulary in ./usage-query.
import { Prisma } from '@tollgate/db';
import { LATENCY_BUCKETS_MS } from '@tollgate/usage';
import { requirePermission, type ServiceContext } from './context';
import { percentile, resolveWindow, sourceSql, STEP_MS, UsageQuery } from './usage-query';
import { parseInput } from './validation';

export { RANGES, UsageQuery, chooseGranularity, resolveWindow, percentile, type RangeName, type Granularity } from './usage-query';

const n = (v: unknown) => Number(v ?? 0);

export type UsagePoint = {
  t: string;
  requests: number;
  /** Of `requests`, those made with test keys (`tg_test_…`): never billed (ADR 0017). */
  testRequests: number;
  /** 4xx and 5xx answers together (kept for the admin API); headlines use the two below. */
  errors: number;
  /** Refused by policy: a missing or bad key or token, a rate limit, a used-up quota (401/403/429). */
  refused: number;
  /** Errors: the API or the gateway failed to answer (5xx, upstream unreachable, timeouts). */
  serverErrors: number;
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
      refused: n(r?.ra) + n(r?.rr) + n(r?.rq),
      serverErrors: n(r?.s5),
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
      // A plan's own 429s are the gateway doing its job, not an outage: counted apart (issue 21).
      refused: totals.rejectedAuth + totals.rejectedRate + totals.rejectedQuota,
      refusedRate: all ? (totals.rejectedAuth + totals.rejectedRate + totals.rejectedQuota) / all : 0,
      serverErrorRate: all ? totals.s5xx / all : 0,
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
