import type { Job } from 'bullmq';
import type { Sql } from 'postgres';
import { UsageEvent, type UsageBatch } from '@tollgate/usage';
import { applyUsageBatchesIn } from './apply-batch';

/**
 * Parked usage (ADR 0018): events the worker will not apply as they are, because their own data
 * is the problem — PostgreSQL refuses a value (isolated by bisection inside the batch's
 * transaction, see applyUsageBatches) or the job is not a usage event at all. Each is a row of
 * `ParkedUsage`, counted in `tollgate_usage_parked_events_total` and logged when parked; the
 * worker CLI lists them and replays them once the cause is fixed. Nothing else is ever parked:
 * every other failure is retried.
 */

/** Text PostgreSQL can store whatever the input held. */
const storable = (s: string) => s.replace(/\u0000/g, '\\u0000');

const INSERT_SQL = `
INSERT INTO "ParkedUsage" ("id","batchId","eventId","tenantId","reason","errorCode","error","payload","createdAt")
SELECT x.id, x.b, NULLIF(x.e, ''), NULLIF(x.t, ''), 'malformed', 'schema', x.m, x.p, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS x(id, b, e, t, m, p)
ON CONFLICT ("id") DO NOTHING`;

type Row = { id: string; batchId: string; eventId: string; tenantId: string; error: string; payload: string };

async function insert(sql: Sql, rows: Row[]): Promise<void> {
  if (!rows.length) return;
  await sql.unsafe(INSERT_SQL, [
    rows.map((r) => r.id),
    rows.map((r) => storable(r.batchId)),
    rows.map((r) => storable(r.eventId)),
    rows.map((r) => storable(r.tenantId)),
    rows.map((r) => storable(r.error).slice(0, 1000)),
    rows.map((r) => storable(r.payload)),
  ]);
}

const str = (v: unknown) => (typeof v === 'string' ? v.slice(0, 200) : '');

/** Events of a batch that are not usage events. Idempotent: a redelivery parks nothing twice. */
export function parkInvalidEvents(
  sql: Sql,
  batchId: string,
  invalid: Array<{ index: number; raw: unknown; error: string }>,
): Promise<void> {
  return insert(
    sql,
    invalid.map((i) => {
      const o = (i.raw ?? {}) as Record<string, unknown>;
      return {
        id: `${batchId}:${i.index}`,
        batchId,
        eventId: str(o.id),
        tenantId: str(o.tenantId),
        error: i.error,
        payload: JSON.stringify(i.raw) ?? 'null',
      };
    }),
  );
}

/** A job that is not a usage batch, kept whole. */
export function parkJob(sql: Sql, job: Job, error: string): Promise<void> {
  const id = String(job.id ?? 'unknown').slice(0, 200);
  return insert(sql, [
    {
      id: `${id}:job`,
      batchId: id,
      eventId: '',
      tenantId: '',
      error,
      payload: JSON.stringify({ name: job.name, data: job.data }) ?? 'null',
    },
  ]);
}

export type ParkedRow = {
  id: string;
  batchId: string;
  eventId: string | null;
  tenantId: string | null;
  reason: string;
  errorCode: string;
  error: string;
  createdAt: Date;
  replayedAt: Date | null;
};

/** Parked usage, oldest first; replayed rows only with `all`. */
export async function listParked(sql: Sql, opts: { all?: boolean; limit?: number } = {}): Promise<ParkedRow[]> {
  return sql.unsafe<ParkedRow[]>(
    `SELECT "id","batchId","eventId","tenantId","reason","errorCode","error","createdAt","replayedAt" FROM "ParkedUsage"
     ${opts.all ? '' : 'WHERE "replayedAt" IS NULL'} ORDER BY "createdAt", "id" LIMIT $1`,
    [opts.limit ?? 1000],
  );
}

export type ReplayResult = { replayed: string[]; failed: Array<{ id: string; error: string }> };

/**
 * Applies parked events again, each as a batch of its own whose id is derived from the parked
 * row (`replay:{id}`): replaying twice, or two operators at once, applies it once. A row whose
 * payload is still not a usage event, or that PostgreSQL still refuses, stays parked and is
 * reported. A job parked whole is replayed when its data is a usage batch now.
 */
export async function replayParked(sql: Sql, ids?: string[]): Promise<ReplayResult> {
  const rows = await sql.unsafe<Array<{ id: string; payload: string }>>(
    `SELECT "id","payload" FROM "ParkedUsage" WHERE "replayedAt" IS NULL ${ids ? 'AND "id" = ANY($1::text[])' : ''} ORDER BY "createdAt","id"`,
    ids ? [ids] : [],
  );
  const out: ReplayResult = { replayed: [], failed: [] };
  for (const row of rows) {
    try {
      const events = parkedEvents(row.payload);
      const batch: UsageBatch = { v: 1, batchId: `replay:${row.id}`, source: 'replay', events };
      await sql.begin(async (tx) => {
        await applyUsageBatchesIn(tx, [batch]);
        await tx.unsafe(`UPDATE "ParkedUsage" SET "replayedAt" = now() WHERE "id" = $1`, [row.id]);
      });
      out.replayed.push(row.id);
    } catch (err) {
      out.failed.push({ id: row.id, error: (err as Error).message.slice(0, 300) });
    }
  }
  return out;
}

function parkedEvents(payload: string): UsageEvent[] {
  const value = JSON.parse(payload) as unknown;
  const job = value as { name?: unknown; data?: { events?: unknown } } | null;
  if (job && typeof job === 'object' && 'data' in job && Array.isArray(job.data?.events)) {
    return job.data.events.map((e) => UsageEvent.parse(e));
  }
  return [UsageEvent.parse(value)];
}
