import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue, QueueEvents } from 'bullmq';
import type { Sql } from 'postgres';
import { createLogger } from '@tollgate/config';
import type { Db } from '@tollgate/db';
import { QUEUES } from '@tollgate/policy';
import { LATENCY_BUCKETS_MS, USAGE_JOB_NAME } from '@tollgate/usage';
import { previewSubscriptionInvoice } from '@tollgate/billing';
import { testDb } from '../harness/db';
import { testEnv, testKeyspace, testRedis, waitFor } from '../harness/index';
import { createSql } from '../../apps/worker/src/db';
import { applyUsageBatch, applyUsageBatches } from '../../apps/worker/src/ingest/apply-batch';
import { GroupCommit } from '../../apps/worker/src/ingest/group-commit';
import { compactRollups, pruneMinuteRollups, pruneProcessedBatches } from '../../apps/worker/src/ingest/compact';
import { createMetrics } from '../../apps/worker/src/metrics';
import { startUsageWorker } from '../../apps/worker/src/queues/usage';
import { createFixture, makeBatch, makeEvent, type Fixture } from './fixtures';

let db: Db;
let sql: Sql;
const logger = createLogger('test', 'silent');

beforeAll(() => {
  db = testDb();
  sql = createSql(testEnv().databaseUrl, 10);
});
afterAll(async () => {
  await sql.end();
  await db.$disconnect();
});

const minuteRows = (f: Fixture) =>
  db.usageRollup.findMany({ where: { tenantId: f.tenantId, granularity: 'minute' }, orderBy: [{ bucketStart: 'asc' }, { keyId: 'asc' }] });
const ledgerTotal = async (f: Fixture) =>
  (await db.ledgerLine.aggregate({ where: { subscriptionId: f.subscriptionId }, _sum: { quantity: true } }))._sum.quantity ?? 0n;
const requestTotal = async (f: Fixture, granularity = 'minute') =>
  (await db.usageRollup.aggregate({ where: { tenantId: f.tenantId, granularity }, _sum: { requests: true } }))._sum.requests ?? 0n;

