import type { Sql } from 'postgres';

const HOUR = 3_600_000;
const DAY = 86_400_000;

const SUMS = [
  'requests',
  'status2xx',
  'status3xx',
  'status4xx',
  'status5xx',
  'rejectedAuth',
  'rejectedRate',
  'rejectedQuota',
  'rejectedOther',
  'latencySumMs',
  'bytesIn',
  'bytesOut',
  'cacheHits',
];

/**
 * Rebuilds `to` rows (hour or day) from `from` rows (minute or hour) for buckets in [start, end).
 * The rebuilt row replaces the old one, so running it again, or over a range that was already
 * compacted, gives the same answer: compaction can never double count.
 */
function rebuildSql(from: 'minute' | 'hour', to: 'hour' | 'day'): string {
  const cols = SUMS.map((c) => `"${c}"`).join(', ');
  const sums = SUMS.map((c) => `sum(m."${c}")::bigint AS "${c}"`).join(', ');
  const updates = [...SUMS, 'latencyBuckets', 'consumerId', 'subscriptionId'].map((c) => `"${c}" = EXCLUDED."${c}"`).join(', ');
  return `
WITH m AS (
  SELECT r.*, date_trunc('${to}', r."bucketStart") AS b FROM "UsageRollup" r
  JOIN "Tenant" t ON t.id = r."tenantId"
  WHERE r."granularity" = '${from}' AND r."bucketStart" >= $1 AND r."bucketStart" < $2
),
lat AS (
  SELECT m."tenantId", m.b, m."apiId", m."keyId", u.i, sum(u.v)::bigint AS v
  FROM m, unnest(m."latencyBuckets") WITH ORDINALITY AS u(v, i)
  GROUP BY 1, 2, 3, 4, 5
),
latarr AS (
  SELECT "tenantId", b, "apiId", "keyId", array_agg(v ORDER BY i) AS lb FROM lat GROUP BY 1, 2, 3, 4
),
s AS (
  SELECT m."tenantId", m.b, m."apiId", m."keyId", max(m."consumerId") AS "consumerId", max(m."subscriptionId") AS "subscriptionId", ${sums}
  FROM m GROUP BY 1, 2, 3, 4
)
INSERT INTO "UsageRollup" ("tenantId", "granularity", "bucketStart", "apiId", "keyId", "consumerId", "subscriptionId", ${cols}, "latencyBuckets", "updatedAt")
SELECT s."tenantId", '${to}', s.b, s."apiId", s."keyId", s."consumerId", s."subscriptionId", ${SUMS.map((c) => `s."${c}"`).join(', ')}, COALESCE(l.lb, '{}'), now()
FROM s LEFT JOIN latarr l ON l."tenantId" = s."tenantId" AND l.b = s.b AND l."apiId" = s."apiId" AND l."keyId" = s."keyId"
ORDER BY 1, 3, 4, 5
ON CONFLICT ("tenantId", "granularity", "bucketStart", "apiId", "keyId") DO UPDATE SET ${updates}, "updatedAt" = now()`;
}

const MINUTE_TO_HOUR = rebuildSql('minute', 'hour');
const HOUR_TO_DAY = rebuildSql('hour', 'day');

export type CompactResult = { hourRows: number; dayRows: number; from: Date; to: Date };

/**
 * Compacts minute rollups into hour rows, and hour rows into day rows, for the whole hours and
 * days between `from` and `to` (`to` rounds down: an hour or day still running is never
 * compacted). So an hour or day row, once there, is complete, and readers take the newest hour
 * or day row as the edge where finer rows take over (the console's analytics do). Late batches
 * for a closed hour are folded in by the next run while the hour is inside the lookback.
 */
export async function compactRollups(sql: Sql, range: { from: Date; to: Date }): Promise<CompactResult> {
  const hFrom = Math.floor(range.from.getTime() / HOUR) * HOUR;
  const hTo = Math.floor(range.to.getTime() / HOUR) * HOUR;
  const dFrom = Math.floor(hFrom / DAY) * DAY;
  const dTo = Math.floor(hTo / DAY) * DAY;
  return sql.begin(async (tx) => {
    const hours = await tx.unsafe(MINUTE_TO_HOUR, [new Date(hFrom), new Date(hTo)]);
    const days = await tx.unsafe(HOUR_TO_DAY, [new Date(dFrom), new Date(dTo)]);
    return { hourRows: hours.count, dayRows: days.count, from: new Date(hFrom), to: new Date(hTo) };
  });
}

/**
 * Forgets batch ids older than `keepDays`. A batch can only come back while its producer still
 * holds it (BullMQ retries, a gateway's spool), which is far shorter; past that the id is dead
 * weight. Deletes in chunks so a large backlog never holds one long transaction.
 */
export async function pruneProcessedBatches(sql: Sql, keepDays: number, chunk = 10_000): Promise<number> {
  let total = 0;
  for (;;) {
    const res = await sql.unsafe(
      `DELETE FROM "ProcessedBatch" WHERE "id" IN (
         SELECT "id" FROM "ProcessedBatch" WHERE "processedAt" < now() - make_interval(days => $1) LIMIT $2)`,
      [keepDays, chunk],
    );
    total += res.count;
    if (res.count < chunk) return total;
  }
}

/**
 * Drops minute rollups older than `keepDays` whose hour row exists, so minute rows (the bulk of
 * the table: one per key per active minute) don't grow forever. A minute whose hour was never
 * compacted (compaction failing for days) is kept: nothing is deleted that isn't summed elsewhere.
 * Deletes in chunks so a large backlog never holds one long transaction.
 */
export async function pruneMinuteRollups(sql: Sql, keepDays: number, chunk = 10_000): Promise<number> {
  let total = 0;
  for (;;) {
    const res = await sql.unsafe(
      `DELETE FROM "UsageRollup" WHERE ctid IN (
         SELECT m.ctid FROM "UsageRollup" m
         WHERE m."granularity" = 'minute' AND m."bucketStart" < date_trunc('hour', now()) - make_interval(days => $1)
           AND EXISTS (
             SELECT 1 FROM "UsageRollup" h
             WHERE h."tenantId" = m."tenantId" AND h."granularity" = 'hour' AND h."bucketStart" = date_trunc('hour', m."bucketStart")
               AND h."apiId" = m."apiId" AND h."keyId" = m."keyId")
         LIMIT $2)`,
      [keepDays, chunk],
    );
    total += res.count;
    if (res.count < chunk) return total;
  }
}
