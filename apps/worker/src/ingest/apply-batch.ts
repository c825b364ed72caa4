import type { Sql, TransactionSql } from 'postgres';
import type { UsageBatch, UsageEvent } from '@tollgate/usage';
import { aggregateBatch } from './aggregate';
import { errorCode, isDataError } from './errors';
import { add, NONE, writeEvents, type WriteResult } from './write-events';

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

/**
 * Records batch ids; returns the ones not seen before. Sorted, so two groups sharing ids wait on
 * each other in one order; a group that finds an id another has not committed yet waits for it.
 */
const CLAIM_SQL = `
INSERT INTO "ProcessedBatch" ("id", "eventCount", "processedAt")
SELECT u.id, u.n, now() FROM unnest($1::text[], $2::int[]) AS u(id, n) ORDER BY u.id
ON CONFLICT ("id") DO NOTHING RETURNING "id"`;

export type GroupResult = {
  /** Per input batch, in order: whether this delivery applied it (false: seen before, or a repeat inside the group). */
  applied: boolean[];
  events: number;
  billable: number;
  rollupRows: number;
  ledgerRows: number;
  orphanBillable: number;
  /** Events set aside because PostgreSQL refused their values (only when isolating). */
  parked: ParkedEvent[];
};

export type ParkedEvent = { id: string; batchId: string; eventId: string | null; tenantId: string | null; code: string; error: string };

export type ApplyOptions = {
  /**
   * Write event by event halves under savepoints until the events PostgreSQL refuses are
   * isolated, and park those. Only after a group failed with a data error: the common path
   * stays one statement with no savepoint.
   */
  isolate?: boolean;
};

type Item = { batch: number; index: number; event: UsageEvent };
const PARK_SQL = `
INSERT INTO "ParkedUsage" ("id","batchId","eventId","tenantId","reason","errorCode","error","payload","createdAt")
SELECT x.id, x.b, x.e, x.t, 'data-error', x.c, x.m, x.p, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) AS x(id, b, e, t, c, m, p)
ON CONFLICT ("id") DO NOTHING`;

/** Text PostgreSQL can store whatever the input held (a NUL is what often got the event parked). */
const storable = (s: string) => s.replace(/\u0000/g, '\\u0000');

/**
 * Applies a group of usage batches in one transaction: their ids are claimed first, so a batch
 * seen before (redelivery, a second worker, a replayed spool) changes nothing, and only the
 * claimed batches' events are written. Rollups, ledger and keys' last use are multi-row upserts,
 * so the write count follows distinct (minute, key) pairs in the group, not events.
 *
 * With `isolate`, events PostgreSQL refuses (a data error: the same on every retry) are found
 * by bisection under savepoints and parked in the same transaction as the rest is written, so
 * one bad event costs log2(n) extra statements and parks itself alone.
 */
export async function applyUsageBatches(sql: Sql, batches: readonly UsageBatch[], opts: ApplyOptions = {}): Promise<GroupResult> {
  return sql.begin((tx) => applyUsageBatchesIn(tx, batches, opts));
}

/** {@link applyUsageBatches} inside the caller's transaction. */
export async function applyUsageBatchesIn(
  tx: TransactionSql,
  batches: readonly UsageBatch[],
  opts: ApplyOptions = {},
): Promise<GroupResult> {
  const firstIndex = new Map<string, number>();
  batches.forEach((b, i) => {
    if (!firstIndex.has(b.batchId)) firstIndex.set(b.batchId, i);
  });
  const ids = [...firstIndex.keys()];
  const counts = ids.map((id) => batches[firstIndex.get(id)!]!.events.length);
  const claimed = new Set((await tx.unsafe<Array<{ id: string }>>(CLAIM_SQL, [ids, counts])).map((r) => r.id));
  const applied = batches.map((b, i) => claimed.has(b.batchId) && firstIndex.get(b.batchId) === i);
  const fresh = batches.filter((_, i) => applied[i]);
  const empty = { applied, ...NONE, parked: [] };
  if (!fresh.length) return empty;
  if (!opts.isolate)
    return {
      applied,
      ...(await writeEvents(
        tx,
        fresh.map((b) => b.events),
      )),
      parked: [],
    };

  // An event id repeated inside one batch counts once; dropped here so halves can't split a pair.
  const items: Item[] = [];
  fresh.forEach((b, batch) => {
    const seen = new Set<string>();
    b.events.forEach((event, index) => {
      if (seen.has(event.id)) return;
      seen.add(event.id);
      items.push({ batch, index, event });
    });
  });
  const parked: Array<ParkedEvent & { payload: string }> = [];
  const attempt = async (part: Item[]): Promise<WriteResult> => {
    try {
      return await tx.savepoint((sp) => writeEvents(sp, byBatch(part, fresh.length)));
    } catch (err) {
      if (!isDataError(err)) throw err;
      if (part.length > 1) {
        const mid = part.length >> 1;
        return add(await attempt(part.slice(0, mid)), await attempt(part.slice(mid)));
      }
      const { batch, index, event } = part[0]!;
      const batchId = fresh[batch]!.batchId;
      parked.push({
        id: `${batchId}:${index}`,
        batchId,
        eventId: event.id,
        tenantId: event.tenantId,
        code: errorCode(err),
        error: storable((err as Error).message ?? String(err)).slice(0, 1000),
        payload: storable(JSON.stringify(event)),
      });
      return NONE;
    }
  };
  const res = await attempt(items);
  if (parked.length) {
    await tx.unsafe(PARK_SQL, [
      parked.map((p) => p.id),
      parked.map((p) => p.batchId),
      parked.map((p) => storable(p.eventId ?? '')),
      parked.map((p) => storable(p.tenantId ?? '')),
      parked.map((p) => p.code),
      parked.map((p) => p.error),
      parked.map((p) => p.payload),
    ]);
  }
  return { applied, ...res, parked: parked.map(({ payload: _payload, ...p }) => p) };
}

function byBatch(items: readonly Item[], batches: number): UsageEvent[][] {
  const out: UsageEvent[][] = Array.from({ length: batches }, () => []);
  for (const it of items) out[it.batch]!.push(it.event);
  return out.filter((e) => e.length);
}

/** One batch on its own: {@link applyUsageBatches} with a group of one. */
export async function applyUsageBatch(sql: Sql, batch: UsageBatch): Promise<ApplyResult> {
  const res = await applyUsageBatches(sql, [batch]);
  return {
    applied: res.applied[0]!,
    events: res.applied[0] ? res.events : aggregateBatch(batch.events).events,
    billable: res.applied[0] ? res.billable : aggregateBatch(batch.events).billable,
    rollupRows: res.rollupRows,
    ledgerRows: res.ledgerRows,
    orphanBillable: res.orphanBillable,
  };
}
