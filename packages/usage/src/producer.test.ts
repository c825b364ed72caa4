import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { monotonicFactory } from 'ulid';
import { createKeyspace, QUEUES, type Keyspace } from '@tollgate/policy';
import { testEnv, testKeyspace, waitFor } from '../../../test/harness';
import {
  createUsageProducer,
  spoolFileName,
  UsageBatch,
  USAGE_JOB_NAME,
  type UsageEvent,
  type UsageLogger,
  type UsageProducer,
} from './index';

const nextId = monotonicFactory();
function usageEvent(over: Partial<UsageEvent> = {}): UsageEvent {
  return {
    id: nextId(),
    ts: Date.now(),
    tenantId: 'ten_1',
    apiId: 'api_1',
    routeId: 'rte_1',
    keyId: 'key_1',
    consumerId: 'con_1',
    subscriptionId: 'sub_1',
    planId: 'pln_1',
    method: 'GET',
    status: 200,
    latencyMs: 1.5,
    upstreamLatencyMs: 1,
    bytesIn: 10,
    bytesOut: 20,
    cacheHit: false,
    rejected: null,
    ...over,
  };
}

function captureLogger() {
  const lines: { level: string; obj: object; msg?: string }[] = [];
  const logger: UsageLogger = {
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
  return { logger, lines };
}

const tmpDirs: string[] = [];
function spoolDir() {
  const d = mkdtempSync(path.join(tmpdir(), 'tg-spool-'));
  tmpDirs.push(d);
  return d;
}

/** Every event in the queue, oldest job first. */
async function queuedEvents(
  queue: Queue,
): Promise<{ jobs: { id?: string; name: string; data: UsageBatch; opts: JobsOptions }[]; events: UsageEvent[] }> {
  const jobs = await queue.getJobs(['waiting'], 0, -1, true);
  return { jobs, events: jobs.flatMap((j) => (j.data as UsageBatch).events) };
}

const producers: UsageProducer[] = [];
afterAll(async () => {
  await Promise.all(producers.map((p) => p.close().catch(() => undefined)));
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe('with the shared Redis', () => {
  let ks: Keyspace;
  let queue: Queue;
  let redis: Redis;
  beforeAll(() => {
    ks = testKeyspace('usage');
    redis = new Redis(testEnv().redisUrl, { maxRetriesPerRequest: null });
    queue = new Queue(QUEUES.usage, { connection: redis, prefix: ks.bullPrefix });
  });
  afterAll(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    redis.disconnect();
  });
  const make = (opts: Partial<Parameters<typeof createUsageProducer>[0]> = {}) => {
    const { logger } = captureLogger();
    const p = createUsageProducer({
      connection: { host: new URL(testEnv().redisUrl).hostname, port: Number(new URL(testEnv().redisUrl).port || 6379) },
      keyspace: ks,
      spoolDir: spoolDir(),
      source: `gw-${producers.length}`,
      logger,
      ...opts,
    });
    producers.push(p);
    return p;
  };

  it('cuts a batch as soon as it holds maxBatch events, with job id = batch id', async () => {
    await queue.obliterate({ force: true });
    const p = make({ maxBatch: 5, maxWaitMs: 60_000 });
    const recorded = Array.from({ length: 12 }, () => usageEvent());
    for (const e of recorded) p.record(e);
    // The two full batches leave memory once Redis acknowledged them; the last 2 events wait.
    await waitFor(async () => (await queue.getWaitingCount()) === 2 && p.buffered() === 2, { what: 'two full batches' });
    const { jobs, events } = await queuedEvents(queue);
    for (const j of jobs) {
      expect(j.name).toBe(USAGE_JOB_NAME);
      expect(j.id).toBe(j.data.batchId);
      expect(UsageBatch.parse(j.data).events).toHaveLength(5);
      expect(j.data.source).toBe('gw-0');
      // A completed batch leaves Redis soon: every job carries a bounded retention.
      const keep = j.opts.removeOnComplete as { age: number; count: number };
      expect(keep.count).toBeLessThanOrEqual(100);
      expect(keep.age).toBeLessThanOrEqual(60);
    }
    // Batches are put together from events serialised one by one: the job data must still be
    // exactly the events recorded, in order.
    expect(events).toEqual(recorded.slice(0, 10));
    await p.flush();
    expect((await queuedEvents(queue)).events.map((e) => e.id)).toEqual(recorded.map((e) => e.id));
    expect(p.buffered()).toBe(0);
  });

  it('writes each batch byte-exact whatever its size or text: the job data parses back to the events', async () => {
    await queue.obliterate({ force: true });
    // A source and event text outside ASCII (multi-byte UTF-8, a surrogate pair, escapes) and
    // batches far past the writer's first buffer, so it grows mid-batch.
    const p = make({ maxBatch: 400, maxWaitMs: 60_000, source: 'gw-ü-😀' });
    const recorded = Array.from({ length: 1000 }, (_, i) => usageEvent({ method: i % 2 ? 'GET' : 'PÜT"\\\n😀', bytesOut: i }));
    for (const e of recorded) p.record(e);
    await p.flush();
    const { jobs, events } = await queuedEvents(queue);
    expect(jobs.map((j) => UsageBatch.parse(j.data).events.length).sort()).toEqual([200, 400, 400]);
    expect(jobs.every((j) => j.data.source === 'gw-ü-😀' && j.id === j.data.batchId)).toBe(true);
    expect(events).toEqual(recorded);
  });

  it('cuts a partial batch after maxWaitMs without a flush', async () => {
    await queue.obliterate({ force: true });
    // Also shows the factory form of `connection`: the producer owns and closes that client.
    const p = make({
      maxBatch: 500,
      maxWaitMs: 30,
      connection: () => new Redis(testEnv().redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 }),
    });
    for (let i = 0; i < 3; i++) p.record(usageEvent());
    const jobs = await waitFor(async () => ((await queue.getWaitingCount()) === 1 ? queue.getJobs(['waiting']) : null), {
      what: 'a timed batch',
    });
    expect((jobs[0]!.data as UsageBatch).events).toHaveLength(3);
  });

  it('a second add of the same batch id is a no-op', async () => {
    await queue.obliterate({ force: true });
    const p = make();
    p.record(usageEvent());
    await p.flush();
    const [job] = await queue.getJobs(['waiting']);
    await queue.add(USAGE_JOB_NAME, job!.data, { jobId: job!.id });
    expect(await queue.getWaitingCount()).toBe(1);
    expect(p.stats()).toMatchObject({ eventsRecorded: 1, batchesSent: 1, batchesSpooled: 0 });
  });

  it('close() sends what is buffered, and an event recorded after close lands in the spool', async () => {
    await queue.obliterate({ force: true });
    const p = make({ maxBatch: 500, maxWaitMs: 60_000 });
    for (let i = 0; i < 7; i++) p.record(usageEvent());
    await p.close();
    expect((await queuedEvents(queue)).events).toHaveLength(7);
    const late = usageEvent();
    expect(() => p.record(late)).not.toThrow();
    const lines = readFileSync(p.spoolPath, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!).events[0].id).toBe(late.id);
    expect(p.spoolDepth()).toBe(1);
  });

  it('replays a spool found at start, skipping corrupt lines with a log instead of crashing', async () => {
    await queue.obliterate({ force: true });
    const dir = spoolDir();
    const source = 'gw-restarted';
    const good = (n: number): UsageBatch => ({ v: 1, batchId: nextId(), source, events: Array.from({ length: n }, () => usageEvent()) });
    const [b1, b2] = [good(2), good(3)];
    writeFileSync(
      path.join(dir, spoolFileName(source)),
      [JSON.stringify(b1), '{"v":1,"batchId":"short"', 'not json at all', JSON.stringify(b2), '{"v":1,"batchId":"torn wri'].join('\n'),
    );
    const { logger, lines } = captureLogger();
    // While a spool waits for replay, a new batch is appended behind it: behind the torn tail here.
    const p = make({ spoolDir: dir, source, logger, maxWaitMs: 1 });
    const fresh = usageEvent();
    p.record(fresh);
    await waitFor(() => p.spoolDepth() === 0 && p.stats().batchesReplayed + p.stats().batchesSent === 3, { what: 'spool replayed' });
    await p.flush(); // lets the replay step finish: it truncates the file after its last line
    const { jobs, events } = await queuedEvents(queue);
    expect(jobs.slice(0, 2).map((j) => j.id)).toEqual([b1.batchId, b2.batchId]);
    expect(events.map((e) => e.id)).toEqual([...b1.events, ...b2.events, fresh].map((e) => e.id));
    expect(p.stats().corruptSpoolLines).toBe(3);
    expect(lines.filter((l) => l.level === 'error' && /corrupt/.test(l.msg ?? ''))).toHaveLength(3);
    expect(statSync(p.spoolPath).size).toBe(0);
  });

  it('replays a spool of batches larger than one read, cut at arbitrary offsets, without losing a line', async () => {
    await queue.obliterate({ force: true });
    const dir = spoolDir();
    const source = 'gw-big';
    // ~16 batches of 500 events: well past the 1 MiB read size, so reads end mid-line.
    const batches: UsageBatch[] = Array.from({ length: 16 }, () => ({
      v: 1,
      batchId: nextId(),
      source,
      events: Array.from({ length: 500 }, () => usageEvent()),
    }));
    writeFileSync(path.join(dir, spoolFileName(source)), batches.map((b) => JSON.stringify(b) + '\n').join(''));
    expect(statSync(path.join(dir, spoolFileName(source))).size).toBeGreaterThan(2 * 1024 * 1024);
    const p = make({ spoolDir: dir, source });
    await waitFor(() => p.spoolDepth() === 0 && p.stats().batchesReplayed === 16, { what: 'big spool replayed' });
    expect(p.stats().corruptSpoolLines).toBe(0);
    const { events } = await queuedEvents(queue);
    expect(events.map((e) => e.id)).toEqual(batches.flatMap((b) => b.events.map((e) => e.id)));
  });

  it('refuses a second live producer on the same spool file, and frees it on close', async () => {
    const dir = spoolDir();
    const p = make({ spoolDir: dir, source: 'gw-dup' });
    expect(() => make({ spoolDir: dir, source: 'gw-dup' })).toThrow(/in use by process/);
    await p.close();
    const again = make({ spoolDir: dir, source: 'gw-dup' });
    expect(again.spoolPath).toBe(p.spoolPath);
  });

  it('an event JSON cannot encode is dropped with a log when recorded; the events around it arrive', async () => {
    await queue.obliterate({ force: true });
    const { logger, lines } = captureLogger();
    const p = make({ logger, maxBatch: 3, maxWaitMs: 60_000, replayIntervalMs: 20 });
    const good = [usageEvent(), usageEvent(), usageEvent(), usageEvent()];
    p.record(good[0]!);
    expect(() => p.record({ ...usageEvent(), bytesIn: 10n as unknown as number })).not.toThrow();
    for (const e of good.slice(1)) p.record(e);
    await p.flush();
    expect(p.spoolDepth()).toBe(0);
    const { events } = await queuedEvents(queue);
    expect(events.map((e) => e.id).sort()).toEqual(good.map((e) => e.id).sort());
    expect(p.stats().eventsUnserializable).toBe(1);
    expect(lines.some((l) => l.level === 'error' && /cannot be serialized/.test(l.msg ?? ''))).toBe(true);
  });

  it('rejects nonsensical options at construction', () => {
    const base = { connection: {}, keyspace: ks, spoolDir: spoolDir(), source: 'x', logger: captureLogger().logger };
    expect(() => createUsageProducer({ ...base, maxBatch: 0 })).toThrow(RangeError);
    expect(() => createUsageProducer({ ...base, maxWaitMs: Number.NaN })).toThrow(RangeError);
    expect(() => createUsageProducer({ ...base, maxPendingBatches: -1 })).toThrow(RangeError);
  });
});

