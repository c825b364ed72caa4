import { z } from 'zod';
import { queryTopUsage, queryUsage, RANGES, type RangeName } from '../shared/usage';
import { ServiceError, type ServiceContext } from '../shared/context';
import { Id, parseInput } from '../shared/validation';
import { getMyKey } from './keys';
import type { DeveloperContext } from './context';

/** A custom range may span this many calendar days (UTC), both ends included. */
export const MAX_CUSTOM_RANGE_DAYS = 90;
const DAY_MS = 86_400_000;

// A calendar day as <input type="date"> sends it; 2026-02-30 and friends are refused.
const Day = z
  .string({ error: 'must be a date like 2026-11-28' })
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date like 2026-11-28')
  .refine((s) => {
    const d = new Date(`${s}T00:00:00Z`);
    return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
  }, 'is not a real date');

export const MyUsageQuery = z
  .object({
    range: z.enum(Object.keys(RANGES) as [RangeName, ...RangeName[]], { error: 'must be one of 1h, 6h, 24h, 7d, 30d, 90d' }).default('24h'),
    /** A custom range of whole UTC days, instead of `range`: both or neither. */
    from: Day.optional(),
    to: Day.optional(),
    keyId: Id('key').optional(),
    apiId: Id('api').optional(),
  })
  .strict();
export type MyUsageQuery = z.infer<typeof MyUsageQuery>;

/**
 * The window of a custom range: from the start of `from` to the end of `to` (UTC days, so one
 * day is a valid range), never past now, at most MAX_CUSTOM_RANGE_DAYS days. Null without one.
 */
export function customWindow(q: Pick<MyUsageQuery, 'from' | 'to'>, now = new Date()): { from: Date; to: Date } | null {
  if (q.from === undefined && q.to === undefined) return null;
  if (q.from === undefined || q.to === undefined) {
    const missing = q.from === undefined ? 'from' : 'to';
    throw new ServiceError('unprocessable', `invalid input: a custom range needs both "from" and "to"`, { [missing]: 'is required' });
  }
  const from = new Date(`${q.from}T00:00:00Z`);
  const toDay = new Date(`${q.to}T00:00:00Z`);
  if (from > toDay)
    throw new ServiceError('unprocessable', 'invalid input: "from" must be on or before "to"', { from: 'must be on or before to' });
  const today = new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS);
  if (from > today)
    throw new ServiceError('unprocessable', 'invalid input: the range must not start in the future', { from: 'is in the future' });
  const days = (toDay.getTime() - from.getTime()) / DAY_MS + 1;
  if (days > MAX_CUSTOM_RANGE_DAYS) {
    throw new ServiceError('unprocessable', `invalid input: a range can span at most ${MAX_CUSTOM_RANGE_DAYS} days (this one is ${days})`, {
      to: `must be within ${MAX_CUSTOM_RANGE_DAYS} days of from`,
    });
  }
  const end = new Date(Math.min(toDay.getTime() + DAY_MS, now.getTime()));
  return { from, to: end };
}

/**
 * The console's usage queries, read-only, pinned to this developer: the consumer filter is set
 * here and can't come from the request, and a key filter must name one of the developer's keys.
 */
function readContext(dev: DeveloperContext): ServiceContext {
  return { db: dev.db, tenantId: dev.tenant.id, actor: { type: 'user', id: dev.consumerId, label: 'portal developer' }, role: 'VIEWER' };
}

function windowOf(q: Pick<MyUsageQuery, 'from' | 'to' | 'range'>) {
  return customWindow(q) ?? { range: q.range };
}

export async function myUsage(dev: DeveloperContext, input: unknown) {
  const parsed = parseInput(MyUsageQuery, input ?? {});
  const { from: _from, to: _to, range: _range, ...filters } = parsed;
  if (filters.keyId) await getMyKey(dev, filters.keyId);
  return queryUsage(readContext(dev), { ...filters, ...windowOf(parsed), consumerId: dev.consumerId });
}

/** Requests and errors per key of this developer over the range. */
export async function myKeyUsage(dev: DeveloperContext, input: unknown) {
  const parsed = parseInput(MyUsageQuery.omit({ keyId: true }), input ?? {});
  const { from: _from, to: _to, range: _range, ...filters } = parsed;
  const top = await queryTopUsage(readContext(dev), { ...filters, ...windowOf(parsed), consumerId: dev.consumerId }, 100);
  return top.keys;
}
