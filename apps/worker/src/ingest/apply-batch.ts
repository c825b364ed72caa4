import type { Sql } from 'postgres';
import { billingPeriodAt, ledgerIdentifier } from '@tollgate/billing';
import { newId } from '@tollgate/db';
import type { UsageBatch } from '@tollgate/usage';
import { aggregateBatch } from './aggregate';

export type ApplyResult = {
  /** false when the batch had been applied before: nothing changed. */
  applied: boolean;
  events: number;
  billable: number;
  rollupRows: number;
  ledgerRows: number;
  /** Billable events whose subscription does not exist (deleted): counted in rollups, not billed. */
  orphanBillable: number;
};

// Timestamps travel as epoch ms and become `timestamp(3)` (UTC, as Prisma stores DateTime)
// without going through the session time zone.
const TS = (col: string) => `(timestamp 'epoch' + ${col} * interval '1 millisecond')`;

// postgres.js serialises a parameter the server types as jsonb itself; a pre-stringified value
// would arrive as one JSON string.
const asJson = (rows: object[]) => rows as unknown as string;

const ROLLUP_SQL = `
INSERT INTO "UsageRollup" AS r ("tenantId","granularity","bucketStart","apiId","keyId","consumerId","subscriptionId",
  "requests","status2xx","status3xx","status4xx","status5xx","rejectedAuth","rejectedRate","rejectedQuota","rejectedOther",
  "latencyBuckets","latencySumMs","bytesIn","bytesOut","cacheHits","updatedAt")
SELECT x.t, 'minute', ${TS('x.b')}, x.a, x.k, x.c, x.s, x.n, x.s2, x.s3, x.s4, x.s5, x.ra, x.rr, x.rq, x.ro, x.lb, x.ls, x.bi, x.bo, x.ch, now()
FROM jsonb_to_recordset($1::jsonb) AS x(t text, b bigint, a text, k text, c text, s text, n bigint, s2 bigint, s3 bigint,
  s4 bigint, s5 bigint, ra bigint, rr bigint, rq bigint, ro bigint, lb bigint[], ls bigint, bi bigint, bo bigint, ch bigint)
ON CONFLICT ("tenantId","granularity","bucketStart","apiId","keyId") DO UPDATE SET
  "requests" = r."requests" + EXCLUDED."requests",
  "status2xx" = r."status2xx" + EXCLUDED."status2xx",
  "status3xx" = r."status3xx" + EXCLUDED."status3xx",
  "status4xx" = r."status4xx" + EXCLUDED."status4xx",
  "status5xx" = r."status5xx" + EXCLUDED."status5xx",
  "rejectedAuth" = r."rejectedAuth" + EXCLUDED."rejectedAuth",
  "rejectedRate" = r."rejectedRate" + EXCLUDED."rejectedRate",
  "rejectedQuota" = r."rejectedQuota" + EXCLUDED."rejectedQuota",
  "rejectedOther" = r."rejectedOther" + EXCLUDED."rejectedOther",
  "latencyBuckets" = (SELECT array_agg(COALESCE(o, 0) + COALESCE(n, 0) ORDER BY i)
                        FROM unnest(r."latencyBuckets", EXCLUDED."latencyBuckets") WITH ORDINALITY AS u(o, n, i)),
  "latencySumMs" = r."latencySumMs" + EXCLUDED."latencySumMs",
  "bytesIn" = r."bytesIn" + EXCLUDED."bytesIn",
  "bytesOut" = r."bytesOut" + EXCLUDED."bytesOut",
  "cacheHits" = r."cacheHits" + EXCLUDED."cacheHits",
  "consumerId" = CASE WHEN r."consumerId" = '' THEN EXCLUDED."consumerId" ELSE r."consumerId" END,
  "subscriptionId" = CASE WHEN r."subscriptionId" = '' THEN EXCLUDED."subscriptionId" ELSE r."subscriptionId" END,
  "updatedAt" = now()`;

const LEDGER_SQL = `
INSERT INTO "LedgerLine" AS l ("id","tenantId","subscriptionId","kind","periodStart","hourStart","quantity","identifier","createdAt","updatedAt")
SELECT x.id, x.t, x.s, 'USAGE'::"LedgerKind", ${TS('x.p')}, ${TS('x.h')}, x.q, x.i, now(), now()
FROM jsonb_to_recordset($1::jsonb) AS x(id text, t text, s text, p bigint, h bigint, q bigint, i text)
ON CONFLICT ("subscriptionId","kind","hourStart") DO UPDATE SET
  "quantity" = l."quantity" + EXCLUDED."quantity",
  "updatedAt" = now()`;

