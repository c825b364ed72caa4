/**
 * Ingestion benchmark: how many usage events per second the worker applies to PostgreSQL, and
 * how many rows it writes per event.
 *
 *   npm run bench:ingest -- [--events 600000] [--batch 1000] [--keys 200] [--minutes 2] [--mode both|direct|queue]
 *                           [--concurrency 4] (direct) [--queue-concurrency 48 --group-max 20000 --db-parallel 2] (queue)
 *
 * It makes a database of its own (dropped afterwards), seeds tenants, plans, subscriptions and
 * keys, pre-builds the batches (generation is not timed), then:
 *  - direct: one transaction per batch (applyUsageBatch), `concurrency` at a time: the baseline;
 *  - queue:  adds them to the BullMQ `usage` queue and lets the real processor drain it
 *            (validation, Redis, job bookkeeping and group commit included), in one process.
 * Both runs check that the rollups and the ledger total exactly the events sent.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpus, loadavg } from 'node:os';
import pg from 'pg';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { monotonicFactory } from 'ulid';
import { createLogger } from '@tollgate/config';
import { createPrismaClient, newId } from '@tollgate/db';
import { createKeyspace, QUEUES } from '@tollgate/policy';
import { USAGE_BATCH_VERSION, USAGE_JOB_NAME, type UsageBatch, type UsageEvent } from '@tollgate/usage';
import { createSql } from '../apps/worker/src/db';
import { applyUsageBatch } from '../apps/worker/src/ingest/apply-batch';
import { createMetrics } from '../apps/worker/src/metrics';
import { startUsageWorker } from '../apps/worker/src/queues/usage';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '600000' },
    batch: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '4' },
    keys: { type: 'string', default: '200' },
    minutes: { type: 'string', default: '2' },
    mode: { type: 'string', default: 'both' },
    'queue-concurrency': { type: 'string', default: '48' },
    'group-max': { type: 'string', default: '20000' },
    'db-parallel': { type: 'string', default: '2' },
  },
});
const EVENTS = Number(args.events);
const BATCH = Number(args.batch);
const CONCURRENCY = Number(args.concurrency);
const KEYS = Number(args.keys);
const MINUTES = Number(args.minutes);
const out = (s: string) => process.stdout.write(`${s}\n`);

const baseUrl = process.env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const dbName = `tg_bench_${randomBytes(3).toString('hex')}`;
const admin = new pg.Client({ connectionString: baseUrl });
await admin.connect();
await admin.query(`CREATE DATABASE "${dbName}"`);
const url = new URL(baseUrl);
url.pathname = `/${dbName}`;
const databaseUrl = url.toString();

async function main() {
  const migrated = spawnSync(process.execPath, [path.join(root, 'scripts/db.mjs'), 'migrate', databaseUrl], {
    cwd: root,
    encoding: 'utf8',
  });
  if (migrated.status !== 0) throw new Error(`migrate failed: ${migrated.stderr}`);
  const db = createPrismaClient(databaseUrl, { max: 4 });
  const sql = createSql(databaseUrl, CONCURRENCY + 2);

  // 10 keys per tenant, one subscription per key.
  type Key = { tenantId: string; apiId: string; keyId: string; consumerId: string; subscriptionId: string; planId: string };
  const keys: Key[] = [];
  const periodStart = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1));
  const periodEnd = new Date(Date.UTC(periodStart.getUTCFullYear(), periodStart.getUTCMonth() + 1, 1));
  for (let t = 0; t < Math.ceil(KEYS / 10); t++) {
    const tenantId = newId('tenant');
    const planId = newId('plan');
    const apiId = newId('api');
    await db.tenant.create({ data: { id: tenantId, slug: `bench-${t}-${randomBytes(2).toString('hex')}`, name: 'bench' } });
    await db.plan.create({ data: { id: planId, tenantId, name: 'Pro', slug: 'pro' } });
    for (let k = 0; k < 10 && keys.length < KEYS; k++) {
      const consumerId = newId('consumer');
      const subscriptionId = newId('subscription');
      const keyId = newId('key');
      await db.consumer.create({ data: { id: consumerId, tenantId, email: `${consumerId}@bench.test`, name: 'b' } });
      await db.subscription.create({
        data: { id: subscriptionId, tenantId, consumerId, planId, currentPeriodStart: periodStart, currentPeriodEnd: periodEnd },
      });
      await db.apiKey.create({
        data: { id: keyId, tenantId, consumerId, subscriptionId, hash: randomBytes(32).toString('hex'), prefix: 'tg_live_bench' },
      });
      keys.push({ tenantId, apiId, keyId, consumerId, subscriptionId, planId });
    }
  }

  const ulid = monotonicFactory();
  function buildBatches(startMs: number): UsageBatch[] {
    const span = MINUTES * 60_000;
    const batches: UsageBatch[] = [];
    let i = 0;
    while (i < EVENTS) {
      const events: UsageEvent[] = [];
      for (let j = 0; j < BATCH && i < EVENTS; j++, i++) {
        const k = keys[(i * 7919) % keys.length]!;
        const status = i % 50 === 0 ? 500 : i % 20 === 0 ? 404 : 200;
        events.push({
          id: ulid(),
          ts: startMs + Math.floor((i / EVENTS) * span),
          tenantId: k.tenantId,
          apiId: k.apiId,
          routeId: null,
          keyId: k.keyId,
          consumerId: k.consumerId,
          subscriptionId: k.subscriptionId,
          planId: k.planId,
          method: 'GET',
          status,
          latencyMs: (i % 97) + 0.5,
          upstreamLatencyMs: i % 97,
          bytesIn: 200,
          bytesOut: 2000,
          cacheHit: i % 10 === 0,
          rejected: i % 100 === 1 ? 'rate' : null,
        });
      }
      batches.push({ v: USAGE_BATCH_VERSION, batchId: ulid(), source: 'bench', events });
    }
    return batches;
  }

  async function totals(startMs: number) {
    const [r] = await sql.unsafe(
      `SELECT COALESCE(sum("requests"),0)::bigint AS n, count(*)::int AS rows FROM "UsageRollup" WHERE "granularity"='minute' AND "bucketStart" >= $1`,
      [new Date(startMs)],
    );
    const [l] = await sql.unsafe(
      `SELECT COALESCE(sum("quantity"),0)::bigint AS n, count(*)::int AS rows FROM "LedgerLine" WHERE "hourStart" >= $1`,
      [new Date(Math.floor(startMs / 3_600_000) * 3_600_000)],
    );
    return { requests: BigInt(r!.n), rollupRows: r!.rows, ledger: BigInt(l!.n), ledgerRows: l!.rows };
  }

  function report(
    label: string,
    ms: number,
    batches: UsageBatch[],
    rowsWritten: number,
    t: Awaited<ReturnType<typeof totals>>,
    latencies: number[],
  ) {
    const billable = batches.reduce((a, b) => a + b.events.filter((e) => e.rejected === null).length, 0);
    latencies.sort((a, b) => a - b);
    const pct = (p: number) =>
      latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(1) : 'n/a';
    out(`\n== ${label} ==`);
    out(`events            ${EVENTS} in ${batches.length} batches of ${BATCH}, ${keys.length} keys, ${MINUTES} min of event time`);
    out(
      `machine           load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} on ${cpus().length} cores`,
    );
    out(`time              ${(ms / 1000).toFixed(2)} s`);
    out(
      `throughput        ${Math.round(EVENTS / (ms / 1000)).toLocaleString('en-US')} events/s  (${(batches.length / (ms / 1000)).toFixed(0)} batches/s)`,
    );
    out(`batch latency     p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms`);
    out(
      `rows written      ${rowsWritten} upserts = ${(rowsWritten / EVENTS).toFixed(4)} per event (${(EVENTS / rowsWritten).toFixed(0)} events per row write)`,
    );
    out(
      `distinct rows     ${t.rollupRows} minute rollups (≈ minutes × keys = ${MINUTES * keys.length}-${(MINUTES + 1) * keys.length}), ${t.ledgerRows} ledger lines`,
    );
    const ok = t.requests === BigInt(EVENTS) && t.ledger === BigInt(billable);
    out(
      `check             rollup requests ${t.requests} / ${EVENTS}, ledger ${t.ledger} / ${billable} billable → ${ok ? 'exact' : 'MISMATCH'}`,
    );
    if (!ok) process.exitCode = 1;
  }

  let offsetMinutes = 0;
  const nextStart = () => {
    // Each run writes its own minutes, so totals can be read back per run.
    const start = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 6 * 3_600_000 + offsetMinutes * 60_000;
    offsetMinutes += 60;
    return start;
  };

  if (args.mode === 'both' || args.mode === 'direct') {
    const start = nextStart();
    const batches = buildBatches(start);
    const latencies: number[] = [];
    let rows = 0;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < batches.length) {
          const b = batches[next++]!;
          const s = performance.now();
          const res = await applyUsageBatch(sql, b);
          latencies.push(performance.now() - s);
          rows += res.rollupRows + res.ledgerRows + 1; // +1: the ProcessedBatch row
        }
      }),
    );
    const ms = performance.now() - t0;
    report(`direct: one transaction per batch, ${CONCURRENCY} at a time → PostgreSQL`, ms, batches, rows, await totals(start), latencies);
  }

  if (args.mode === 'both' || args.mode === 'queue') {
    const start = nextStart();
    const batches = buildBatches(start);
    const keyspace = createKeyspace(`tgbench_${randomBytes(3).toString('hex')}`);
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
    const queue = new Queue(QUEUES.usage, { connection: redis, prefix: keyspace.bullPrefix });
    for (let i = 0; i < batches.length; i += 100) {
      await queue.addBulk(
        batches.slice(i, i + 100).map((b) => ({ name: USAGE_JOB_NAME, data: b, opts: { jobId: b.batchId, removeOnComplete: true } })),
      );
    }
    const metrics = createMetrics();
    const worker = startUsageWorker({
      redis,
      keyspace,
      sql,
      logger: createLogger('bench', 'warn'),
      metrics,
      concurrency: Number(args['queue-concurrency']),
      groupMaxEvents: Number(args['group-max']),
      groupsInFlight: Number(args['db-parallel']),
      lockDurationMs: 30_000,
      stalledIntervalMs: 30_000,
    });
    const t0 = performance.now();
    void worker.run();
    for (;;) {
      const applied = (await metrics.batches.get()).values.find((v) => v.labels.result === 'applied')?.value ?? 0;
      if (applied >= batches.length) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const ms = performance.now() - t0;
    const rows = (await metrics.rowsWritten.get()).values.reduce((a, v) => a + v.value, 0);
    const groups = (await metrics.groupBatches.get()).values;
    const gCount = groups.find((v) => v.metricName === 'tollgate_usage_group_batches_count')?.value ?? 1;
    const gSum = groups.find((v) => v.metricName === 'tollgate_usage_group_batches_sum')?.value ?? 0;
    const hist = await metrics.batchSeconds.get();
    const sum = hist.values.find((v) => v.metricName === 'tollgate_usage_batch_seconds_sum')?.value ?? 0;
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
    redis.disconnect();
    report(
      `queue: BullMQ → processor → group commit → PostgreSQL (${args['queue-concurrency']} jobs in flight, ${args['db-parallel']} transactions)`,
      ms,
      batches,
      rows,
      await totals(start),
      [],
    );
    out(`group commit      ${gCount} transactions, ${(gSum / gCount).toFixed(1)} batches each on average`);
    out(`mean wait         ${((sum / batches.length) * 1000).toFixed(1)} ms per batch from hand-in to commit`);
  }

  await sql.end();
  await db.$disconnect();
}

try {
  await main();
} finally {
  await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  await admin.end();
}
