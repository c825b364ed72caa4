import { LATENCY_BUCKETS_MS, isBillable, latencyBucket, type UsageEvent } from '@tollgate/usage';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const BUCKETS = LATENCY_BUCKETS_MS.length + 1;

/** One per-minute rollup row's increments. Counts are plain numbers: a batch is far below 2^53. */
export type RollupDelta = {
  tenantId: string;
  bucketStart: number;
  apiId: string;
  keyId: string;
  consumerId: string;
  subscriptionId: string;
  requests: number;
  status2xx: number;
  status3xx: number;
  status4xx: number;
  status5xx: number;
  rejectedAuth: number;
  rejectedRate: number;
  rejectedQuota: number;
  rejectedOther: number;
  latencyBuckets: number[];
  latencySumMs: number;
  bytesIn: number;
  bytesOut: number;
  cacheHits: number;
};

/**
 * `firstAt` is the earliest event time in the hour: the hour is filed under the period holding
 * it, not the one holding the hour's start, so a subscription's first, partial hour (it began
 * mid-hour) belongs to its first period rather than to the one before it existed.
 */
export type LedgerDelta = {
  subscriptionId: string;
  hourStart: number;
  firstAt: number;
  /** Calls the upstream answered (billable under the default rule). */
  quantity: number;
  /** Of those, answers with a 2xx/3xx status (billable on a plan that bills successes only). */
  successQuantity: number;
};
export type KeyUse = { keyId: string; lastUsedAt: number };

export type BatchAggregate = {
  rollups: RollupDelta[];
  ledger: LedgerDelta[];
  keys: KeyUse[];
  /** Events counted (after dropping repeats of one event id inside the batch). */
  events: number;
  billable: number;
};

/** One batch's events; see aggregateBatches. */
export function aggregateBatch(events: readonly UsageEvent[]): BatchAggregate {
  return aggregateBatches([events]);
}

/**
 * Folds batches into the rows they change. An event id repeated inside one batch counts once
 * (a producer's retried flush); across batches, only the batch id deduplicates. Rows come out
 * sorted by their primary key, so every transaction takes row locks in the same order and
 * concurrent workers cannot deadlock.
 */
export function aggregateBatches(batches: ReadonlyArray<readonly UsageEvent[]>): BatchAggregate {
  const rollups = new Map<string, RollupDelta>();
  const ledger = new Map<string, LedgerDelta>();
  const keys = new Map<string, KeyUse>();
  let seen = new Set<string>();
  let billable = 0;
  let counted = 0;

  for (const events of batches) {
    counted += seen.size;
    seen = new Set<string>();
    for (const e of events) {
      if (seen.has(e.id)) continue;
      seen.add(e.id);

      const minute = e.ts - (((e.ts % MINUTE) + MINUTE) % MINUTE);
      const keyId = e.keyId ?? '';
      const rk = `${e.tenantId}\u0000${minute}\u0000${e.apiId}\u0000${keyId}`;
      let r = rollups.get(rk);
      if (!r) {
        r = {
          tenantId: e.tenantId,
          bucketStart: minute,
          apiId: e.apiId,
          keyId,
          consumerId: e.consumerId ?? '',
          subscriptionId: e.subscriptionId ?? '',
          requests: 0,
          status2xx: 0,
          status3xx: 0,
          status4xx: 0,
          status5xx: 0,
          rejectedAuth: 0,
          rejectedRate: 0,
          rejectedQuota: 0,
          rejectedOther: 0,
          latencyBuckets: new Array<number>(BUCKETS).fill(0),
          latencySumMs: 0,
          bytesIn: 0,
          bytesOut: 0,
          cacheHits: 0,
        };
        rollups.set(rk, r);
      }
      if (e.websocket !== undefined) {
        // A WebSocket connection's interim or final record: its bytes, not another call (ADR 0026).
        r.bytesIn += e.bytesIn;
        r.bytesOut += e.bytesOut;
        continue;
      }
      r.requests++;
      const cls = Math.floor(e.status / 100);
      if (cls === 2) r.status2xx++;
      else if (cls === 3) r.status3xx++;
      else if (cls === 4) r.status4xx++;
      else if (cls === 5) r.status5xx++;
      if (e.rejected === 'auth') r.rejectedAuth++;
      else if (e.rejected === 'rate') r.rejectedRate++;
      else if (e.rejected === 'quota') r.rejectedQuota++;
      else if (e.rejected !== null) r.rejectedOther++;
      r.latencyBuckets[latencyBucket(e.latencyMs)]!++;
      r.latencySumMs += Math.round(e.latencyMs);
      r.bytesIn += e.bytesIn;
      r.bytesOut += e.bytesOut;
      if (e.cacheHit) r.cacheHits++;

      if (isBillable(e)) {
        billable++;
        const hour = e.ts - (((e.ts % HOUR) + HOUR) % HOUR);
        const lk = `${e.subscriptionId}\u0000${hour}`;
        const ok = e.status < 400 ? 1 : 0;
        const l = ledger.get(lk);
        if (l) {
          l.quantity++;
          l.successQuantity += ok;
          if (e.ts < l.firstAt) l.firstAt = e.ts;
        } else ledger.set(lk, { subscriptionId: e.subscriptionId!, hourStart: hour, firstAt: e.ts, quantity: 1, successQuantity: ok });
      }
      if (e.keyId) {
        const k = keys.get(e.keyId);
        if (!k) keys.set(e.keyId, { keyId: e.keyId, lastUsedAt: e.ts });
        else if (e.ts > k.lastUsedAt) k.lastUsedAt = e.ts;
      }
    }
  }
  counted += seen.size;

  const cmp = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);
  return {
    rollups: [...rollups.values()].sort(
      (a, b) => cmp(a.tenantId, b.tenantId) || cmp(a.bucketStart, b.bucketStart) || cmp(a.apiId, b.apiId) || cmp(a.keyId, b.keyId),
    ),
    ledger: [...ledger.values()].sort((a, b) => cmp(a.subscriptionId, b.subscriptionId) || cmp(a.hourStart, b.hourStart)),
    keys: [...keys.values()].sort((a, b) => cmp(a.keyId, b.keyId)),
    events: counted,
    billable,
  };
}
