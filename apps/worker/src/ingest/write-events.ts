import type { Sql, TransactionSql } from 'postgres';
import { billingPeriodAt, ledgerIdentifier } from '@tollgate/billing';
import { newId } from '@tollgate/db';
import { LATENCY_BUCKETS_MS, type UsageEvent } from '@tollgate/usage';
import { aggregateBatches } from './aggregate';

// Where usage events become rows: per-minute rollups, billing ledger rows (one per subscription
// and hour, its Stripe identifier derived from them) and keys' last use, in one statement.
// apply-batch.ts decides which events get here, exactly once.

// Timestamps travel as epoch ms and become `timestamp(3)` (UTC, as Prisma stores DateTime)
// without going through the session time zone.
const TS = (col: string) => `(timestamp 'epoch' + ${col} * interval '1 millisecond')`;

// postgres.js serialises a parameter the server types as jsonb itself; a pre-stringified value
// would arrive as one JSON string.
const asJson = (rows: object[]) => rows as unknown as string;

const BUCKETS = LATENCY_BUCKETS_MS.length + 1;
// Element-wise histogram sum, spelled out: cheaper than unnest/array_agg per row. A row created
// before the bucket list grew simply gets the missing buckets.
const LATENCY_MERGE = `ARRAY[${Array.from({ length: BUCKETS }, (_, i) => `COALESCE(r."latencyBuckets"[${i + 1}], 0) + COALESCE(EXCLUDED."latencyBuckets"[${i + 1}], 0)`).join(', ')}]::bigint[]`;

/**
 * Every write of the claimed batches in one statement: rollups, ledger, keys. Rows arrive sorted
 * by primary key, so concurrent groups lock shared rows in the same order.
 */
const WRITE_SQL = `
WITH r AS (
  INSERT INTO "UsageRollup" AS r ("tenantId","granularity","bucketStart","apiId","keyId","consumerId","subscriptionId",
    "requests","status2xx","status3xx","status4xx","status5xx","rejectedAuth","rejectedRate","rejectedQuota","rejectedOther",
    "latencyBuckets","latencySumMs","bytesIn","bytesOut","cacheHits","updatedAt")
  SELECT x.t, 'minute', ${TS('x.b')}, x.a, x.k, x.c, x.s, x.n, x.s2, x.s3, x.s4, x.s5, x.ra, x.rr, x.rq, x.ro, x.lb, x.ls, x.bi, x.bo, x.ch, now()
  FROM jsonb_to_recordset($1::jsonb) AS x(t text, b bigint, a text, k text, c text, s text, n bigint, s2 bigint, s3 bigint,
    s4 bigint, s5 bigint, ra bigint, rr bigint, rq bigint, ro bigint, lb bigint[], ls bigint, bi bigint, bo bigint, ch bigint, o int)
  ORDER BY x.o
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
    "latencyBuckets" = ${LATENCY_MERGE},
    "latencySumMs" = r."latencySumMs" + EXCLUDED."latencySumMs",
    "bytesIn" = r."bytesIn" + EXCLUDED."bytesIn",
    "bytesOut" = r."bytesOut" + EXCLUDED."bytesOut",
    "cacheHits" = r."cacheHits" + EXCLUDED."cacheHits",
    "consumerId" = CASE WHEN r."consumerId" = '' THEN EXCLUDED."consumerId" ELSE r."consumerId" END,
    "subscriptionId" = CASE WHEN r."subscriptionId" = '' THEN EXCLUDED."subscriptionId" ELSE r."subscriptionId" END,
    "updatedAt" = now()
  RETURNING 1
),
-- Billable counts per subscription-hour, for subscriptions that exist. The period is the one
-- holding the hour's earliest event (x.e), not the hour's start: a subscription that began
-- mid-hour has its first hour start before its first period. That is the subscription's current
-- period when the event falls in it (the usual case), else the anchored period computed by the
-- caller. The first insert of an hour decides; later deltas only add quantity.
-- x.q counts every call the upstream answered, x.q2 those with a 2xx/3xx status: the plan's
-- billableResponses picks one (ADR 0017).
ls AS (
  SELECT x.id, s."tenantId" AS t, x.s, CASE WHEN ${TS('x.e')} >= s."currentPeriodStart" AND ${TS('x.e')} < s."currentPeriodEnd" THEN s."currentPeriodStart" ELSE ${TS('x.p')} END AS p,
    ${TS('x.h')} AS h, CASE WHEN pl."billableResponses" = 'SUCCESS_ONLY' THEN x.q2 ELSE x.q END AS q, x.q AS answered, x.i, x.o
  FROM jsonb_to_recordset($2::jsonb) AS x(id text, s text, h bigint, e bigint, p bigint, q bigint, q2 bigint, i text, o int)
  JOIN "Subscription" s ON s."id" = x.s
  LEFT JOIN "Plan" pl ON pl."id" = s."planId"
),
l AS (
  INSERT INTO "LedgerLine" AS l ("id","tenantId","subscriptionId","kind","periodStart","hourStart","quantity","identifier","createdAt","updatedAt")
  SELECT ls.id, ls.t, ls.s, 'USAGE'::"LedgerKind", ls.p, ls.h, ls.q, ls.i, now(), now() FROM ls WHERE ls.q > 0 ORDER BY ls.o
  ON CONFLICT ("subscriptionId","kind","hourStart") DO UPDATE SET "quantity" = l."quantity" + EXCLUDED."quantity", "updatedAt" = now()
  RETURNING 1
),
-- lastUsedAt is a hint at minute precision: rows another transaction holds are skipped rather
-- than waited for (it is writing nearly the same time), and a key is rewritten at most once a
-- minute, so a hot key does not become a hot row.
kl AS (
  SELECT a."id", ${TS('x.u')} AS u FROM jsonb_to_recordset($3::jsonb) AS x(id text, u bigint)
  JOIN "ApiKey" a ON a."id" = x.id
  WHERE (a."lastUsedAt" IS NULL OR a."lastUsedAt" < ${TS('x.u')} - interval '1 minute')
  ORDER BY a."id"
  FOR UPDATE OF a SKIP LOCKED
),
k AS (
  UPDATE "ApiKey" a SET "lastUsedAt" = kl.u FROM kl WHERE a."id" = kl."id" RETURNING 1
)
SELECT (SELECT count(*) FROM r)::int AS rollups,
       (SELECT count(*) FROM l)::int AS ledger,
       (SELECT COALESCE(sum(q), 0) FROM ls)::bigint AS billed,
       (SELECT COALESCE(sum(answered), 0) FROM ls)::bigint AS candidates,
       (SELECT count(*) FROM k)::int AS keys`;