describe('with a Redis that goes away and comes back', () => {
  let dataDir: string;
  let port: number;
  let server: ChildProcess | null = null;

  async function freePort(): Promise<number> {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const p = (s.address() as { port: number }).port;
    await new Promise((r) => s.close(r));
    return p;
  }
  async function startRedis() {
    server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dataDir], {
      stdio: 'ignore',
    });
    const probe = new Redis({ port, retryStrategy: () => 20, maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    await waitFor(async () => (await probe.ping().catch(() => null)) === 'PONG', { what: 'throwaway redis up' });
    probe.disconnect();
  }
  /** Stops it with a snapshot, so what was queued before the outage survives the restart. */
  async function stopRedis() {
    // SHUTDOWN never replies: no retries, or the client would wait for a server that is gone.
    const c = new Redis({ port, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => undefined);
    await c.call('SHUTDOWN', 'SAVE').catch(() => undefined);
    c.disconnect();
    if (server && server.exitCode === null) await once(server, 'exit');
    server = null;
  }

  beforeAll(async () => {
    dataDir = spoolDir();
    port = await freePort();
    await startRedis();
  });
  afterAll(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await once(server, 'exit');
    }
  });

  it('spools batches while Redis is down and replays them in order: every recorded event reaches the queue', async () => {
    const ks = createKeyspace('tgtest_outage');
    const { logger, lines } = captureLogger();
    const p = createUsageProducer({
      connection: { host: '127.0.0.1', port, retryStrategy: () => 25 },
      keyspace: ks,
      spoolDir: spoolDir(),
      source: 'gw-outage',
      logger,
      maxBatch: 10,
      maxWaitMs: 20,
      maxPendingBatches: 3,
      addTimeoutMs: 300,
      replayIntervalMs: 50,
    });
    producers.push(p);
    const recorded: UsageEvent[] = [];
    const record = (n: number) => {
      for (let i = 0; i < n; i++) {
        const e = usageEvent();
        recorded.push(e);
        p.record(e);
      }
    };

    await p.queue.waitUntilReady();
    record(25);
    await p.flush();
    expect(p.stats().batchesSent).toBe(3);

    await stopRedis();
    let maxBuffered = 0;
    for (let round = 0; round < 10; round++) {
      record(37);
      maxBuffered = Math.max(maxBuffered, p.buffered());
      await p.flush();
    }
    // Memory stays bounded while Redis is away; the events are on disk, fsync'ed.
    expect(maxBuffered).toBeLessThanOrEqual(10 * 4 + 37);
    expect(p.buffered()).toBe(0);
    expect(p.spoolDepth()).toBeGreaterThan(10);
    const spooled = readFileSync(p.spoolPath, 'utf8')
      .trim()
      .split('\n')
      .flatMap((l) => (JSON.parse(l) as UsageBatch).events);
    expect(spooled).toHaveLength(370);
    expect(lines.some((l) => l.level === 'warn' && /spooling/.test(l.msg ?? ''))).toBe(true);

    await startRedis();
    record(13); // recorded while the replay runs: must come after the spooled ones
    await waitFor(() => p.spoolDepth() === 0 && p.buffered() === 0, { timeoutMs: 10_000, what: 'spool replayed' });
    await p.flush();

    const counterRedis = new Redis({ port, maxRetriesPerRequest: null });
    const counter = new Queue(QUEUES.usage, { connection: counterRedis, prefix: ks.bullPrefix });
    try {
      const { jobs, events } = await queuedEvents(counter);
      expect(events).toHaveLength(recorded.length);
      expect(events.map((e) => e.id)).toEqual(recorded.map((e) => e.id));
      expect(new Set(jobs.map((j) => j.id)).size).toBe(jobs.length);
      expect(statSync(p.spoolPath).size).toBe(0);
      await counter.obliterate({ force: true });
    } finally {
      await counter.close();
      counterRedis.disconnect();
    }
    await p.close();
  });
});
