// The crash journal alone (batcher + journal files, no Redis), then a producer starting on what a
// killed predecessor journaled. The real kill is in test/faults/gateway-kill.test.ts.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { monotonicFactory } from 'ulid';
import { QUEUES } from '@tollgate/policy';
import { testEnv, testKeyspace, waitFor } from '../../../test/harness';
import { Batcher } from './batcher';
import { BatchJournal } from './journal';
import { createUsageProducer, journalDirName, type UsageBatch, type UsageEvent, type UsageLogger } from './index';
import type { SerializedBatch } from './job-format';

const nextId = monotonicFactory();
const event = (n: number): UsageEvent => ({
  id: nextId(),
  ts: 1_700_000_000_000 + n,
  tenantId: 'ten_1',
  apiId: 'api_1',
  routeId: 'rte_1',
  keyId: 'key_1',
  consumerId: 'con_1',
  subscriptionId: 'sub_1',
  planId: 'pln_1',
  method: 'GET',
  status: 200,
  latencyMs: 1,
  upstreamLatencyMs: 1,
  bytesIn: 1,
  bytesOut: n,
  cacheHit: false,
  rejected: null,
});
const errors: string[] = [];
const logger: UsageLogger = { info: () => undefined, warn: () => undefined, error: (_o, m) => void errors.push(m ?? '') };
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'tg-journal-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function batcherOn(dir: string, opts: { maxBatch?: number; journalMs?: number } = {}) {
  const journal = new BatchJournal(dir, 'gw-a', logger);
  const cut: SerializedBatch[] = [];
  const batcher = new Batcher({
    source: 'gw-a',
    maxBatch: opts.maxBatch ?? 1000,
    maxWaitMs: 60_000,
    journalMs: opts.journalMs ?? 10,
    journal,
    logger,
    onBatch: (b) => void cut.push(b),
  });
  return { journal, batcher, cut };
}

describe('the batch journal', () => {
  it('has the batch being filled on disk within journalMs, and recovers it whole', async () => {
    const dir = tmp();
    const { journal, batcher } = batcherOn(dir);
    const events = [event(1), event(2), event(3)];
    for (const e of events) batcher.add(batcher.serialize(e)!);
    // Nothing was cut (maxWaitMs is a minute): only the journal timer can have written this.
    const files = await waitFor(() => {
      const f = readdirSync(journal.dir);
      return f.length === 1 && readFileSync(path.join(journal.dir, f[0]!)).length > 0 ? f : null;
    });
    batcher.add(batcher.serialize(event(4))!);
    batcher.flushJournal();
    const got = new BatchJournal(dir, 'gw-a', logger).recover();
    expect(got.corrupt).toBe(0);
    expect(got.batches.map((b) => b.batchId)).toEqual(files);
    const parsed = JSON.parse(got.batches[0]!.json.toString()) as UsageBatch;
    expect(parsed).toMatchObject({ v: 1, batchId: files[0], source: 'gw-a' });
    expect(parsed.events.map((e) => e.bytesOut)).toEqual([1, 2, 3, 4]);
    batcher.stop();
    journal.close();
  });

  it('seals a cut batch byte-identical to what is sent, and forgets it once done', () => {
    const dir = tmp();
    const { journal, batcher, cut } = batcherOn(dir, { maxBatch: 3 });
    batcher.add(batcher.serialize(event(1))!);
    batcher.flushJournal();
    batcher.add(batcher.serialize(event(2))!);
    batcher.add(batcher.serialize(event(3))!); // the third cuts the batch
    expect(cut).toHaveLength(1);
    const file = path.join(journal.dir, cut[0]!.batchId);
    expect(readFileSync(file).equals(cut[0]!.json)).toBe(true);
    journal.done(cut[0]!.batchId);
    return waitFor(() => !existsSync(file), { what: 'the journal file removed' });
  });

  it('skips a damaged file and one not named by a batch id, with a log', () => {
    const dir = tmp();
    const j = new BatchJournal(dir, 'gw-a', logger);
    writeFileSync(path.join(j.dir, nextId()), '{"v":1,"batchId":"torn');
    writeFileSync(path.join(j.dir, 'notes.txt'), 'hello');
    const before = errors.length;
    const got = j.recover();
    expect(got.batches).toEqual([]);
    expect(got.corrupt).toBe(1);
    expect(errors.length - before).toBe(1);
  });
});

describe('a producer starting after a kill', () => {
  it('moves the journaled batches to its spool and sends them, under their own batch ids', async () => {
    const ks = testKeyspace('journal');
    const dir = tmp();
    // What a killed process left: one batch sealed (maybe sent already), one still being filled.
    const { batcher, cut } = batcherOn(dir, { maxBatch: 2 });
    for (const n of [1, 2, 3]) batcher.add(batcher.serialize(event(n))!);
    batcher.flushJournal();
    batcher.stop();
    const redis = new Redis(testEnv().redisUrl, { maxRetriesPerRequest: null });
    const queue = new Queue(QUEUES.usage, { connection: redis, prefix: ks.bullPrefix });
    const url = new URL(testEnv().redisUrl);
    const p = createUsageProducer({
      connection: { host: url.hostname, port: Number(url.port || 6379) },
      keyspace: ks,
      spoolDir: dir,
      source: 'gw-a',
      logger,
    });
    try {
      expect(p.stats().batchesRecovered).toBe(2);
      expect(readdirSync(path.join(dir, journalDirName('gw-a')))).toEqual([]);
      const jobs = await waitFor(async () => {
        const j = await queue.getJobs(['waiting'], 0, -1, true);
        return j.length === 2 ? j : null;
      });
      expect(jobs[0]!.id).toBe(cut[0]!.batchId);
      expect(jobs.flatMap((j) => (j.data as UsageBatch).events.map((e) => e.bytesOut))).toEqual([1, 2, 3]);
    } finally {
      await p.close();
      await queue.obliterate({ force: true });
      await queue.close();
      redis.disconnect();
    }
  });
});
