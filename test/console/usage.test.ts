import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId, type Db } from '@tollgate/db';
import { LATENCY_BUCKETS_MS } from '@tollgate/usage';
import { testDb } from '../harness/db';
import { makeTenant, type TestTenant } from './fixtures';
import { billingPeriodAt } from '@tollgate/billing';
import { chooseGranularity, percentile, queryTopUsage, queryUsage, resolveWindow } from '../../apps/console/src/server/shared/usage';
import { queryBilling } from '../../apps/console/src/server/console/revenue';
import { exportUsageCsv } from '../../apps/console/src/server/console/usage-csv';
import { deletePlan } from '../../apps/console/src/server/console/plans';

let db: Db;
let a: TestTenant;
let b: TestTenant;
const HOUR = 3_600_000;
const ID = { apiA: newId('api'), apiB: newId('api'), keyA: newId('key'), keyB: newId('key') };
const DAY = 24 * HOUR;

function buckets(at: number, n: number) {
  const arr = new Array(LATENCY_BUCKETS_MS.length + 1).fill(0n);
  arr[at] = BigInt(n);
  return arr;
}

async function rollup(
  t: TestTenant,
  granularity: string,
  bucketStart: Date,
  over: { apiId?: string; keyId?: string; consumerId?: string; requests: number; s5xx?: number; lat?: number },
) {
  await db.usageRollup.create({
    data: {
      tenantId: t.tenantId,
      granularity,
      bucketStart,
      apiId: over.apiId ?? ID.apiA,
      keyId: over.keyId ?? ID.keyA,
      consumerId: over.consumerId ?? '',
      requests: BigInt(over.requests),
      status2xx: BigInt(over.requests - (over.s5xx ?? 0)),
      status5xx: BigInt(over.s5xx ?? 0),
      latencyBuckets: buckets(over.lat ?? 4, over.requests),
    },
  });
}

const floor = (ms: number, step: number) => new Date(Math.floor(ms / step) * step);

beforeAll(async () => {
  db = testDb();
  a = await makeTenant(db);
  b = await makeTenant(db);
  const now = Date.now();
  // Compacted days up to two days ago, compacted hours up to two hours ago, minutes since.
  for (let d = 10; d >= 2; d--) await rollup(a, 'day', floor(now - d * DAY, DAY), { requests: 100, s5xx: 10 });
  const dayCover = floor(now - 2 * DAY, DAY).getTime() + DAY;
  for (let h = dayCover; h < floor(now - 2 * HOUR, HOUR).getTime(); h += HOUR) await rollup(a, 'hour', new Date(h), { requests: 10 });
  await rollup(a, 'minute', floor(now - 30 * 60_000, 60_000), { requests: 7, keyId: ID.keyB, apiId: ID.apiB, lat: 8 });
  await rollup(a, 'minute', floor(now - 5 * 60_000, 60_000), { requests: 3, keyId: ID.keyB, apiId: ID.apiB, lat: 8 });
  // Tenant B's traffic must never show up in A's numbers.
  await rollup(b, 'minute', floor(now - 5 * 60_000, 60_000), { requests: 1_000_000 });
});
afterAll(async () => {
  await db.$disconnect();
});

