import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import pg from 'pg';
import { QUEUES } from '@tollgate/policy';
import { USAGE_JOB_NAME, type UsageBatch } from '@tollgate/usage';
import { startStripeStandIn, type StripeStandIn } from '@tollgate/billing/testing';
import { meterEventName } from '@tollgate/billing';
import { createPrismaClient, type Db } from '@tollgate/db';
import { cloneRunDatabase, testEnv, testKeyspace, testRedis, waitFor } from '../harness/index';
import { createFixture, makeBatch, makeEvent, type Fixture } from './fixtures';
import { spawnWorker, type WorkerProcess } from './worker-process';

const HOUR = 3_600_000;

describe('exactly once, through redelivery, a SIGKILL mid-batch and competing workers', () => {
  let db: Db;
  let database: { url: string; drop: () => Promise<void> };
  let stripe: StripeStandIn;
  const keyspace = testKeyspace('once');
  const redis = testRedis();
  const queue = new Queue(QUEUES.usage, { connection: redis, prefix: keyspace.bullPrefix });
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    // A database of its own: the worker's schedules run over every row.
    database = await cloneRunDatabase('iso');
    db = createPrismaClient(database.url, { max: 4 });
    stripe = await startStripeStandIn();
  });
  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await queue.close();
    redis.disconnect();
    await stripe.stop();
    await db.$disconnect();
    await database.drop();
  });

  const env = () => ({
    DATABASE_URL: database.url,
    REDIS_URL: testEnv().redisUrl,
    REDIS_PREFIX: keyspace.prefix,
    WORKER_CONCURRENCY: '8',
    WORKER_LOCK_DURATION_MS: '1500',
    WORKER_STALLED_INTERVAL_MS: '500',
    STRIPE_SECRET_KEY: stripe.apiKey,
    STRIPE_API_HOST: '127.0.0.1',
    STRIPE_API_PORT: String(stripe.port),
    STRIPE_API_PROTOCOL: 'http',
    STRIPE_TIMEOUT_MS: '1000',
    METER_SETTLE_MS: '0',
    METER_REPORT_EVERY_MS: '300',
    COMPACT_EVERY_MS: '60000',
    RECONCILE_EVERY_MS: '3600000',
    STRIPE_WEBHOOK_SECRET: 'whsec_exactly_once',
  });

  it('rollups, ledger and Stripe meter events each total exactly the events produced', async () => {
    const subs: Fixture[] = [];
    for (let i = 0; i < 2; i++) {
      subs.push(
        await createFixture(db, {
          stripe: { customerId: `cus_once${i}`, subscriptionId: `sub_stripe_once_${i}_${Date.now()}`, meterId: `mtr_once${i}` },
        }),
      );
    }
    // Closed hours, so the meter reporter sends them while the test runs.
    const base = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
    const batches: UsageBatch[] = [];
    const perBatch = 1500;
    for (let b = 0; b < 24; b++) {
      const f = subs[b % 2]!;
      batches.push(makeBatch(Array.from({ length: perBatch }, (_, i) => makeEvent(f, { ts: base + ((b * perBatch + i) % (2 * HOUR)) }))));
    }
    const N = BigInt(batches.length * perBatch);

    // Every batch once by its id; a third of them delivered a second time under another job id.
    for (const batch of batches) await queue.add(USAGE_JOB_NAME, batch, { jobId: batch.batchId });
    for (const batch of batches.filter((_, i) => i % 3 === 0)) await queue.add(USAGE_JOB_NAME, batch, { jobId: `${batch.batchId}-again` });
    // Stripe misbehaves for a while: rate limits, errors, and a response lost after it took the event.
    stripe.failNext(3, { kind: 'status', status: 429 }, /meter_events/);
    stripe.failNext(2, { kind: 'status', status: 500 }, /meter_events/);
    stripe.failNext(1, { kind: 'lost-response' }, /meter_events/);

    const processed = () => db.processedBatch.count({ where: { id: { in: batches.map((b) => b.batchId) } } });
    const first = await spawnWorker(env());
    workers.push(first);
    await waitFor(async () => (await processed()) >= 3, { timeoutMs: 30_000, intervalMs: 5, what: 'first worker applying batches' });
    // Freeze it inside its next transaction (batch ids claimed, rollups waiting on a table lock),
    // then kill it hard there: that transaction dies uncommitted and its jobs, still active,
    // must be taken over by other workers once their locks expire.
    const blocker = new pg.Client({ connectionString: database.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE "UsageRollup" IN EXCLUSIVE MODE');
    await waitFor(
      async () =>
        (
          await blocker.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND relation = '"UsageRollup"'::regclass`,
          )
        ).rows[0]!.n > 0,
      { timeoutMs: 30_000, what: 'a batch transaction waiting mid-way' },
    );
    first.child.kill('SIGKILL');
    await first.exited;
    // Jobs the dead worker still held (a job whose group committed just before the lock may
    // have been acknowledged in time, and is not among them).
    const activeAtKill = (await queue.getActive()).map((j) => j.id!);
    expect(activeAtKill.length).toBeGreaterThan(0);
    await blocker.query('ROLLBACK');
    await blocker.end();
    expect(await processed()).toBeLessThan(batches.length);

    workers.push(await spawnWorker(env()), await spawnWorker(env()));
    await waitFor(
      async () =>
        (await processed()) === batches.length && (await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).active === 0,
      {
        timeoutMs: 60_000,
        intervalMs: 100,
        what: 'every batch applied',
      },
    );
    await waitFor(async () => (await queue.getJobCounts('waiting', 'active', 'delayed')).waiting === 0, {
      timeoutMs: 30_000,
      what: 'queue drained',
    });

    // The jobs the killed worker held were taken over and run again.
    const rerun = await Promise.all(activeAtKill.map((id) => queue.getJob(id)));
    expect(rerun.map((j) => ({ id: j?.id, started: j?.attemptsStarted ?? 0 })).filter((j) => j.started < 2)).toEqual([]);
    expect(await Promise.all(activeAtKill.map((id) => queue.getJobState(id)))).toEqual(activeAtKill.map(() => 'completed'));

    const ids = subs.map((s) => s.subscriptionId);
    const rollups = await db.usageRollup.aggregate({
      where: { tenantId: { in: subs.map((s) => s.tenantId) }, granularity: 'minute' },
      _sum: { requests: true },
    });
    const ledger = await db.ledgerLine.aggregate({ where: { subscriptionId: { in: ids } }, _sum: { quantity: true } });
    expect(rollups._sum.requests).toBe(N);
    expect(ledger._sum.quantity).toBe(N);

    await waitFor(
      async () => {
        const r = await db.ledgerLine.aggregate({ where: { subscriptionId: { in: ids } }, _sum: { reportedQuantity: true } });
        return r._sum.reportedQuantity === N;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'ledger fully reported' },
    );
    const standInTotal = stripe.meterEvents
      .filter((e) => subs.some((s) => e.event_name === meterEventName(s.planId)))
      .reduce((a, e) => a + e.value, 0);
    expect(BigInt(standInTotal)).toBe(N);
    for (const s of subs) {
      const lines = await db.ledgerLine.aggregate({ where: { subscriptionId: s.subscriptionId }, _sum: { quantity: true } });
      expect(BigInt(stripe.meterTotals().get(`|${meterEventName(s.planId)}|cus_once${subs.indexOf(s)}`) ?? 0)).toBe(lines._sum.quantity);
    }
    // Stripe refused the re-sent identifier after the lost response; nothing was counted twice.
    const sent = stripe.requests.filter((r) => r.path === '/v1/billing/meter_events');
    expect(sent.map((r) => r.status)).toContain(400);
    expect(new Set(stripe.meterEvents.map((e) => e.identifier)).size).toBe(stripe.meterEvents.length);

    // The running process serves its endpoints: readiness, metrics, and Stripe's webhook.
    const url = `http://127.0.0.1:${workers[1]!.port}`;
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/tollgate_usage_batches_total\{result="(applied|duplicate)"\} [1-9]/);
    const forged = await fetch(`${url}/webhooks/stripe`, { method: 'POST', headers: { 'stripe-signature': 't=1,v1=00' }, body: '{}' });
    expect(forged.status).toBe(400);

    // SIGTERM finishes cleanly.
    for (const w of workers.slice(1)) w.child.kill('SIGTERM');
    expect(await Promise.all(workers.slice(1).map((w) => w.exited))).toEqual([0, 0]);
  }, 120_000);
});
