import type { Redis } from 'ioredis';
import type { Keyspace } from '@tollgate/policy';
import type { Db } from '../client';

/** Kept past the period's end like the gateway's own counters (@tollgate/ratelimit QUOTA_EXPIRY_GRACE_MS). */
const EXPIRY_GRACE_MS = 3_600_000;

/**
 * Raises a counter to at least the ledger's figure, never lowers it: calls a gateway counted
 * after the data loss but before this rebuild stay counted. Expiry as the gateway sets it.
 */
const RAISE_TO = `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local want = tonumber(ARGV[1])
if want > cur then redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2]) return want end
return cur`;

export type QuotaRestoreResult = { counters: number; raised: number };

/**
 * The ledger (PostgreSQL) is the truth for consumed quota; Redis counters are a fast copy. After
 * Redis lost its data, every open period's counter of a subscription with a quota is set back to
 * what the ledger billed in that period, so a hard cap holds across the loss. Bound (ADR 0017):
 * calls served but not yet in the ledger when this runs (a gateway's unsent batch, queued batches
 * the loss destroyed, the worker's lag) and calls accepted between the loss and this rebuild.
 * Test keys count in counters of their own, which start again from zero.
 */
export async function restoreQuotaCounters(opts: { db: Db; redis: Redis; keyspace: Keyspace; now?: number }): Promise<QuotaRestoreResult> {
  const now = new Date(opts.now ?? Date.now());
  const subs = await opts.db.subscription.findMany({
    where: {
      currentPeriodStart: { lte: now },
      currentPeriodEnd: { gt: now },
      OR: [{ plan: { monthlyQuota: { not: null } } }, { apiKeys: { some: { quotaOverride: { not: null } } } }],
    },
    select: { id: true, currentPeriodStart: true, currentPeriodEnd: true },
  });
  const result: QuotaRestoreResult = { counters: 0, raised: 0 };
  for (let i = 0; i < subs.length; i += 500) {
    const chunk = subs.slice(i, i + 500);
    const used = await opts.db.ledgerLine.groupBy({
      by: ['subscriptionId', 'periodStart'],
      where: { kind: 'USAGE', subscriptionId: { in: chunk.map((s) => s.id) } },
      _sum: { quantity: true },
    });
    const byKey = new Map(used.map((u) => [`${u.subscriptionId}|${u.periodStart.getTime()}`, u._sum.quantity ?? 0n]));
    const pipeline = opts.redis.pipeline();
    for (const s of chunk) {
      const start = s.currentPeriodStart.getTime();
      const quantity = byKey.get(`${s.id}|${start}`) ?? 0n;
      pipeline.eval(
        RAISE_TO,
        1,
        opts.keyspace.quota(s.id, start),
        quantity.toString(),
        String(s.currentPeriodEnd.getTime() + EXPIRY_GRACE_MS),
      );
    }
    const replies = (await pipeline.exec()) ?? [];
    for (const [i, [err]] of replies.entries()) {
      if (err) throw err;
      result.counters++;
      const s = chunk[i]!;
      if ((byKey.get(`${s.id}|${s.currentPeriodStart.getTime()}`) ?? 0n) > 0n) result.raised++;
    }
  }
  return result;
}