describe('usage analytics', () => {
  it('shows test-key traffic as test traffic, apart from live traffic', async () => {
    const t = await makeTenant(db);
    const consumerId = newId('consumer');
    await db.consumer.create({ data: { id: consumerId, tenantId: t.tenantId, email: `${consumerId}@example.com`, name: 'Dev' } });
    const [live, test] = [newId('key'), newId('key')];
    for (const [id, env] of [
      [live, 'live'],
      [test, 'test'],
    ] as const)
      await db.apiKey.create({ data: { id, tenantId: t.tenantId, consumerId, hash: `h${id}`, prefix: `tg_${env}_x`, env } });
    const at = floor(Date.now() - 10 * 60_000, 60_000);
    await rollup(t, 'minute', at, { requests: 40, keyId: live });
    await rollup(t, 'minute', at, { requests: 2, keyId: test, apiId: ID.apiB });
    const res = await queryUsage(t.ctx('VIEWER'), { range: '1h' });
    expect(res.totals).toMatchObject({ requests: 42, testRequests: 2 });
    expect(res.points.find((p) => p.t === at.toISOString())).toMatchObject({ requests: 42, testRequests: 2 });
  });

  it('picks minute rollups up to 6 h, hours up to 7 days, days beyond', () => {
    expect(chooseGranularity(HOUR)).toBe('minute');
    expect(chooseGranularity(6 * HOUR)).toBe('minute');
    expect(chooseGranularity(DAY)).toBe('hour');
    expect(chooseGranularity(7 * DAY)).toBe('hour');
    expect(chooseGranularity(30 * DAY)).toBe('day');
  });

  it('draws windows older than the minute retention by hour, and refuses minutes there', () => {
    const now = new Date('2026-11-28T12:00:00Z');
    const recent = resolveWindow({ from: new Date('2026-11-28T08:00:00Z'), to: new Date('2026-11-28T10:00:00Z') }, now);
    expect(recent.granularity).toBe('minute');
    const old = resolveWindow({ from: new Date('2026-10-01T08:00:00Z'), to: new Date('2026-10-01T10:00:00Z') }, now);
    expect(old.granularity).toBe('hour');
    expect(() =>
      resolveWindow({ from: new Date('2026-10-01T08:00:00Z'), to: new Date('2026-10-01T10:00:00Z'), granularity: 'minute' }, now),
    ).toThrow(/kept for 14 days/);
  });

  it('reads percentiles from the latency histogram', () => {
    expect(percentile([0, 0, 0, 0], 0.5)).toBeNull();
    expect(percentile([50, 45, 5], 0.5)).toBe(LATENCY_BUCKETS_MS[0]);
    expect(percentile([50, 45, 5], 0.95)).toBe(LATENCY_BUCKETS_MS[1]);
    expect(percentile([50, 45, 5], 0.99)).toBe(LATENCY_BUCKETS_MS[2]);
  });

  it('sums a 30-day range from day rows plus the not-yet-compacted hours and minutes, without double counting', async () => {
    const u = await queryUsage(a.owner, { range: '30d' });
    expect(u.granularity).toBe('day');
    const hours = await db.usageRollup.count({ where: { tenantId: a.tenantId, granularity: 'hour' } });
    expect(u.totals.requests).toBe(9 * 100 + hours * 10 + 7 + 3);
    expect(u.totals.s5xx).toBe(90);
    expect(u.points).toHaveLength(31);
    expect(u.totals.errorRate).toBeCloseTo(90 / u.totals.requests, 5);
  });

  it('draws the last hour from minute rows with zero-filled gaps and filters by key, API and status', async () => {
    const u = await queryUsage(a.owner, { range: '1h' });
    expect(u.granularity).toBe('minute');
    expect(u.points.length).toBeGreaterThanOrEqual(60);
    expect(u.totals.requests).toBe(10);
    expect(u.totals.p50).toBe(LATENCY_BUCKETS_MS[8]);
    expect((await queryUsage(a.owner, { range: '1h', keyId: ID.keyA })).totals.requests).toBe(0);
    expect((await queryUsage(a.owner, { range: '30d', status: '5xx' })).totals.requests).toBe(90);
    const top = await queryTopUsage(a.owner, { range: '24h' });
    expect(top.apis[0]).toMatchObject({ id: ID.apiA });
    expect(top.keys.map((k) => k.id)).toEqual(expect.arrayContaining([ID.keyA, ID.keyB]));
  });

  it('totals a 7-day window from day rows for whole days and hour rows for the edges, matching the hourly series', async () => {
    // Consistent data, as the worker's compaction leaves it: every hour of the last 8 days, and
    // a day row for each completed day holding the sum of its hours.
    const t = await makeTenant(db);
    const key = newId('key');
    const api = newId('api');
    const now = Date.now();
    const firstHour = floor(now - 8 * DAY, HOUR).getTime();
    const hours = [];
    for (let h = firstHour; h <= floor(now, HOUR).getTime(); h += HOUR) hours.push(h);
    await db.usageRollup.createMany({
      data: hours.map((h) => ({
        tenantId: t.tenantId,
        granularity: 'hour',
        bucketStart: new Date(h),
        apiId: api,
        keyId: key,
        requests: BigInt(1 + ((h / HOUR) % 5)),
        status2xx: 1n,
      })),
    });
    const days = new Map<number, bigint>();
    for (const h of hours) {
      const d = floor(h, DAY).getTime();
      if (d + DAY <= floor(now, DAY).getTime()) days.set(d, (days.get(d) ?? 0n) + BigInt(1 + ((h / HOUR) % 5)));
    }
    await db.usageRollup.createMany({
      data: [...days].map(([d, r]) => ({
        tenantId: t.tenantId,
        granularity: 'day',
        bucketStart: new Date(d),
        apiId: api,
        keyId: key,
        requests: r,
        status2xx: 1n,
      })),
    });
    const series = await queryUsage(t.owner, { range: '7d' });
    const top = await queryTopUsage(t.owner, { range: '7d' });
    expect(series.totals.requests).toBeGreaterThan(0);
    expect(top.keys).toEqual([expect.objectContaining({ id: key, requests: series.totals.requests })]);
    expect(top.apis[0]!.requests).toBe(series.totals.requests);
  });

  it('totals a 7-day window from hour rows alone while no day has been compacted yet', async () => {
    const t = await makeTenant(db);
    const key = newId('key');
    const now = Date.now();
    const hours = [];
    for (let h = floor(now - 3 * DAY, HOUR).getTime(); h < floor(now, HOUR).getTime(); h += HOUR) hours.push(h);
    await db.usageRollup.createMany({
      data: hours.map((h) => ({
        tenantId: t.tenantId,
        granularity: 'hour',
        bucketStart: new Date(h),
        apiId: ID.apiA,
        keyId: key,
        requests: 2n,
        status2xx: 2n,
      })),
    });
    const series = await queryUsage(t.owner, { range: '7d' });
    const top = await queryTopUsage(t.owner, { range: '7d' });
    expect(series.totals.requests).toBe(2 * hours.length);
    expect(top.keys).toEqual([expect.objectContaining({ id: key, requests: 2 * hours.length })]);
  });

  it("never counts another tenant's traffic", async () => {
    expect((await queryUsage(a.owner, { range: '1h' })).totals.requests).toBe(10);
    expect((await queryUsage(b.owner, { range: '1h' })).totals.requests).toBe(1_000_000);
  });

  it('exports the series as CSV with a header and one row per bucket', async () => {
    const csv = await exportUsageCsv(a.owner, { range: '7d' });
    const lines = csv.trim().split('\n');
    expect(lines[0]).toBe('bucket_start,requests,2xx,3xx,4xx,5xx,errors,p50_ms,p95_ms,p99_ms');
    expect(lines.length).toBe(7 * 24 + 2);
    expect(lines.slice(1).every((l) => /^\d{4}-\d\d-\d\dT[\d:.]+Z(,[\d]*){9}$/.test(l))).toBe(true);
  });
});