describe('applying a usage batch', () => {
  it('folds events into per-minute rollups, the hourly ledger and the key last-use time', async () => {
    // A period of its own that holds every event, whatever today's date is.
    const f = await createFixture(db, { periodStart: new Date(Date.UTC(2026, 10, 1)) });
    const t0 = Date.UTC(2026, 10, 28, 10, 15, 5);
    const events = [
      makeEvent(f, { ts: t0, status: 200, latencyMs: 0.5, bytesIn: 10, bytesOut: 20, cacheHit: true }),
      makeEvent(f, { ts: t0 + 1000, status: 302, latencyMs: 7 }),
      makeEvent(f, { ts: t0 + 2000, status: 503, latencyMs: 20_000 }),
      makeEvent(f, { ts: t0 + 3000, status: 429, rejected: 'rate', upstreamLatencyMs: null }),
      makeEvent(f, { ts: t0 + 4000, status: 401, rejected: 'auth', keyId: null, subscriptionId: null, consumerId: null }),
      makeEvent(f, { ts: t0 + 60_000, status: 200 }), // next minute
      makeEvent(f, { ts: t0 + 3_600_000, status: 200 }), // next hour
    ];
    const res = await applyUsageBatch(sql, makeBatch(events));
    expect(res).toMatchObject({ applied: true, events: 7, billable: 5, ledgerRows: 2, orphanBillable: 0 });

    const rows = await minuteRows(f);
    expect(rows).toHaveLength(4); // (10:15, key), (10:15, no key), (10:16, key), (11:15, key)
    const first = rows.find((r) => r.keyId === f.keyId && r.bucketStart.getTime() === t0 - 5000)!;
    expect(first).toMatchObject({
      requests: 4n,
      status2xx: 1n,
      status3xx: 1n,
      status4xx: 1n,
      status5xx: 1n,
      rejectedRate: 1n,
      cacheHits: 1n,
      consumerId: f.consumerId,
      subscriptionId: f.subscriptionId,
    });
    expect(first.latencyBuckets).toHaveLength(LATENCY_BUCKETS_MS.length + 1);
    expect(first.latencyBuckets[0]).toBe(1n); // 0.5 ms
    expect(first.latencyBuckets[3]).toBe(1n); // 7 ms → ≤10
    expect(first.latencyBuckets[LATENCY_BUCKETS_MS.length]).toBe(1n); // 20 s → overflow bucket
    const anon = rows.find((r) => r.keyId === '')!;
    expect(anon).toMatchObject({ requests: 1n, rejectedAuth: 1n, status4xx: 1n });

    const lines = await db.ledgerLine.findMany({ where: { subscriptionId: f.subscriptionId }, orderBy: { hourStart: 'asc' } });
    expect(lines.map((l) => [l.hourStart.toISOString(), l.quantity])).toEqual([
      ['2026-11-28T10:00:00.000Z', 4n],
      ['2026-11-28T11:00:00.000Z', 1n],
    ]);
    expect(lines[0]!.identifier).toBe(`tg_${f.subscriptionId}_usage_${Date.UTC(2026, 10, 28, 10) / 1000}`);
    expect(lines[0]!.periodStart.toISOString()).toBe(f.periodStart.toISOString());
    const key = await db.apiKey.findUniqueOrThrow({ where: { id: f.keyId } });
    expect(key.lastUsedAt?.getTime()).toBe(t0 + 3_600_000);
  });

  it("files a subscription's first, partial hour under its first period, not the one before it", async () => {
    // Started mid-hour: the hour 10:00 begins before the period does.
    const start = new Date(Date.UTC(2026, 10, 28, 10, 30, 17));
    const f = await createFixture(db, { periodStart: start });
    await applyUsageBatch(
      sql,
      makeBatch([makeEvent(f, { ts: start.getTime() + 60_000 }), makeEvent(f, { ts: start.getTime() + 2 * 3_600_000 })]),
    );
    const lines = await db.ledgerLine.findMany({ where: { subscriptionId: f.subscriptionId }, orderBy: { hourStart: 'asc' } });
    expect(lines.map((l) => [l.hourStart.toISOString(), l.periodStart.toISOString()])).toEqual([
      ['2026-11-28T10:00:00.000Z', start.toISOString()],
      ['2026-11-28T12:00:00.000Z', start.toISOString()],
    ]);
    // The default preview reads the ledger by period, so it now sees the first hour.
    const preview = await previewSubscriptionInvoice(db, f.subscriptionId, { at: new Date(start.getTime() + 3 * 3_600_000) });
    expect(preview.requests).toBe(2n);

    // A late event for that first hour, after the subscription renewed, still joins its first period.
    const renewed = await createFixture(db, { periodStart: start });
    const next = new Date(Date.UTC(2026, 11, 28, 10, 30, 17));
    await db.subscription.update({
      where: { id: renewed.subscriptionId },
      data: { currentPeriodStart: next, currentPeriodEnd: new Date(Date.UTC(2027, 0, 28, 10, 30, 17)) },
    });
    await applyUsageBatch(sql, makeBatch([makeEvent(renewed, { ts: start.getTime() + 1000 })]));
    const late = await db.ledgerLine.findFirstOrThrow({ where: { subscriptionId: renewed.subscriptionId } });
    expect(late.periodStart.toISOString()).toBe(start.toISOString());
  });

  it('changes nothing when the same batch is applied again', async () => {
    const f = await createFixture(db);
    const batch = makeBatch(Array.from({ length: 10 }, () => makeEvent(f)));
    expect((await applyUsageBatch(sql, batch)).applied).toBe(true);
    expect((await applyUsageBatch(sql, batch)).applied).toBe(false);
    expect(await requestTotal(f)).toBe(10n);
    expect(await ledgerTotal(f)).toBe(10n);
  });

  it('counts an event repeated inside one batch once', async () => {
    const f = await createFixture(db);
    const e = makeEvent(f);
    await applyUsageBatch(sql, makeBatch([e, e, { ...e }]));
    expect(await requestTotal(f)).toBe(1n);
    expect(await ledgerTotal(f)).toBe(1n);
  });

  it('writes one row per distinct (minute, key), however many events', async () => {
    const f = await createFixture(db);
    const ts = Date.now();
    const res = await applyUsageBatch(sql, makeBatch(Array.from({ length: 2000 }, () => makeEvent(f, { ts }))));
    expect(res.rollupRows).toBe(1);
    expect(res.ledgerRows).toBe(1);
    expect(await requestTotal(f)).toBe(2000n);
  });

  it('does not bill events of a subscription that does not exist, but still counts them', async () => {
    const f = await createFixture(db);
    const res = await applyUsageBatch(sql, makeBatch([makeEvent(f, { subscriptionId: 'sub_gone' }), makeEvent(f)]));
    expect(res.orphanBillable).toBe(1);
    expect(await requestTotal(f)).toBe(2n);
    expect(await ledgerTotal(f)).toBe(1n);
  });

  it("bills what the upstream answered, per the plan's rule; never the gateway's own answers or test keys", async () => {
    const f = await createFixture(db);
    const mixed = () => [
      makeEvent(f, { status: 200, answeredBy: 'upstream' }),
      makeEvent(f, { status: 304, answeredBy: 'upstream' }),
      makeEvent(f, { status: 500, answeredBy: 'upstream' }),
      makeEvent(f, { status: 404 }), // written before answeredBy existed: upstream-answered
      makeEvent(f, { status: 502, answeredBy: 'gateway', upstreamLatencyMs: null }), // connect failure
      makeEvent(f, { status: 504, answeredBy: 'gateway' }), // timeout
      makeEvent(f, { status: 429, rejected: 'quota', answeredBy: 'gateway', upstreamLatencyMs: null }),
      makeEvent(f, { status: 200, answeredBy: 'upstream', test: true }),
    ];
    await applyUsageBatch(sql, makeBatch(mixed()));
    expect(await requestTotal(f)).toBe(8n);
    expect(await ledgerTotal(f)).toBe(4n);
    await db.plan.update({ where: { id: f.planId }, data: { billableResponses: 'SUCCESS_ONLY' } });
    await applyUsageBatch(sql, makeBatch(mixed()));
    expect(await requestTotal(f)).toBe(16n);
    expect(await ledgerTotal(f)).toBe(4n + 2n);
  });

  it('applies overlapping batches concurrently without deadlocks or lost updates', async () => {
    const a = await createFixture(db);
    const b = await createFixture(db);
    const ts = Date.now();
    // Every batch touches the same rows in a different event order.
    const batches = Array.from({ length: 24 }, (_, i) => {
      const evs = [
        ...Array.from({ length: 50 }, () => makeEvent(a, { ts })),
        ...Array.from({ length: 50 }, () => makeEvent(b, { ts: ts + 60_000 })),
      ];
      return makeBatch(i % 2 ? evs.reverse() : evs);
    });
    const results = await Promise.all([...batches, ...batches.slice(0, 6)].map((batch) => applyUsageBatch(sql, batch)));
    expect(results.filter((r) => r.applied)).toHaveLength(24);
    expect(await requestTotal(a)).toBe(1200n);
    expect(await requestTotal(b)).toBe(1200n);
    expect(await ledgerTotal(a)).toBe(1200n);
  });

  it('applies a group of batches in one transaction, a batch repeated inside the group once', async () => {
    const f = await createFixture(db);
    const a = makeBatch([makeEvent(f), makeEvent(f)]);
    const b = makeBatch([makeEvent(f)]);
    const res = await applyUsageBatches(sql, [a, b, a]);
    expect(res.applied).toEqual([true, true, false]);
    expect((await applyUsageBatches(sql, [b])).applied).toEqual([false]);
    expect(await requestTotal(f)).toBe(3n);
  });

  it('group commit: a poison event is isolated and parked alone; the rest of its batch and its neighbours are applied', async () => {
    const f = await createFixture(db);
    const parked: string[] = [];
    const groups = new GroupCommit(sql, {
      maxEvents: 10_000,
      maxInFlight: 1,
      onGroup: (res) => parked.push(...res.parked.map((p) => p.id)),
    });
    const good = Array.from({ length: 5 }, () => makeBatch([makeEvent(f)]));
    // A latency no bigint column can hold (22003): PostgreSQL refuses the whole statement, so
    // the group is bisected under savepoints down to this one event.
    const bad = makeEvent(f, { latencyMs: 1e300 });
    const poison = makeBatch([...Array.from({ length: 250 }, () => makeEvent(f)), bad, ...Array.from({ length: 249 }, () => makeEvent(f))]);
    const results = await Promise.allSettled([good[0]!, poison, ...good.slice(1)].map((b) => groups.apply(b)));
    expect(results.map((r) => r.status)).toEqual(Array(6).fill('fulfilled'));
    expect(await requestTotal(f)).toBe(5n + 499n);
    expect(await ledgerTotal(f)).toBe(5n + 499n);
    expect(parked).toEqual([`${poison.batchId}:250`]);
    const row = await db.parkedUsage.findUniqueOrThrow({ where: { id: `${poison.batchId}:250` } });
    expect(row).toMatchObject({ batchId: poison.batchId, eventId: bad.id, tenantId: f.tenantId, reason: 'data-error', errorCode: '22003' });
    expect(JSON.parse(row.payload)).toEqual(bad);
    // Redelivered: nothing applied or parked twice.
    expect(await groups.apply(poison)).toEqual({ applied: false });
    expect(await db.parkedUsage.count({ where: { batchId: poison.batchId } })).toBe(1);
  });

  it('compacts closed hours and days from minutes, the same however often it runs', async () => {
    const f = await createFixture(db);
    const h = Date.UTC(2026, 10, 27, 22);
    const events = [
      ...Array.from({ length: 5 }, (_, i) => makeEvent(f, { ts: h + i * 60_000, latencyMs: 3 })),
      ...Array.from({ length: 3 }, (_, i) => makeEvent(f, { ts: h + 3_600_000 + i * 60_000, latencyMs: 3, status: 500 })),
      makeEvent(f, { ts: h + 2 * 3_600_000 + 1 }), // 00:00 next day
    ];
    await applyUsageBatch(sql, makeBatch(events));
    // Until 23:30: the 23:00 hour and the 27th are still running and are left alone.
    await compactRollups(sql, { from: new Date(h), to: new Date(h + 90 * 60_000) });
    const partial = await db.usageRollup.findMany({ where: { tenantId: f.tenantId, granularity: { in: ['hour', 'day'] } } });
    expect(partial.map((r) => [r.granularity, r.bucketStart.toISOString(), r.requests])).toEqual([
      ['hour', '2026-11-27T22:00:00.000Z', 5n],
    ]);
    const range = { from: new Date(h), to: new Date(Date.UTC(2026, 10, 29)) };
    await compactRollups(sql, range);
    await compactRollups(sql, range);
    const hours = await db.usageRollup.findMany({ where: { tenantId: f.tenantId, granularity: 'hour' }, orderBy: { bucketStart: 'asc' } });
    expect(hours.map((r) => [r.bucketStart.toISOString(), r.requests, r.status5xx])).toEqual([
      ['2026-11-27T22:00:00.000Z', 5n, 0n],
      ['2026-11-27T23:00:00.000Z', 3n, 3n],
      ['2026-11-28T00:00:00.000Z', 1n, 0n],
    ]);
    expect(hours[0]!.latencyBuckets[2]).toBe(5n);
    const days = await db.usageRollup.findMany({ where: { tenantId: f.tenantId, granularity: 'day' }, orderBy: { bucketStart: 'asc' } });
    expect(days.map((r) => [r.bucketStart.toISOString(), r.requests])).toEqual([
      ['2026-11-27T00:00:00.000Z', 8n],
      ['2026-11-28T00:00:00.000Z', 1n],
    ]);
    expect(await requestTotal(f, 'minute')).toBe(9n);
  });
});

