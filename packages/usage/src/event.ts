import { z } from 'zod';

export const USAGE_BATCH_VERSION = 1;
/** BullMQ job name for a usage batch; the queue is QUEUES.usage from @tollgate/policy. */
export const USAGE_JOB_NAME = 'usage.batch.v1';

/** Why the gateway refused a request itself (null = it was proxied). */
export const RejectReason = z.enum(['auth', 'forbidden', 'rate', 'quota', 'invalid', 'unavailable']);
export type RejectReason = z.infer<typeof RejectReason>;

/** Upper bounds (ms) of the latency histogram buckets; one more bucket counts everything above. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] as const;

export function latencyBucket(ms: number): number {
  for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) if (ms <= LATENCY_BUCKETS_MS[i]!) return i;
  return LATENCY_BUCKETS_MS.length;
}

/** One event per request the gateway handled for a tenant, proxied or rejected. */
export const UsageEvent = z.object({
  id: z.string().length(26),
  ts: z.number().int(),
  tenantId: z.string(),
  apiId: z.string(),
  routeId: z.string().nullable(),
  keyId: z.string().nullable(),
  consumerId: z.string().nullable(),
  subscriptionId: z.string().nullable(),
  planId: z.string().nullable(),
  method: z.string().max(16),
  status: z.number().int().min(100).max(599),
  /** Whole time in the gateway, ms (fractional). */
  latencyMs: z.number().nonnegative(),
  /** Time waiting for the upstream, ms; null when not proxied. */
  upstreamLatencyMs: z.number().nonnegative().nullable(),
  bytesIn: z.number().int().nonnegative(),
  bytesOut: z.number().int().nonnegative(),
  cacheHit: z.boolean(),
  rejected: RejectReason.nullable(),
  /**
   * Who produced the response (ADR 0017): `upstream` when the upstream answered (any status),
   * `gateway` when the gateway refused or failed the call itself (connect failure, timeout,
   * open circuit, its own 5xx). Added after v1 shipped, so optional: an event without it was
   * upstream-answered exactly when `rejected` is null, as before.
   */
  answeredBy: z.enum(['upstream', 'gateway']).optional(),
  /** A call made with a `tg_test_` key: analytics only, never billed. Absent = live. */
  test: z.boolean().optional(),
  /**
   * Present on a WebSocket connection's usage record (ADR 0026), never on a request's: written
   * every interval while the connection is open and once when it closes, each record carrying
   * what happened since the one before (`bytesIn`/`bytesOut` too), so a lost process loses at most
   * one interval and sums are totals. The handshake is the call (its own event, status 101); these
   * records add bytes and time, not calls, and are never billed. Added after v1: optional.
   */
  websocket: z
    .object({
      /** The handshake's request id: every record of one connection carries it. */
      connectionId: z.string().max(64),
      /** 0, 1, 2… per connection. */
      seq: z.number().int().nonnegative(),
      /** The connection closed with this record. */
      final: z.boolean(),
      durationMs: z.number().nonnegative(),
      /** Data messages client → upstream and upstream → client (control frames not counted). */
      messagesIn: z.number().int().nonnegative(),
      messagesOut: z.number().int().nonnegative(),
      /** Close code seen (or sent by the gateway), on the final record. */
      closeCode: z.number().int().min(0).max(4999).nullable(),
    })
    .optional(),
  /**
   * The gateway's server span (W3C traceparent) when the request was traced and sampled
   * (ADR 0027): the worker links its batch span to it. Absent otherwise.
   */
  traceparent: z.string().max(64).optional(),
});
export type UsageEvent = z.infer<typeof UsageEvent>;

/** The BullMQ job payload; its job id is `batchId`, so a retried add is idempotent. */
export const UsageBatch = z.object({
  v: z.literal(USAGE_BATCH_VERSION),
  batchId: z.string().length(26),
  source: z.string(),
  events: z.array(UsageEvent),
});
export type UsageBatch = z.infer<typeof UsageBatch>;

/** Whether the upstream answered the call (see `answeredBy`; older events infer it). */
export const answeredByUpstream = (e: UsageEvent) => (e.answeredBy ? e.answeredBy === 'upstream' : e.rejected === null);

/**
 * Whether an event can count toward billing: a live key's call the upstream answered, on a
 * subscription. The plan may narrow it further to 2xx/3xx (the worker applies that rule).
 */
export const isBillable = (e: UsageEvent) =>
  e.subscriptionId !== null && e.test !== true && e.rejected === null && e.websocket === undefined && answeredByUpstream(e);

/**
 * Per-minute usage rollups are kept this many days, then only hour and day rows remain (the
 * worker prunes minutes once their hour is compacted; the console reads older windows by hour).
 */
export const MINUTE_ROLLUP_KEEP_DAYS = 14;
