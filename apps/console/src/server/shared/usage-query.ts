// What an analytics query may ask for (range, granularity, filters), how it becomes a window,
// and which rollup rows answer it.
import { z } from 'zod';
import { Prisma } from '@tollgate/db';
import { LATENCY_BUCKETS_MS, MINUTE_ROLLUP_KEEP_DAYS } from '@tollgate/usage';
import { ServiceError, type ServiceContext } from './context';
import { Id } from './validation';

export type Granularity = 'minute' | 'hour' | 'day';
export const STEP_MS: Record<Granularity, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
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
export async function sourceSql(
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
