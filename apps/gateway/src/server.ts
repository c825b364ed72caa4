import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { Redis, type RedisOptions } from 'ioredis';
import { createLogger, type Logger } from '@tollgate/config';
import { createKeyspace } from '@tollgate/policy';
import { createColdDecider, createMemoryLimiter, createRedisLimiter, createReservingLimiter, RedisBreaker } from '@tollgate/ratelimit';
import { createUsageProducer } from '@tollgate/usage';
import { createAdminServer, registryMetrics } from './admin/admin-server';
import { createMetrics, type GatewayMetrics } from './admin/metrics';
import { buildApp } from './app';
import { KeyCache } from './auth/key-cache';
import { FailureBudget, registerFailureBudgetMetrics } from './auth/failure-budget';
import { PolicyStore } from './config/policy-store';
import { LastGood } from './config/last-good';
import { PoolRefs } from './config/pool-refs';
import type { GatewayConfig } from './env';
import { createLimitEnforcer, type FallbackReason } from './limits/enforce-limits';
import { createColdPath } from './limits/cold-path';
import { FairShare } from './limits/fair-share';
import { startHeartbeat } from './limits/heartbeat';
import { registerReservationMetrics } from './limits/reservation-metrics';
import { Upstreams } from './proxy/upstreams';
import { HealthChecks } from './proxy/health-checks';
import { ResponseCache } from './cache/response-cache';
import { registerCacheMetrics } from './cache/cache-metrics';
import { usageSinkFromProducer, type UsageSink } from './usage/usage-sink';
import { usageSourceName } from './usage/usage-source';
import { WsConnections } from './websocket/connections';
import { CLOSE } from './websocket/frames';
import { ALPN_PROTOCOLS, attachHttp2, type Http2Transport } from './transport/http2';
import { createGatewayTracer, type GatewayTracer } from './pipeline/trace';

export type Gateway = {
  apps: FastifyInstance[];
  store: PolicyStore;
  keys: KeyCache;
  cache: ResponseCache;
  healthChecks: HealthChecks;
  metrics: GatewayMetrics;
  usage: UsageSink;
  logger: Logger;
  /** Ports actually bound (useful with port 0). */
  listen: () => Promise<{ port: number; tlsPort: number | null }>;
  /** Stops accepting, drains in-flight requests (bounded), flushes usage, closes Redis. */
  shutdown: () => Promise<void>;
  isReady: () => boolean;
  /** Why isReady() is false ('loading', 'draining', 'redis_unavailable_fail_closed'), or null. */
  notReadyReason: () => string | null;
};

export type CreateGatewayOptions = {
  /** Worker slot (0..n-1); keeps the usage spool file stable across restarts of that slot. */
  workerIndex?: number;
  /** True in a node:cluster worker: the instance id then gets the slot index (one spool file each). */
  clustered?: boolean;
  logger?: Logger;
};

const redisRetry = (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1000);
const REDIS_QUIT_WAIT_MS = 1000;

/**
 * QUIT politely when connected, for at most `waitMs`, then drop the socket. A connection that is
 * down is dropped at once: its QUIT would wait in the offline queue (the subscriber's has no
 * retry limit) and hold the process open long after SIGTERM.
 */
