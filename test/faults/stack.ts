// The fault suite's running instance: its own PostgreSQL database (cloned from the run's
// template), its own Redis server (so a real FLUSHALL hurts nobody else), a real upstream, the
// gateway and the worker as child processes. Each fault test drives open-loop load through the
// gateway, injects its fault, and checks served = rollups = ledger after recovery.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Agent, request } from 'undici';
import { createPrismaClient, newId, type Db } from '@tollgate/db';
import { displayPrefix, generateApiKey, hashApiKey } from '@tollgate/keys';
import { createKeyspace, QUEUES, type Keyspace } from '@tollgate/policy';
import type { StripeStandIn } from '@tollgate/billing/testing';
import { cloneRunDatabase, freePort, testEnv, waitFor } from '../harness/index';
import { spawnGateway, type GatewayProcess } from '../gateway/fixtures';
import { spawnWorker, type WorkerProcess } from '../worker/worker-process';

export type PrivateRedis = { url: string; port: number; client: Redis; stop: () => Promise<void> };

/** A redis-server of the test's own, without persistence: FLUSHALL or a restart loses everything, as in the incident. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: true });
  client.on('error', () => undefined); // refused until the server listens, and after a test stops it
  await waitFor(
    async () => {
      await client.connect().catch(() => undefined);
      return (await client.ping()) === 'PONG';
    },
    { timeoutMs: 10_000, intervalMs: 50, what: 'the private redis-server' },
  );
  return {
    url,
    port,
    client,
    stop: async () => {
      client.disconnect();
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    },
  };
}

export type Upstream = { url: string; server: Server; calls: () => number; stop: () => Promise<void>; start: () => Promise<void> };

/** A JSON upstream that can be stopped (connections refused) and started again on the same port. */
export async function startUpstream(): Promise<Upstream> {
  let calls = 0;
  const port = await freePort();
  let server: Server;
  const listen = async () => {
    server = createServer((req, res) => {
      calls++;
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  };
  await listen();
  return {
    url: `http://127.0.0.1:${port}`,
    get server() {
      return server;
    },
    calls: () => calls,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
    start: listen,
  };
}

export type Tenant = {
  tenantId: string;
  host: string;
  apiId: string;
  planId: string;
  subscriptionId: string;
  liveKey: string;
  testKey: string;
  periodStart: Date;
};

/** A tenant with one API on the upstream, one plan, one subscription, a live and a test key. */
export async function createTenant(
  db: Db,
  upstreamUrl: string,
  plan: {
    monthlyQuota?: number;
    quotaMode?: 'HARD_CAP' | 'OVERAGE';
    billableResponses?: 'UPSTREAM_ANSWERED' | 'SUCCESS_ONLY';
    /** Billed through Stripe: plan, customer and subscription carry Stripe ids, so the worker sends meter events. */
    stripe?: boolean;
    /** The plan's rate limit (requests per window). */
    rateLimit?: { limit: number; windowSeconds: number; algorithm: 'SLIDING_WINDOW' | 'TOKEN_BUCKET' | 'FIXED_WINDOW' };
  } = {},
): Promise<Tenant> {
  const tenantId = newId('tenant');
  const slug = `fault-${tenantId.slice(-8).toLowerCase()}`;
  await db.tenant.create({ data: { id: tenantId, slug, name: 'Faults', allowPrivateTargets: true } });
  const apiId = newId('api');
  await db.api.create({
    data: {
      id: apiId,
      tenantId,
      name: 'Echo',
      slug: 'echo',
      basePath: '/echo',
      headersTimeoutMs: 30_000,
      requestTimeoutMs: 30_000,
      targets: { create: [{ id: newId('target'), url: upstreamUrl }] },
      routes: { create: [{ id: newId('route'), path: '/*' }] },
    },
  });
  const planId = newId('plan');
  await db.plan.create({
    data: {
      id: planId,
      tenantId,
      name: 'Metered',
      slug: 'metered',
      monthlyQuota: plan.monthlyQuota ?? null,
      quotaMode: plan.quotaMode ?? 'OVERAGE',
      billableResponses: plan.billableResponses ?? 'UPSTREAM_ANSWERED',
      ...(plan.stripe
        ? { stripeMeterId: `mtr_${planId.slice(-10)}`, stripeProductId: 'prod_fault', stripeMeteredPriceId: 'price_fault' }
        : {}),
      ...(plan.rateLimit
        ? { rateLimit: plan.rateLimit.limit, rateWindowSeconds: plan.rateLimit.windowSeconds, rateAlgorithm: plan.rateLimit.algorithm }
        : {}),
      planApis: { create: [{ apiId }] },
    },
  });
  const consumerId = newId('consumer');
  await db.consumer.create({
    data: { id: consumerId, tenantId, email: `dev@${slug}.test`, name: 'Dev', ...(plan.stripe ? { stripeCustomerId: `cus_${slug}` } : {}) },
  });
  const subscriptionId = newId('subscription');
  const now = Date.now();
  const periodStart = new Date(now - 86_400_000);
  await db.subscription.create({
    data: {
      id: subscriptionId,
      tenantId,
      consumerId,
      planId,
      currentPeriodStart: periodStart,
      currentPeriodEnd: new Date(now + 29 * 86_400_000),
      ...(plan.stripe ? { stripeSubscriptionId: `sub_${slug}` } : {}),
    },
  });
  const liveKey = generateApiKey('live');
  const testKey = generateApiKey('test');
  for (const [key, env] of [
    [liveKey, 'live'],
    [testKey, 'test'],
  ] as const) {
    await db.apiKey.create({
      data: { id: newId('key'), tenantId, consumerId, subscriptionId, hash: hashApiKey(key), prefix: displayPrefix(key), env },
    });
  }
  return { tenantId, host: `${slug}.localhost`, apiId, planId, subscriptionId, liveKey, testKey, periodStart };
}

export type Stack = {
  database: { url: string; name: string };
  db: Db;
  redis: PrivateRedis;
  keyspace: Keyspace;
  upstream: Upstream;
  gateway: GatewayProcess;
  worker: WorkerProcess;
  usageQueue: Queue;
  /** The Stripe stand-in the worker reports meter events to, when the stack was started with one. */
  stripe: StripeStandIn | null;
  /** Another gateway process on the stack's Redis, with a spool directory of its own; stopped with the stack. */
  spawnGateway: (env?: Record<string, string>) => Promise<GatewayProcess>;
  /** The spool directory of each gateway, in start order. */
  spoolDirs: string[];
  /** Starts the worker again (after a test stopped it) with the same environment. */
  restartWorker: () => Promise<void>;
  stop: () => Promise<void>;
};

/**
 * Faster than production where only the clock differs, never in what is proven: backoff capped
 * at 2 s instead of 30 s (so recovery is seen within seconds of the database returning), the
 * restore and scheduler checks every 500 ms instead of 5 s.
 */
export type StackOptions = {
  /** Meter events go to this stand-in (the real `stripe` SDK), every second, the running hour included. */
  stripe?: StripeStandIn;
  /** Extra environment of the stack's first gateway (e.g. GATEWAY_WORKERS). */
  gatewayEnv?: Record<string, string>;
};

export async function startStack(
  label: string,
  setup: (db: Db, upstreamUrl: string) => Promise<void>,
  opts: StackOptions = {},
): Promise<Stack> {
  const cloned = await cloneRunDatabase(label);
  const db = createPrismaClient(cloned.url, { max: 4 });
  const redis = await startPrivateRedis();
  const keyspace = createKeyspace(`tgf${label}`);
  const upstream = await startUpstream();
  await setup(db, upstream.url);
  const workerEnv = {
    DATABASE_URL: cloned.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: keyspace.prefix,
    WORKER_CONCURRENCY: '8',
    WORKER_RETRY_BASE_MS: '200',
    WORKER_RETRY_MAX_MS: '2000',
    METER_REPORT_EVERY_MS: '1000',
    COMPACT_EVERY_MS: '3600000',
    RECONCILE_EVERY_MS: '3600000',
    REDIS_RESTORE_CHECK_MS: '500',
    SCHEDULER_CHECK_MS: '500',
    OUTBOX_POLL_MS: '500',
    ...(opts.stripe
      ? {
          STRIPE_SECRET_KEY: opts.stripe.apiKey,
          STRIPE_API_HOST: '127.0.0.1',
          STRIPE_API_PORT: String(opts.stripe.port),
          STRIPE_API_PROTOCOL: 'http',
          STRIPE_TIMEOUT_MS: '2000',
          METER_SETTLE_MS: '0',
          METER_REPORT_RUNNING_HOUR: 'true',
        }
      : {}),
  };
  let worker = await spawnWorker(workerEnv);
  // The worker's restore watch publishes every snapshot and key to the empty Redis.
  await waitFor(async () => (await redis.client.exists(`${keyspace.prefix}:meta:published`)) === 1, {
    timeoutMs: 30_000,
    intervalMs: 100,
    what: 'the first publish',
  });
  const spools: string[] = [];
  const gateways: GatewayProcess[] = [];
  const startGateway = async (env: Record<string, string> = {}) => {
    const spool = mkdtempSync(path.join(tmpdir(), `tg-fault-${label}-`));
    spools.push(spool);
    const g = await spawnGateway(
      {
        REDIS_URL: redis.url,
        REDIS_PREFIX: keyspace.prefix,
        GATEWAY_SPOOL_DIR: spool,
        GATEWAY_USAGE_BATCH_WAIT_MS: '50',
        GATEWAY_REDIS_TIMEOUT_MS: '1000',
        GATEWAY_KEY_CACHE_TTL_MS: '30000',
        ...env,
      },
      { startTimeoutMs: 90_000 },
    );
    gateways.push(g);
    return g;
  };
  const gateway = await startGateway(opts.gatewayEnv);
  const usageQueue = new Queue(QUEUES.usage, { connection: redis.client, prefix: keyspace.bullPrefix });
  const stack: Stack = {
    database: { url: cloned.url, name: new URL(cloned.url).pathname.slice(1) },
    db,
    redis,
    keyspace,
    upstream,
    gateway,
    worker,
    usageQueue,
    stripe: opts.stripe ?? null,
    spawnGateway: startGateway,
    spoolDirs: spools,
    restartWorker: async () => {
      worker = await spawnWorker(workerEnv);
      stack.worker = worker;
    },
    stop: async () => {
      await usageQueue.close().catch(() => undefined);
      for (const g of gateways) if (g.child.exitCode === null && g.child.signalCode === null) await g.stop('SIGKILL');
      if (stack.worker.child.exitCode === null) stack.worker.child.kill('SIGKILL');
      await upstream.stop().catch(() => undefined);
      await redis.stop();
      await db.$disconnect();
      await cloned.drop();
      for (const s of spools) rmSync(s, { recursive: true, force: true });
    },
  };
  return stack;
}

export type LoadResult = { sent: number; byStatus: Map<number, number>; errors: number; ok: number };

const agent = new Agent({ connections: 64, keepAliveTimeout: 10_000 });

/** One request through the gateway; the status, or 0 when the connection failed. */
export async function call(gatewayPort: number, host: string, key: string, pathname = '/echo/item'): Promise<number> {
  try {
    const res = await request(`http://127.0.0.1:${gatewayPort}${pathname}`, {
      headers: { host, 'x-api-key': key },
      dispatcher: agent,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    await res.body.dump();
    return res.statusCode;
  } catch {
    return 0;
  }
}

/**
 * Open-loop load: `rate` requests a second for `durationMs`, sent on schedule whether or not
 * earlier ones were answered. `during` runs alongside (the fault); the result counts statuses.
 */
export async function runLoad(
  gatewayPort: number,
  host: string,
  key: string,
  { rate, durationMs }: { rate: number; durationMs: number },
  during?: () => Promise<void>,
): Promise<LoadResult> {
  const byStatus = new Map<number, number>();
  const pending: Promise<void>[] = [];
  const total = Math.round((durationMs / 1000) * rate);
  let sent = 0;
  const started = performance.now();
  const fault = during?.();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
      while (sent < due) {
        sent++;
        pending.push(
          call(gatewayPort, host, key).then((s) => {
            byStatus.set(s, (byStatus.get(s) ?? 0) + 1);
          }),
        );
      }
      if (sent >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 5);
  });
  await Promise.all(pending);
  await fault;
  return {
    sent,
    byStatus,
    errors: byStatus.get(0) ?? 0,
    ok: [...byStatus].filter(([s]) => s >= 200 && s < 300).reduce((a, [, n]) => a + n, 0),
  };
}

/** What PostgreSQL holds for a subscription: rollup requests and 2xx, ledger quantity. */
export async function billedAndCounted(db: Db, t: Pick<Tenant, 'tenantId' | 'subscriptionId'>) {
  const r = await db.usageRollup.aggregate({
    where: { tenantId: t.tenantId, granularity: 'minute' },
    _sum: { requests: true, status2xx: true, status5xx: true },
  });
  const l = await db.ledgerLine.aggregate({ where: { subscriptionId: t.subscriptionId }, _sum: { quantity: true } });
  return {
    requests: Number(r._sum.requests ?? 0n),
    ok: Number(r._sum.status2xx ?? 0n),
    errors5xx: Number(r._sum.status5xx ?? 0n),
    ledger: Number(l._sum.quantity ?? 0n),
  };
}

/** Waits until the rollups hold `requests` calls for the tenant and the usage queue is empty. */
export async function settle(stack: Stack, t: Tenant, requests: number, timeoutMs = 90_000) {
  await waitFor(
    async () => {
      const got = await billedAndCounted(stack.db, t);
      const counts = await stack.usageQueue.getJobCounts('waiting', 'active', 'delayed');
      return got.requests >= requests && (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) === 0 ? got : null;
    },
    { timeoutMs, intervalMs: 250, what: `${requests} requests in the rollups` },
  );
  return billedAndCounted(stack.db, t);
}

/** An admin connection to the PostgreSQL server (not the test's database) for fault injection. */
export async function adminClient(): Promise<pg.Client> {
  const url = new URL(testEnv().databaseUrl);
  url.pathname = '/postgres';
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  return c;
}

export type { ChildProcess };

/** Calls until the gateway serves the tenant, then waits until that call is in the rollups (a clean baseline). */
export async function warmUp(stack: Stack, t: Tenant, key = t.liveKey): Promise<void> {
  await waitFor(async () => (await call(stack.gateway.port, t.host, key)) === 200, {
    timeoutMs: 30_000,
    what: 'the gateway serving the tenant',
  });
  await settle(stack, t, 1);
  await waitFor(async () => (await billedAndCounted(stack.db, t)).ok >= 1, { timeoutMs: 30_000, what: 'the warm-up call applied' });
}