describe('revenue by plan', () => {
  /** A tenant whose subscriptions began 40 days ago: their first billing period and the current one. */
  async function revenueSetup() {
    const t = await makeTenant(db);
    const now = Date.now();
    const created = new Date(now - 40 * DAY);
    const current = billingPeriodAt(created, new Date(now));
    const first = billingPeriodAt(created, created);
    /** A plan with 100 included requests. */
    const plan = async (name: string, flatFeeMinor: number, overageUnitPriceMinor = 1) => {
      const id = newId('plan');
      await db.plan.create({
        data: {
          id,
          tenantId: t.tenantId,
          name,
          slug: id,
          flatFeeMinor,
          includedRequests: 100,
          overageUnitPriceMinor,
          quotaMode: 'OVERAGE',
        },
      });
      return id;
    };
    return { t, created, current, first, plan };
  }

  it('rates each billing period in the range: flat fee plus usage over the included requests; free plans earn 0, unactivated ones nothing', async () => {
    const { t, created, current, first, plan } = await revenueSetup();
    const pro = await plan('Pro', 2900, 1);
    const free = await plan('Free', 0, 0);
    const sub = async (planId: string, status: 'ACTIVE' | 'INCOMPLETE', usage: Array<[Date, number]>) => {
      const consumerId = newId('consumer');
      const id = newId('subscription');
      await db.consumer.create({ data: { id: consumerId, tenantId: t.tenantId, email: `${consumerId}@example.com`, name: 'Dev' } });
      await db.subscription.create({
        data: {
          id,
          tenantId: t.tenantId,
          consumerId,
          planId,
          status,
          currentPeriodStart: current.start,
          currentPeriodEnd: current.end,
          createdAt: created,
        },
      });
      for (const [periodStart, quantity] of usage) {
        const hourStart = new Date(periodStart.getTime() + 2 * HOUR);
        await db.ledgerLine.create({
          data: {
            id: newId('ledger'),
            tenantId: t.tenantId,
            subscriptionId: id,
            periodStart,
            hourStart,
            quantity: BigInt(quantity),
            identifier: `${id}_${hourStart.getTime()}`,
          },
        });
      }
    };
    await sub(pro, 'ACTIVE', [
      [first.start, 250],
      [current.start, 50],
    ]);
    await sub(free, 'ACTIVE', [[current.start, 500]]);
    await sub(pro, 'INCOMPLETE', [[current.start, 1000]]);

    // 24 h: only the current period — Pro's flat fee, its 50 requests are included.
    const day = await queryBilling(t.owner, { range: '24h' });
    expect(day.revenue).toEqual([
      { plan: 'Pro', currency: 'usd', amountMinor: 2900, quantity: 50 },
      { plan: 'Free', currency: 'usd', amountMinor: 0, quantity: 500 },
    ]);
    // 90 days: the first period too — flat fee plus 150 requests over the 100 included at 1¢.
    const quarter = await queryBilling(t.owner, { range: '90d' });
    expect(quarter.revenue[0]).toEqual({ plan: 'Pro', currency: 'usd', amountMinor: 2900 + 150 + 2900, quantity: 300 });
    // Another tenant sees none of it.
    expect((await queryBilling(b.owner, { range: '90d' })).revenue).toEqual([]);
  });

  it('rates each period at the plans it ran on: a change between periods moves whole periods, one inside a period splits it pro rata', async () => {
    const { t, created, current, first, plan } = await revenueSetup();
    const basic = await plan('Basic', 1000);
    const pro = await plan('Pro', 2900);
    const subscription = async (hours: Array<[Date, Date, number]>, changedAt: Date) => {
      const consumerId = newId('consumer');
      const id = newId('subscription');
      await db.consumer.create({ data: { id: consumerId, tenantId: t.tenantId, email: `${consumerId}@example.com`, name: 'Dev' } });
      await db.subscription.create({
        data: {
          id,
          tenantId: t.tenantId,
          consumerId,
          planId: pro,
          status: 'ACTIVE',
          currentPeriodStart: current.start,
          currentPeriodEnd: current.end,
          createdAt: created,
        },
      });
      await db.subscriptionPlanChange.create({
        data: { id: newId('planChange'), tenantId: t.tenantId, subscriptionId: id, fromPlanId: basic, toPlanId: pro, changedAt },
      });
      for (const [periodStart, hourStart, quantity] of hours) {
        await db.ledgerLine.create({
          data: {
            id: newId('ledger'),
            tenantId: t.tenantId,
            subscriptionId: id,
            periodStart,
            hourStart,
            quantity: BigInt(quantity),
            identifier: `${id}_${hourStart.getTime()}`,
          },
        });
      }
    };
    // Moved to Pro as the current period began: the first period was Basic's, whole.
    await subscription(
      [
        [first.start, new Date(first.start.getTime() + 2 * HOUR), 250],
        [current.start, new Date(current.start.getTime() + 2 * HOUR), 50],
      ],
      current.start,
    );
    const byPlan = async () => Object.fromEntries((await queryBilling(t.owner, { range: '90d' })).revenue.map((r) => [r.plan, r]));
    expect(await byPlan()).toEqual({
      Basic: { plan: 'Basic', currency: 'usd', amountMinor: 1000 + 150, quantity: 250 },
      Pro: { plan: 'Pro', currency: 'usd', amountMinor: 2900, quantity: 50 },
    });

    // Moved a quarter of the way into the current period: 30 requests before, 80 after. Each
    // part pays its plan's fee and gets its included requests pro rata (half-up).
    const total = BigInt((current.end.getTime() - current.start.getTime()) / 1000);
    const before = total / 4n;
    const changedAt = new Date(current.start.getTime() + Number(before) * 1000);
    const share = (n: bigint, secs: bigint) => Number((2n * n * secs + total) / (2n * total));
    await subscription(
      [
        [current.start, new Date(current.start.getTime() + HOUR), 30],
        [current.start, new Date(changedAt.getTime() + HOUR), 80],
      ],
      changedAt,
    );
    const basicPart = share(1000n, before) + Math.max(0, 30 - share(100n, before));
    const proPart = share(2900n, total - before) + Math.max(0, 80 - share(100n, total - before));
    // It was on Basic through the first period too: Basic's fee, no usage.
    expect(await byPlan()).toEqual({
      Basic: { plan: 'Basic', currency: 'usd', amountMinor: 1150 + 1000 + basicPart, quantity: 250 + 30 },
      Pro: { plan: 'Pro', currency: 'usd', amountMinor: 2900 + proPart, quantity: 50 + 80 },
    });
    // The 24 h view holds only the current period: no Basic period of the first subscription.
    const day = Object.fromEntries((await queryBilling(t.owner, { range: '24h' })).revenue.map((r) => [r.plan, r.amountMinor]));
    expect(day).toEqual({ Basic: basicPart, Pro: 2900 + proPart });
  });

  it('keeps a plan that subscriptions moved away from: deleting it archives it', async () => {
    const t = await makeTenant(db);
    const [from, to] = [newId('plan'), newId('plan')];
    for (const id of [from, to]) await db.plan.create({ data: { id, tenantId: t.tenantId, name: id, slug: id } });
    const consumerId = newId('consumer');
    const subscriptionId = newId('subscription');
    await db.consumer.create({ data: { id: consumerId, tenantId: t.tenantId, email: `${consumerId}@example.com`, name: 'Dev' } });
    await db.subscription.create({
      data: {
        id: subscriptionId,
        tenantId: t.tenantId,
        consumerId,
        planId: to,
        currentPeriodStart: new Date(),
        currentPeriodEnd: new Date(Date.now() + 30 * DAY),
      },
    });
    await db.subscriptionPlanChange.create({
      data: { id: newId('planChange'), tenantId: t.tenantId, subscriptionId, fromPlanId: from, toPlanId: to },
    });
    expect(await deletePlan(t.owner, from)).toEqual({ id: from, deleted: false, archived: true });
    expect(await db.plan.findUnique({ where: { id: from }, select: { status: true } })).toEqual({ status: 'ARCHIVED' });
    expect(await db.subscriptionPlanChange.count({ where: { subscriptionId } })).toBe(1);
  });
});