export type WriteResult = { events: number; billable: number; rollupRows: number; ledgerRows: number; orphanBillable: number };
export const NONE: WriteResult = { events: 0, billable: 0, rollupRows: 0, ledgerRows: 0, orphanBillable: 0 };
export const add = (a: WriteResult, b: WriteResult): WriteResult => ({
  events: a.events + b.events,
  billable: a.billable + b.billable,
  rollupRows: a.rollupRows + b.rollupRows,
  ledgerRows: a.ledgerRows + b.ledgerRows,
  orphanBillable: a.orphanBillable + b.orphanBillable,
});

/** Rollups, ledger and keys' last use for these events, in the caller's transaction. */
export async function writeEvents(tx: TransactionSql, batches: ReadonlyArray<readonly UsageEvent[]>): Promise<WriteResult> {
  const agg = aggregateBatches(batches);
  const rollups = agg.rollups.map((r, o) => ({
    o,
    t: r.tenantId,
    b: r.bucketStart,
    a: r.apiId,
    k: r.keyId,
    c: r.consumerId,
    s: r.subscriptionId,
    n: r.requests,
    s2: r.status2xx,
    s3: r.status3xx,
    s4: r.status4xx,
    s5: r.status5xx,
    ra: r.rejectedAuth,
    rr: r.rejectedRate,
    rq: r.rejectedQuota,
    ro: r.rejectedOther,
    lb: r.latencyBuckets,
    ls: r.latencySumMs,
    bi: r.bytesIn,
    bo: r.bytesOut,
    ch: r.cacheHits,
  }));
  const anchors = agg.ledger.length
    ? await periodAnchors(
        tx,
        agg.ledger.map((l) => l.subscriptionId),
      )
    : new Map<string, Date>();
  const ledger = agg.ledger.map((l, o) => {
    const anchor = anchors.get(l.subscriptionId);
    return {
      o,
      id: newId('ledger'),
      s: l.subscriptionId,
      h: l.hourStart,
      e: l.firstAt,
      p: anchor ? billingPeriodAt(anchor, new Date(l.firstAt)).start.getTime() : l.hourStart,
      q: l.quantity,
      q2: l.successQuantity,
      i: ledgerIdentifier(l.subscriptionId, 'USAGE', l.hourStart),
    };
  });
  const keys = agg.keys.map((k) => ({ id: k.keyId, u: k.lastUsedAt }));
  const [row] = await tx.unsafe<Array<{ rollups: number; ledger: number; billed: string | bigint; candidates: string | bigint }>>(
    WRITE_SQL,
    [asJson(rollups), asJson(ledger), asJson(keys)],
  );
  const billed = Number(row!.billed);
  return {
    events: agg.events,
    billable: billed,
    rollupRows: row!.rollups,
    ledgerRows: row!.ledger,
    orphanBillable: agg.billable - Number(row!.candidates),
  };
}

/**
 * Billing anchors of subscriptions, only needed for an hour outside a subscription's current
 * period (late events); cached briefly because the anchor never moves.
 */
const anchorCache = new Map<string, { anchor: Date; at: number }>();
async function periodAnchors(sql: Sql | TransactionSql, ids: string[]): Promise<Map<string, Date>> {
  const now = Date.now();
  const out = new Map<string, Date>();
  const missing: string[] = [];
  for (const id of new Set(ids)) {
    const hit = anchorCache.get(id);
    if (hit && now - hit.at < 300_000) out.set(id, hit.anchor);
    else missing.push(id);
  }
  if (missing.length) {
    const rows = await sql.unsafe<Array<{ id: string; createdAt: Date; currentPeriodStart: Date }>>(
      `SELECT "id", "createdAt", "currentPeriodStart" FROM "Subscription" WHERE "id" = ANY($1::text[])`,
      [missing],
    );
    if (anchorCache.size > 100_000) anchorCache.clear();
    for (const r of rows) {
      anchorCache.set(r.id, { anchor: r.currentPeriodStart, at: now });
      out.set(r.id, r.currentPeriodStart);
    }
  }
  return out;
}