describe('batch id retention', () => {
  it('forgets batch ids older than the retention, keeps recent ones', async () => {
    const old = makeBatch([]).batchId;
    const recent = makeBatch([]).batchId;
    await db.processedBatch.createMany({
      data: [
        { id: old, eventCount: 1, processedAt: new Date(Date.now() - 40 * 86_400_000) },
        { id: recent, eventCount: 1 },
      ],
    });
    expect(await pruneProcessedBatches(sql, 30, 1)).toBeGreaterThanOrEqual(1);
    expect(await db.processedBatch.findUnique({ where: { id: old } })).toBeNull();
    expect(await db.processedBatch.findUnique({ where: { id: recent } })).not.toBeNull();
  });
});

describe('minute rollup retention', () => {
  it('drops minute rows past the retention once their hour is compacted, and nothing else', async () => {
    const f = await createFixture(db);
    const DAY = 86_400_000;
    const hourNow = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    const oldCompacted = hourNow - 20 * DAY;
    const oldNotCompacted = hourNow - 19 * DAY;
    const recent = hourNow - 2 * DAY;
    await applyUsageBatch(
      sql,
      makeBatch([
        ...[0, 1, 2].map((i) => makeEvent(f, { ts: oldCompacted + i * 60_000 })),
        makeEvent(f, { ts: oldNotCompacted + 5 * 60_000 }),
        ...[0, 1].map((i) => makeEvent(f, { ts: recent + i * 60_000 })),
      ]),
    );
    // Compact only the first old hour (as if compaction had failed for the other one) and the recent one.
    await compactRollups(sql, { from: new Date(oldCompacted), to: new Date(oldCompacted + 3_600_000) });
    await compactRollups(sql, { from: new Date(recent), to: new Date(recent + 3_600_000) });
    expect(await pruneMinuteRollups(sql, 14, 2)).toBeGreaterThanOrEqual(3);
    const minutes = await minuteRows(f);
    expect(minutes.map((r) => r.bucketStart.getTime())).toEqual([oldNotCompacted + 5 * 60_000, recent, recent + 60_000]);
    // The totals survive in the hour rows; a second run finds nothing more to drop for this tenant.
    expect(await requestTotal(f, 'hour')).toBe(5n);
    await pruneMinuteRollups(sql, 14);
    expect(await minuteRows(f)).toHaveLength(3);
  });
});

