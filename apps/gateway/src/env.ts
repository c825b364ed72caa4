import { availableParallelism } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { booleanFromEnv, cidrList, commonConfig, commonEnv, EnvError, parseEnv } from '@tollgate/config';
import { telemetryEnv, tracingConfig } from '@tollgate/telemetry';

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
const positiveInt = (fallback: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().positive().max(max).default(fallback);

export const gatewayEnv = {
  ...commonEnv,
  ...telemetryEnv,
  GATEWAY_PORT: port(8080),
  GATEWAY_HOST: z.string().default('0.0.0.0'),
  GATEWAY_ADMIN_PORT: port(9091),
  GATEWAY_ADMIN_HOST: z.string().default('0.0.0.0'),
  GATEWAY_BASE_DOMAIN: z
    .string()
    .regex(/^[a-z0-9.-]+$/i)
    .default('localhost')
    .transform((v) => v.toLowerCase()),
  /** Processes to run; 0 or unset = one per core. */
  GATEWAY_WORKERS: z.coerce.number().int().min(0).max(256).default(0),
  GATEWAY_TRUSTED_PROXIES: cidrList,
  /**
   * Whose incoming W3C traceparent the gateway's server span continues (ADR 0027): `trusted` =
   * peers in GATEWAY_TRUSTED_PROXIES (anyone else starts a new trace, linked to theirs), `any`.
   */
  GATEWAY_TRACE_PARENT: z.enum(['trusted', 'any']).default('trusted'),
  GATEWAY_SPOOL_DIR: z.string().default('.data/spool'),
  /** Where the last good policy snapshots are kept (docs/adr/0029); default: `state` beside GATEWAY_SPOOL_DIR. */
  GATEWAY_STATE_DIR: z.string().min(1).optional(),
  /** Largest last good configuration file written or read; a larger one is ignored. */
  GATEWAY_STATE_MAX_BYTES: positiveInt(256 * 1024 * 1024),
  GATEWAY_TLS_CERT: z.string().optional(),
  GATEWAY_TLS_KEY: z.string().optional(),
  GATEWAY_TLS_PORT: port(8443),
  /** HTTP/2 offered by ALPN on the TLS port (HTTP/1.1 stays the fallback) (docs/adr/0026). */
  GATEWAY_HTTP2: booleanFromEnv(true),
  /** HTTP/2 with prior knowledge (h2c) on the plain port, beside HTTP/1.1 (docs/adr/0026). */
  GATEWAY_H2C: booleanFromEnv(false),
  /** Streams one HTTP/2 connection may have open at once. */
  GATEWAY_H2_MAX_STREAMS: positiveInt(100, 10_000),
  /** WebSocket upgrades proxied (docs/adr/0026); false = Upgrade is stripped as before. */
  GATEWAY_WEBSOCKETS: booleanFromEnv(true),
  /** Open WebSocket connections one key may hold in one gateway process (0 = no limit). */
  GATEWAY_WS_MAX_CONNECTIONS_PER_KEY: z.coerce.number().int().min(0).max(1_000_000).default(10),
  /** Largest WebSocket frame payload relayed in either direction; a bigger one closes the connection (1009). */
  GATEWAY_WS_MAX_FRAME_BYTES: positiveInt(1024 * 1024, 1024 * 1024 * 1024),
  /** How often an open WebSocket connection writes an interim usage record. */
  GATEWAY_WS_USAGE_INTERVAL_MS: positiveInt(60_000, 3_600_000),
  /**
   * Limit reservations (docs/adr/0013): hot keys take blocks of calls from Redis in advance and
   * decide most calls without a round trip. Sliding windows and quotas only; `false` decides every
   * call in Redis.
   */
  GATEWAY_LIMIT_RESERVATIONS: booleanFromEnv(true),
  /**
   * Garbage collection on the JavaScript thread only (docs/adr/0014). Cluster workers get
   * `--single-threaded-gc` from the primary; a single process needs it on its command line.
   */
  GATEWAY_SINGLE_THREADED_GC: booleanFromEnv(true),
  /**
   * Upper bound on any Redis call made while a request waits (docs/adr/0020). A reply slower than
   * this counts as a failed round trip; the fail mode applies only while the breaker is open.
   */
  GATEWAY_REDIS_TIMEOUT_MS: positiveInt(1_000, 10_000),
  /** Consecutive failed round trips that open the Redis breaker, and how long it stays open before a probe. */
  GATEWAY_REDIS_BREAKER_FAILURES: positiveInt(5, 1000),
  GATEWAY_REDIS_BREAKER_COOLDOWN_MS: positiveInt(1_000, 60_000),
  /** Health PING of the request path's connection; unanswered within 2 × the Redis timeout it opens the breaker. */
  GATEWAY_REDIS_PING_INTERVAL_MS: positiveInt(1_000, 60_000),
  /** A cold key's lookup and limit decision in one script call (single Redis only). */
  GATEWAY_COLD_KEY_SCRIPT: booleanFromEnv(true),
  /** A refused key is refused locally until its reset, for at most this long (0 = no deny cache). */
  GATEWAY_DENY_CACHE_MAX_MS: z.coerce.number().int().min(0).max(3_600_000).default(10_000),
  /**
   * Fair share (docs/adr/0020): past this many requests in flight in one process, or this much
   * event-loop delay, a tenant holding more than its share of in-flight requests is answered 503.
   */
  GATEWAY_FAIR_SHARE_INFLIGHT: positiveInt(256, 1_000_000),
  GATEWAY_FAIR_SHARE_LOOP_DELAY_MS: positiveInt(50, 60_000),
  GATEWAY_MAX_HEADER_BYTES: positiveInt(16 * 1024, 1024 * 1024),
  GATEWAY_MAX_BODY_BYTES: positiveInt(10 * 1024 * 1024),
  /** Longest request target (path and query) proxied; longer ones get 414. Bounded by GATEWAY_MAX_HEADER_BYTES. */
  GATEWAY_MAX_TARGET_BYTES: positiveInt(8 * 1024, 1024 * 1024),
  /** Time allowed to receive a whole request from the client (Node's requestTimeout). */
  GATEWAY_REQUEST_TIMEOUT_MS: positiveInt(60_000),
  GATEWAY_HEADERS_TIMEOUT_MS: positiveInt(10_000),
  GATEWAY_KEEP_ALIVE_TIMEOUT_MS: positiveInt(65_000),
  GATEWAY_SHUTDOWN_GRACE_MS: positiveInt(25_000),
  /**
   * After SIGTERM, how long the gateway keeps serving normally while /readyz says 503, so load
   * balancers stop sending before the drain starts (0 when something else does it, e.g. a
   * Kubernetes preStop pause).
   */
  GATEWAY_SHUTDOWN_NOT_READY_MS: z.coerce.number().int().min(0).max(600_000).default(0),
  GATEWAY_KEY_CACHE_SIZE: positiveInt(100_000),
  GATEWAY_KEY_CACHE_TTL_MS: positiveInt(30_000),
  GATEWAY_KEY_CACHE_NEGATIVE_TTL_MS: positiveInt(5_000),
  GATEWAY_RESYNC_INTERVAL_MS: positiveInt(5_000),
  /** How long a target that keeps failing stays out of rotation. */
  GATEWAY_UNHEALTHY_COOLDOWN_MS: positiveInt(10_000),
  GATEWAY_UNHEALTHY_THRESHOLD: positiveInt(3, 1000),
  GATEWAY_UPSTREAM_CONNECTIONS: positiveInt(128, 10_000),
  /** Response cache (routes with cacheTtlSeconds > 0), per process. */
  GATEWAY_CACHE_MAX_ENTRIES: positiveInt(10_000, 10_000_000),
  GATEWAY_CACHE_MAX_BYTES: positiveInt(64 * 1024 * 1024),
  GATEWAY_CACHE_MAX_ENTRY_BYTES: positiveInt(1024 * 1024),
  /** Longest an active health probe may take (capped by the target's interval). */
  GATEWAY_HEALTH_CHECK_TIMEOUT_MS: positiveInt(2_000, 60_000),
  GATEWAY_ACCESS_LOG: booleanFromEnv(true),
  /** Usage events per BullMQ batch job, and the longest an event waits for its batch. */
  GATEWAY_USAGE_BATCH_EVENTS: positiveInt(500, 10_000),
  GATEWAY_USAGE_BATCH_WAIT_MS: positiveInt(250, 60_000),
  /** Instance name in usage batches (and its spool file); defaults to {hostname}-{worker index}. */
  GATEWAY_INSTANCE_ID: z.string().optional(),
};

export type GatewayConfig = ReturnType<typeof toConfig>;

function toConfig(env: ReturnType<typeof parseEnv<typeof gatewayEnv>>) {
  if (Boolean(env.GATEWAY_TLS_CERT) !== Boolean(env.GATEWAY_TLS_KEY)) {
    throw new EnvError(['GATEWAY_TLS_CERT and GATEWAY_TLS_KEY must be set together']);
  }
  return {
    ...commonConfig(env),
    port: env.GATEWAY_PORT,
    host: env.GATEWAY_HOST,
    adminPort: env.GATEWAY_ADMIN_PORT,
    adminHost: env.GATEWAY_ADMIN_HOST,
    baseDomain: env.GATEWAY_BASE_DOMAIN,
    workers: env.GATEWAY_WORKERS || availableParallelism(),
    trustedProxies: env.GATEWAY_TRUSTED_PROXIES,
    spoolDir: env.GATEWAY_SPOOL_DIR,
    lastGood: {
      dir: env.GATEWAY_STATE_DIR ?? path.join(path.dirname(path.resolve(env.GATEWAY_SPOOL_DIR)), 'state'),
      maxBytes: env.GATEWAY_STATE_MAX_BYTES,
    },
    tls:
      env.GATEWAY_TLS_CERT && env.GATEWAY_TLS_KEY
        ? { certFile: env.GATEWAY_TLS_CERT, keyFile: env.GATEWAY_TLS_KEY, port: env.GATEWAY_TLS_PORT }
        : null,
    http2: env.GATEWAY_HTTP2,
    h2c: env.GATEWAY_H2C,
    h2MaxStreams: env.GATEWAY_H2_MAX_STREAMS,
    websocket: {
      enabled: env.GATEWAY_WEBSOCKETS,
      maxPerKey: env.GATEWAY_WS_MAX_CONNECTIONS_PER_KEY,
      maxFrameBytes: env.GATEWAY_WS_MAX_FRAME_BYTES,
      usageIntervalMs: env.GATEWAY_WS_USAGE_INTERVAL_MS,
    },
    redisTimeoutMs: env.GATEWAY_REDIS_TIMEOUT_MS,
    breaker: {
      failures: env.GATEWAY_REDIS_BREAKER_FAILURES,
      cooldownMs: env.GATEWAY_REDIS_BREAKER_COOLDOWN_MS,
      pingIntervalMs: env.GATEWAY_REDIS_PING_INTERVAL_MS,
    },
    coldKeyScript: env.GATEWAY_COLD_KEY_SCRIPT,
    denyCacheMaxMs: env.GATEWAY_DENY_CACHE_MAX_MS,
    fairShare: { inflight: env.GATEWAY_FAIR_SHARE_INFLIGHT, loopDelayMs: env.GATEWAY_FAIR_SHARE_LOOP_DELAY_MS },
    limitReservations: env.GATEWAY_LIMIT_RESERVATIONS,
    singleThreadedGc: env.GATEWAY_SINGLE_THREADED_GC,
    maxHeaderBytes: env.GATEWAY_MAX_HEADER_BYTES,
    maxBodyBytes: env.GATEWAY_MAX_BODY_BYTES,
    maxTargetBytes: env.GATEWAY_MAX_TARGET_BYTES,
    requestTimeoutMs: env.GATEWAY_REQUEST_TIMEOUT_MS,
    headersTimeoutMs: env.GATEWAY_HEADERS_TIMEOUT_MS,
    keepAliveTimeoutMs: env.GATEWAY_KEEP_ALIVE_TIMEOUT_MS,
    shutdownGraceMs: env.GATEWAY_SHUTDOWN_GRACE_MS,
    shutdownNotReadyMs: env.GATEWAY_SHUTDOWN_NOT_READY_MS,
    keyCache: {
      size: env.GATEWAY_KEY_CACHE_SIZE,
      ttlMs: env.GATEWAY_KEY_CACHE_TTL_MS,
      negativeTtlMs: env.GATEWAY_KEY_CACHE_NEGATIVE_TTL_MS,
    },
    resyncIntervalMs: env.GATEWAY_RESYNC_INTERVAL_MS,
    unhealthyCooldownMs: env.GATEWAY_UNHEALTHY_COOLDOWN_MS,
    unhealthyThreshold: env.GATEWAY_UNHEALTHY_THRESHOLD,
    upstreamConnections: env.GATEWAY_UPSTREAM_CONNECTIONS,
    cache: {
      maxEntries: env.GATEWAY_CACHE_MAX_ENTRIES,
      maxBytes: env.GATEWAY_CACHE_MAX_BYTES,
      maxEntryBytes: env.GATEWAY_CACHE_MAX_ENTRY_BYTES,
    },
    healthCheckTimeoutMs: env.GATEWAY_HEALTH_CHECK_TIMEOUT_MS,
    accessLog: env.GATEWAY_ACCESS_LOG,
    usageBatch: { maxEvents: env.GATEWAY_USAGE_BATCH_EVENTS, maxWaitMs: env.GATEWAY_USAGE_BATCH_WAIT_MS },
    /** OpenTelemetry tracing from the OTEL_* variables; null = off (the default). */
    tracing: tracingConfig(env, 'tollgate-gateway'),
    traceParent: env.GATEWAY_TRACE_PARENT,
    /** null = `{hostname}-{worker index}`, stable across restarts of a worker slot. */
    instanceId: env.GATEWAY_INSTANCE_ID ?? null,
  };
}

/** Parses the gateway's environment once, at boot; everything below receives the result. */
export function loadGatewayConfig(raw: Record<string, string | undefined> = process.env): GatewayConfig {
  return toConfig(parseEnv(gatewayEnv, raw));
}

// The trusted-proxy list and its matcher are shared with the console (packages/config).
export { createTrustedProxyCheck, normalizeIp } from '@tollgate/config';