export async function closeRedis(c: Redis, waitMs: number): Promise<void> {
  if (c.status !== 'ready') {
    c.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<void>((r) => (timer = setTimeout(r, waitMs)));
  await Promise.race([c.quit().catch(() => undefined), gaveUp]);
  clearTimeout(timer);
  c.disconnect();
}

/** Policy changes within this window are saved to disk once (ADR 0029). */
const LAST_GOOD_DEBOUNCE_MS = 1000;

/** Wires one gateway process: three Redis connections, the policy store, caches, apps. */
export async function createGateway(config: GatewayConfig, opts: CreateGatewayOptions = {}): Promise<Gateway> {
  const logger = opts.logger ?? createLogger('gateway', config.logLevel);
  const keyspace = createKeyspace(config.redisPrefix);
  const metrics = createMetrics();
  const base: RedisOptions = { retryStrategy: redisRetry, lazyConnect: false, connectionName: `tollgate-gateway-${process.pid}` };

  // The request path's connection: never queues while offline. No ioredis commandTimeout (a
  // timer per command): the limiter and the key cache bound their own waits. No auto-pipelining:
  // each HTTP request arrives in its own I/O callback, so its pipelines held one command and
  // cost a Pipeline object, an exec and a nextTick per reply (~7% of CPU in profiles).
  const hot = new Redis(config.redisUrl, {
    ...base,
    enableAutoPipelining: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
  });
  // Configuration loads (snapshots can be large): patient, but also never queueing forever.
  const control = new Redis(config.redisUrl, { ...base, enableOfflineQueue: true, maxRetriesPerRequest: 1, commandTimeout: 5000 });
  const subscriber = new Redis(config.redisUrl, { ...base, enableOfflineQueue: true, maxRetriesPerRequest: null });
  const producerRedis = new Redis(config.redisUrl, { ...base, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  for (const [name, c] of [
    ['hot', hot],
    ['control', control],
    ['subscriber', subscriber],
    ['usage', producerRedis],
  ] as const) {
    c.on('error', (err: Error) => {
      metrics.redisErrors.inc({ op: `connection_${name}` });
      logger.debug({ err: err.message, connection: name }, 'redis connection error');
    });
  }

  // Whether Redis is there for the request path: limits fall to the fail mode only while it is open.
  const breaker = new RedisBreaker({
    redis: hot,
    failures: config.breaker.failures,
    cooldownMs: config.breaker.cooldownMs,
    pingIntervalMs: config.breaker.pingIntervalMs,
    pingTimeoutMs: 2 * config.redisTimeoutMs,
    onChange: (state, reason) => {
      metrics.breakerOpen.set(state === 'closed' ? 0 : 1);
      if (state === 'open') logger.warn({ reason }, 'redis breaker open: limits follow each API fail mode');
      else logger.info({ state, reason }, 'redis breaker');
    },
  });
  const keys = new KeyCache({
    breaker,
    redis: hot,
    keyspace,
    size: config.keyCache.size,
    ttlMs: config.keyCache.ttlMs,
    negativeTtlMs: config.keyCache.negativeTtlMs,
    timeoutMs: config.redisTimeoutMs,
    onRedisError: () => metrics.redisErrors.inc({ op: 'key_lookup' }),
  });
  const websockets = config.websocket.enabled ? new WsConnections() : null;
  /** Open WebSocket connections whose key record changed are judged again, as a new handshake would be. */
  const recheckWebSockets = async (hashes: string[]) => {
    for (const hash of hashes) {
      try {
        websockets!.recheck(hash, await keys.lookup(hash), CLOSE.policy, 'API key no longer valid');
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'websocket key recheck failed');
      }
    }
  };
  /** The last good snapshots on disk (ADR 0029): saved after Redis loads, read when Redis is unreachable at boot. */
  const lastGood = new LastGood({
    dir: config.lastGood.dir,
    maxBytes: config.lastGood.maxBytes,
    debounceMs: LAST_GOOD_DEBOUNCE_MS,
    logger,
  });
  const showSource = () => {
    for (const source of ['redis', 'disk'] as const) metrics.configSource.set({ source }, store.source === source ? 1 : 0);
  };
  const store = new PolicyStore({
    redis: control,
    subscriber,
    keyspace,
    baseDomain: config.baseDomain,
    resyncIntervalMs: config.resyncIntervalMs,
    logger,
    onKeyEvent: (e) => {
      if (e.type === 'key.revoked') {
        keys.revoke(e.hash);
        websockets?.closeKey(e.hash, CLOSE.policy, 'API key revoked');
      } else {
        keys.invalidate(e.hash);
        if (websockets !== null && websockets.count(e.hash) > 0) void recheckWebSockets([e.hash]);
      }
    },
    onResubscribed: () => {
      keys.expireAll();
      // Revocations published while the subscription was down were never heard: look again.
      if (websockets !== null && websockets.size > 0) void recheckWebSockets(websockets.keyHashes());
    },
    onTenantsChanged: (changes) => {
      // Only the swapped tenants are looked at: per-change cost is the tenant's, not the table's.
      if (poolRefs.apply(changes)) upstreams.prune(poolRefs);
      for (const c of changes) {
        if (c.current?.snapshot.apis.some((a) => a.failMode === 'closed')) failClosedTenants.add(c.tenantId);
        else failClosedTenants.delete(c.tenantId);
      }
      healthChecks.syncTenants(changes);
      cache.retainTenants(changes);
      metrics.configVersion.set(store.version);
      metrics.tenants.set(store.tenantCount);
      if (store.source === 'redis') lastGood.schedule(() => store.snapshots());
    },
    onLoaded: () => {
      showSource();
      // The first load from Redis after serving the disk copy: the copy is refreshed even if nothing changed.
      lastGood.schedule(() => store.snapshots());
    },
  });
  const poolRefs = new PoolRefs();
  /** Tenants with an API that fails closed: while Redis is unavailable this process can't serve them. */
  const failClosedTenants = new Set<string>();
  const upstreams = new Upstreams({
    connections: config.upstreamConnections,
    unhealthyThreshold: config.unhealthyThreshold,
    cooldownMs: config.unhealthyCooldownMs,
    onCircuitChange: (t, state) => logger.warn({ targetId: t.id, origin: t.origin, state }, 'upstream circuit changed state'),
  });
  const healthChecks = new HealthChecks({ upstreams, timeoutMs: config.healthCheckTimeoutMs, logger });
  healthChecks.registerMetrics(metrics.registry, () => store.table);
  const cache = new ResponseCache(config.cache);
  registerCacheMetrics(metrics.registry, cache);
  const redisLimiter = createRedisLimiter({ redis: hot, timeoutMs: config.redisTimeoutMs, breaker });
  const reserving = config.limitReservations ? createReservingLimiter({ limiter: redisLimiter }) : null;
  if (reserving) registerReservationMetrics(metrics.registry, reserving);
  const workerIndex = opts.workerIndex ?? 0;
  const heartbeat = startHeartbeat({
    redis: control,
    key: keyspace.liveGateways,
    id: `${usageSourceName(config.instanceId, workerIndex, opts.clustered ?? false)}:${process.pid}`,
  });
  // Every fallback decision is counted; the log says so at most once per 10 s, with the tally.
  let fallbackTally = 0;
  let fallbackLoggedAt = 0;
  const onFallback = (reason: FallbackReason, mode: 'open' | 'closed', result: 'allowed' | 'rate' | 'quota' | 'unavailable') => {
    metrics.limiterFallback.inc({ reason, mode, result });
    fallbackTally++;
    const now = Date.now();
    if (now - fallbackLoggedAt >= 10_000) {
      logger.warn(
        { reason, mode, result, decisions: fallbackTally, liveProcesses: heartbeat.live(), breaker: breaker.state },
        'limits decided without redis (fail mode)',
      );
      fallbackLoggedAt = now;
      fallbackTally = 0;
    }
  };
  const limits = createLimitEnforcer({
    keyspace,
    redis: reserving ?? redisLimiter,
    memory: createMemoryLimiter({ maxKeys: 100_000 }),
    onDecision: (result, source) => metrics.limiterDecisions.inc(result, source),
    liveProcesses: heartbeat.live,
    onFallback,
    denyCacheMaxMs: config.denyCacheMaxMs,
    onLocalRefusal: (reason) => metrics.localRefusals.inc({ reason }),
  });
  const cold = createColdPath({
    decider: config.coldKeyScript ? createColdDecider({ redis: hot, breaker, timeoutMs: config.redisTimeoutMs }) : null,
    keys,
    keyspace,
    limits,
    onResult: (result) => metrics.coldKeys.inc({ result }),
  });
  const fair = new FairShare({
    inflightLimit: config.fairShare.inflight,
    loopDelayMs: config.fairShare.loopDelayMs,
    onShed: (tenant) => metrics.shed.inc({ tenant }),
  });
  const producer = createUsageProducer({
    connection: producerRedis,
    keyspace,
    spoolDir: config.spoolDir,
    source: usageSourceName(config.instanceId, workerIndex, opts.clustered ?? false),
    logger,
    maxBatch: config.usageBatch.maxEvents,
    maxWaitMs: config.usageBatch.maxWaitMs,
  });
  const usage = usageSinkFromProducer(producer);

  const authFailures = new FailureBudget();
  registerFailureBudgetMetrics(metrics.registry, authFailures);
  const lifecycle = { draining: false };
  const tracing = await startGatewayTracing(config, logger);
  const deps = { lifecycle, store, keys, upstreams, limits, usage, metrics, logger, cache, cold, fair, authFailures, websockets, tracing };
  const apps: FastifyInstance[] = [buildApp(config, deps)];
  const h2: Http2Transport[] = [];
  if (config.h2c) h2.push(attachHttp2(apps[0]!, config, 'h2c'));
  if (config.tls) {
    const https = { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) };
    const tlsApp = buildApp(config, deps, { https: config.http2 ? { ...https, ALPNProtocols: ALPN_PROTOCOLS } : https });
    if (config.http2) h2.push(attachHttp2(tlsApp, config, 'tls'));
    apps.push(tlsApp);
  }
  let closing = false;
  const gaugeTimer = setInterval(() => {
    const s = usage.stats();
    metrics.spoolDepth.set(s.spooled);
    metrics.usageBuffered.set(s.buffered);
  }, 1000);
  // Expired entries are dropped when looked up; this frees the ones nobody asks for again.
  const cacheSweep = setInterval(() => cache.sweep(), 30_000);
  cacheSweep.unref();
  gaugeTimer.unref();

  await store.start();
  // Redis unreachable at boot: serve the last good copy rather than 503 until it comes back.
  if (!store.loaded) store.seedFromDisk(lastGood.read());
  showSource();

  /**
   * Why /readyz says 503, or null. Besides loading and draining: while the Redis breaker is open
   * and some API fails closed, that API answers 503 to every call, so the balancer should send its
   * traffic to a gateway that still reaches Redis (all of them, if only this one lost it).
   */
  function notReadyReason(): string | null {
    if (!store.loaded) return 'loading';
    if (closing) return 'draining';
    if (breaker.state === 'open' && failClosedTenants.size > 0) return 'redis_unavailable_fail_closed';
    return null;
  }

  return {
    apps,
    store,
    keys,
    cache,
    healthChecks,
    metrics,
    usage,
    logger,
    isReady: () => notReadyReason() === null,
    notReadyReason,
    async listen() {
      await apps[0]!.listen({ port: config.port, host: config.host });
      let tlsPort: number | null = null;
      if (apps[1] && config.tls) {
        await apps[1].listen({ port: config.tls.port, host: config.host });
        tlsPort = (apps[1].server.address() as AddressInfo).port;
      }
      return { port: (apps[0]!.server.address() as AddressInfo).port, tlsPort };
    },
    async shutdown() {
      if (closing) return;
      closing = true;
      // Not ready first, still serving: balancers that poll /readyz move traffic elsewhere
      // before any connection is closed. During the drain that follows, responses on open
      // connections carry `Connection: close` (Fastify, with return503OnClosing off) instead of a 503.
      if (config.shutdownNotReadyMs > 0) await new Promise((r) => setTimeout(r, config.shutdownNotReadyMs));
      lifecycle.draining = true;
      // Targets keep their last verdict while in-flight requests drain.
      const probesStopped = healthChecks.stop();
      // Upgraded connections never fall idle: they are told to go (1001) so clients reconnect elsewhere.
      websockets?.closeAll(CLOSE.goingAway, 'gateway shutting down');
      const drained = Promise.all(apps.map((a) => a.close()));
      // close() closes connections idle at that moment; keep-alive connections whose last
      // response finishes later must go too, or they hold the drain open until the grace ends.
      const sweeper = setInterval(() => {
        for (const a of apps) (a.server as Server).closeIdleConnections();
      }, 50);
      const grace = new Promise<'timeout'>((r) => setTimeout(r, config.shutdownGraceMs, 'timeout').unref());
      if ((await Promise.race([drained, grace])) === 'timeout') {
        logger.warn('shutdown grace period over; closing remaining connections');
        for (const a of apps) (a.server as Server).closeAllConnections();
        for (const t of h2) t.closeAll();
        await drained;
      }
      clearInterval(sweeper);
      clearInterval(gaugeTimer);
      clearInterval(cacheSweep);
      await probesStopped;
      store.stop();
      await lastGood.stop();
      fair.stop();
      breaker.stop();
      await heartbeat.stop();
      // Unused reserved calls go back to Redis before its connections close.
      await reserving?.close();
      await usage.close();
      // Spans of the drained requests are exported before the process goes.
      await tracing?.tracing.shutdown().catch((err: Error) => logger.warn({ err: err.message }, 'trace export at shutdown failed'));
      await upstreams.close();
      await Promise.all([hot, control, subscriber, producerRedis].map((c) => closeRedis(c, REDIS_QUIT_WAIT_MS)));
    },
  };
}

/**
 * OpenTelemetry, only when the OTEL_* variables turn it on: the SDK is imported here, never
 * before, so a gateway without tracing loads none of it (ADR 0027).
 */
async function startGatewayTracing(config: GatewayConfig, logger: Logger): Promise<GatewayTracer | null> {
  if (config.tracing === null) return null;
  const { startTracing } = await import('@tollgate/telemetry/sdk');
  const tracing = await startTracing(config.tracing, {
    scope: '@tollgate/gateway',
    onError: (message) => logger.warn({ err: message }, 'opentelemetry'),
  });
  logger.info(
    { url: config.tracing.url, protocol: config.tracing.protocol, sampler: config.tracing.sampler, ratio: config.tracing.ratio },
    'tracing on: spans exported over OTLP/HTTP',
  );
  return createGatewayTracer(tracing, config.traceParent);
}

export function startAdminServer(gw: Pick<Gateway, 'isReady' | 'metrics' | 'store'> & Partial<Pick<Gateway, 'notReadyReason'>>) {
  return createAdminServer({
    healthy: () => true,
    ready: gw.isReady,
    metrics: () => registryMetrics(gw.metrics.registry),
    details: () => ({
      tenants: gw.store.tenantCount,
      version: gw.store.version,
      config: gw.store.source,
      reason: gw.notReadyReason?.() ?? null,
    }),
  });
}