describe('the usage queue processor', () => {
  const keyspace = testKeyspace('ingest');
  const redis = testRedis();
  const queue = new Queue(QUEUES.usage, { connection: redis, prefix: keyspace.bullPrefix });
  afterAll(async () => {
    await queue.close();
    redis.disconnect();
  });

  it('parks a malformed job or event instead of failing it, and applies the valid rest of the batch', async () => {
    const metrics = createMetrics();
    const worker = startUsageWorker({
      redis,
      keyspace,
      sql,
      logger,
      metrics,
      concurrency: 1,
      lockDurationMs: 5000,
      stalledIntervalMs: 5000,
    });
    void worker.run();
    try {
      const f = await createFixture(db);
      const bad = await queue.add(USAGE_JOB_NAME, { v: 1, batchId: 'short', events: 'nope' }, { attempts: 5 });
      const hostileBatchId = makeBatch([]).batchId;
      const hostile = await queue.add(
        USAGE_JOB_NAME,
        { v: 1, batchId: hostileBatchId, source: 'x', events: [makeEvent(f), { id: '1'.repeat(26), ts: 'DROP TABLE' }, makeEvent(f)] },
        { attempts: 5 },
      );
      const wrongName = await queue.add('something.else', {}, { attempts: 5 });
      for (const job of [bad, hostile, wrongName]) {
        await waitFor(async () => (await queue.getJobState(job.id!)) === 'completed', { what: 'job completed' });
        expect((await queue.getJob(job.id!))!.attemptsMade).toBe(1);
      }
      expect(await db.parkedUsage.findUnique({ where: { id: `${bad.id}:job` } })).toMatchObject({ reason: 'malformed' });
      expect(await db.parkedUsage.findUnique({ where: { id: `${wrongName.id}:job` } })).toMatchObject({ reason: 'malformed' });
      expect(await db.parkedUsage.findUnique({ where: { id: `${hostileBatchId}:1` } })).toMatchObject({
        reason: 'malformed',
        eventId: '1'.repeat(26),
      });
      expect(await requestTotal(f)).toBe(2n);
      expect((await metrics.parkedEvents.get()).values.find((v) => v.labels.reason === 'malformed')?.value).toBe(3);
    } finally {
      await worker.close();
    }
  });

  it('keeps a batch (delayed, not failed) while the database is unreachable', async () => {
    const metrics = createMetrics();
    const deadSql = createSql('postgresql://postgres@127.0.0.1:1/nowhere', 1);
    const worker = startUsageWorker({
      redis,
      keyspace,
      sql: deadSql,
      logger,
      metrics,
      concurrency: 1,
      lockDurationMs: 5000,
      stalledIntervalMs: 5000,
    });
    void worker.run();
    try {
      const f = await createFixture(db);
      const batch = makeBatch([makeEvent(f)]);
      const job = await queue.add(USAGE_JOB_NAME, batch, { jobId: batch.batchId, attempts: 1 });
      await waitFor(async () => (await queue.getJobState(job.id!)) === 'delayed', { what: 'job delayed' });
      expect((await metrics.batches.get()).values.find((v) => v.labels.result === 'retried')?.value).toBeGreaterThanOrEqual(1);
    } finally {
      await worker.close();
      // Retried forever, so it would be due (and applied) during the next test: not this file's subject.
      await queue.obliterate({ force: true });
      await deadSql.end({ timeout: 1 });
    }
  });

  it('applies a queued batch and reports it in metrics', async () => {
    const metrics = createMetrics();
    const events = new QueueEvents(QUEUES.usage, {
      connection: testEnv().redisUrl ? { url: testEnv().redisUrl } : {},
      prefix: keyspace.bullPrefix,
    });
    await events.waitUntilReady();
    const worker = startUsageWorker({
      redis,
      keyspace,
      sql,
      logger,
      metrics,
      concurrency: 2,
      lockDurationMs: 5000,
      stalledIntervalMs: 5000,
    });
    void worker.run();
    try {
      const f = await createFixture(db);
      const batch = makeBatch(Array.from({ length: 3 }, () => makeEvent(f)));
      const job = await queue.add(USAGE_JOB_NAME, batch, { jobId: batch.batchId });
      const out = await job.waitUntilFinished(events, 10_000);
      expect(out).toMatchObject({ applied: true, events: 3 });
      expect((await metrics.events.get()).values[0]?.value).toBe(3);
    } finally {
      await worker.close();
      await events.close();
    }
  });
});