// lastUsedAt is a hint at minute precision: rows another transaction holds are skipped rather
// than waited for (it is writing nearly the same time), and a key is rewritten at most once a
// minute, so a hot key does not turn into a hot row.
const KEYS_SQL = `
UPDATE "ApiKey" k SET "lastUsedAt" = v.u
FROM (
  SELECT a.id, ${TS('x.u')} AS u FROM jsonb_to_recordset($1::jsonb) AS x(id text, u bigint)
  JOIN "ApiKey" a ON a.id = x.id
  WHERE a."lastUsedAt" IS NULL OR a."lastUsedAt" < ${TS('x.u')} - interval '1 minute'
  ORDER BY a.id
  FOR UPDATE OF a SKIP LOCKED
) v
WHERE k.id = v.id`;

/**
 * Applies one usage batch in one transaction: the batch id is recorded first, so a batch seen
 * before (redelivery, a second worker, a replayed spool) changes nothing; then per-minute
 * rollups, the hourly billing ledger and keys' last use are upserted, one multi-row statement
 * each, so the write count follows distinct (minute, key) pairs, not events.
 */
export async function applyUsageBatch(sql: Sql, batch: UsageBatch): Promise<ApplyResult> {
  const agg = aggregateBatch(batch.events);
  return sql.begin(async (tx) => {
    const inserted = await tx.unsafe(
      `INSERT INTO "ProcessedBatch" ("id","eventCount","processedAt") VALUES ($1, $2, now()) ON CONFLICT ("id") DO NOTHING RETURNING "id"`,
      [batch.batchId, agg.events],
    );
    if (inserted.length === 0) {
      return { applied: false, events: agg.events, billable: agg.billable, rollupRows: 0, ledgerRows: 0, orphanBillable: 0 };
    }

    if (agg.rollups.length) {
      const rows = agg.rollups.map((r) => ({
        t: r.tenantId, b: r.bucketStart, a: r.apiId, k: r.keyId, c: r.consumerId, s: r.subscriptionId,
        n: r.requests, s2: r.status2xx, s3: r.status3xx, s4: r.status4xx, s5: r.status5xx,
        ra: r.rejectedAuth, rr: r.rejectedRate, rq: r.rejectedQuota, ro: r.rejectedOther,
        lb: r.latencyBuckets, ls: r.latencySumMs, bi: r.bytesIn, bo: r.bytesOut, ch: r.cacheHits,
      }));
      await tx.unsafe(ROLLUP_SQL, [asJson(rows)]);
    }

    let orphanBillable = 0;
    let ledgerRows = 0;
    if (agg.ledger.length) {
      const ids = [...new Set(agg.ledger.map((l) => l.subscriptionId))];
      const subs = await tx.unsafe<Array<{ id: string; tenantId: string; currentPeriodStart: Date }>>(
        `SELECT "id","tenantId","currentPeriodStart" FROM "Subscription" WHERE "id" = ANY($1::text[])`,
        [ids],
      );
      const byId = new Map(subs.map((s) => [s.id, s]));
      const rows = [];
      for (const l of agg.ledger) {
        const sub = byId.get(l.subscriptionId);
        if (!sub) {
          orphanBillable += l.quantity;
          continue;
        }
        rows.push({
          id: newId('ledger'),
          t: sub.tenantId,
          s: l.subscriptionId,
          p: billingPeriodAt(sub.currentPeriodStart, new Date(l.hourStart)).start.getTime(),
          h: l.hourStart,
          q: l.quantity,
          i: ledgerIdentifier(l.subscriptionId, 'USAGE', l.hourStart),
        });
      }
      if (rows.length) await tx.unsafe(LEDGER_SQL, [asJson(rows)]);
      ledgerRows = rows.length;
    }

    if (agg.keys.length) await tx.unsafe(KEYS_SQL, [asJson(agg.keys.map((k) => ({ id: k.keyId, u: k.lastUsedAt })))]);

    return { applied: true, events: agg.events, billable: agg.billable, rollupRows: agg.rollups.length, ledgerRows, orphanBillable };
  });
}
