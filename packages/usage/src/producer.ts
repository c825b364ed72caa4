import { Redis, type RedisOptions } from 'ioredis';
import type { Queue } from 'bullmq';
import { QUEUES, type Keyspace } from '@tollgate/policy';
import { USAGE_JOB_NAME, type UsageEvent } from './event';
import { Batcher } from './batcher';
import { rawJson, USAGE_JOB_OPTIONS, UsageQueue, type SerializedBatch } from './job-format';
import { BatchJournal } from './journal';
import { Spool, type UsageLogger } from './spool';

export { USAGE_JOB_OPTIONS } from './job-format';
export { spoolFileName, type UsageLogger } from './spool';
export { journalDirName } from './journal';

export type UsageProducerOptions = {
  /**
   * ioredis options (the producer makes its own client with `enableOfflineQueue: false` so a
   * dead Redis fails fast), a client you own (then configure it the same way; not closed by
   * close()), or a factory whose client the producer owns and closes.
   */
  connection: RedisOptions | Redis | (() => Redis);
  keyspace: Keyspace;
  /** Directory of the spool file and the journal; created if missing. */
  spoolDir: string;
  /** This producer's stable identity (gateway instance / worker slot): names the spool file. */
  source: string;
  logger: UsageLogger;
  /** Events per batch; a full batch is sent at once. Default 500. */
  maxBatch?: number;
  /** Longest an event waits in memory before its batch is cut. Default 250 ms. */
  maxWaitMs?: number;
  /** Longest an event is in memory only: the batch being filled reaches its journal file within this. Default 10 ms; 0 = no journal. */
  journalMs?: number;
  /** Longest wait for one queue add before the batch goes to the spool. Default 1000 ms. */
  addTimeoutMs?: number;
  /** Batches waiting for Redis in memory before they are spooled. Default 20. */
  maxPendingBatches?: number;
  /** How often the spool replay is retried while Redis is away. Default 1000 ms. */
  replayIntervalMs?: number;
};

export type UsageProducerStats = {
  eventsRecorded: number;
  batchesSent: number;
  batchesSpooled: number;
  batchesReplayed: number;
  /** Spool lines (and journal files) that were not a batch: skipped with an error log. */
  corruptSpoolLines: number;
  /** Events JSON could not encode (a programming error upstream), dropped with an error log. */
  eventsUnserializable: number;
  /** Batches a killed predecessor left in the journal, moved to the spool at start. */
  batchesRecovered: number;
};

export type UsageProducer = {
  /** Synchronous and never throws; serialises the one event (a few µs). After close() the event is appended to the spool at once. */
  record(event: UsageEvent): void;
  /** Cuts the current batch and resolves once every recorded event is in Redis or fsync'ed in the spool. */
  flush(): Promise<void>;
  /** flush(), stop timers, close the queue (and the Redis client it made). Spooled batches stay for the next start. */
  close(): Promise<void>;
  /** Batches in the spool file not yet replayed. */
  spoolDepth(): number;
  /** Events in memory, not yet in Redis nor fsync'ed in the spool (the journal's copy aside). */
  buffered(): number;
  stats(): UsageProducerStats;
  readonly spoolPath: string;
  readonly journalDir: string | null;
  readonly queue: Queue;
};

function isRedisInstance(c: RedisOptions | Redis): c is Redis {
  // Checked by shape: a second copy of ioredis would fail an instanceof test.
  return typeof (c as Redis).sendCommand === 'function';
}

/**
 * Batches usage events into the BullMQ queue `usage` (job id = batch ULID). While Redis is away,
 * batches are appended to a spool file (one line per batch, fdatasync after every append) and
 * replayed in order when it returns; the file is truncated only after every line was added.
 * The batch being filled is journaled within journalMs, so a killed process loses at most that
 * much (journal.ts). Nothing is dropped while the process lives; memory is bounded by
 * maxBatch × maxPendingBatches.
 */
export function createUsageProducer(opts: UsageProducerOptions): UsageProducer {
  const maxBatch = opts.maxBatch ?? 500;
  const maxWaitMs = opts.maxWaitMs ?? 250;
  const journalMs = opts.journalMs ?? 10;
  const addTimeoutMs = opts.addTimeoutMs ?? 1000;
  const maxPendingBatches = opts.maxPendingBatches ?? 20;
  const replayIntervalMs = opts.replayIntervalMs ?? 1000;
  for (const [name, v] of Object.entries({ maxBatch, maxWaitMs, addTimeoutMs, maxPendingBatches, replayIntervalMs })) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }
  if (!Number.isInteger(journalMs) || journalMs < 0) throw new RangeError(`journalMs must be a non-negative integer, got ${journalMs}`);
  const { logger, source } = opts;
  const spool = new Spool(opts.spoolDir, source, logger);
  const journal = journalMs > 0 ? new BatchJournal(opts.spoolDir, source, logger) : null;
  // What a killed predecessor journaled becomes spool lines before anything else is written
  // (even with the journal now off: a previous run may have had it on).
  const recovering = journal ?? new BatchJournal(opts.spoolDir, source, logger);
  const recovered = recovering.recover();
  let batchesRecovered = 0;
  if (recovered.files.length) {
    try {
      if (recovered.batches.length) spool.appendSync(recovered.batches);
      batchesRecovered = recovered.batches.length;
      recovering.removeFiles(recovered.files);
      logger.warn(
        { batches: batchesRecovered, corrupt: recovered.corrupt },
        'usage producer: recovered journaled batches of a killed process',
      );
    } catch (err) {
      // Left where they are for the next start; nothing is lost by waiting.
      logger.error({ err: (err as Error).message, spoolPath: spool.path }, 'usage producer: cannot move journaled batches to the spool');
    }
  }
  const conn = opts.connection;
  const ownsRedis = typeof conn === 'function' || !isRedisInstance(conn);
  const redis =
    typeof conn === 'function'
      ? conn()
      : isRedisInstance(conn)
        ? conn
        : new Redis({ ...conn, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  let lastRedisError = 0;
  const onRedisError = (err: Error) => {
    // A dead Redis errors on every reconnect attempt: one line per 10 s is plenty.
    if (Date.now() - lastRedisError > 10_000) logger.warn({ err: err.message }, 'usage producer: redis error');
    lastRedisError = Date.now();
  };
  if (ownsRedis) redis.on('error', onRedisError);
  const queue: Queue = new UsageQueue(QUEUES.usage, { connection: redis, prefix: opts.keyspace.bullPrefix });
  queue.on('error', onRedisError);

  const pending: SerializedBatch[] = [];
  let pendingEvents = 0;
  let spoolMode = false;
  let replayRequested = false;
  let closing = false;
  let closed = false;
  let closePromise: Promise<void> | null = null;
  const late: string[] = [];
  let working: Promise<void> | null = null;
  let spoolBlocked = false;
  const stats = { eventsRecorded: 0, batchesSent: 0, batchesSpooled: 0 };

  const batcher = new Batcher({
    source,
    maxBatch,
    maxWaitMs,
    journalMs,
    journal,
    logger,
    onBatch: (batch) => {
      pending.push(batch);
      pendingEvents += batch.events;
      kick();
    },
  });

  const ready = () => redis.status === 'ready';

  // A spool left by a previous run of this source is replayed before anything new is sent.
  const init = spool.scan().then((found) => {
    if (!found) return;
    spoolMode = true;
    replayRequested = true;
    logger.info({ spoolPath: spool.path, batches: spool.lines }, 'usage producer: found a spool to replay');
  });

  function record(event: UsageEvent): void {
    try {
      stats.eventsRecorded++;
      const line = batcher.serialize(event);
      if (line === null) return;
      if (closed) {
        spool.appendSync([batcher.batchOf([line])]);
        stats.batchesSpooled++;
        return;
      }
      if (closing) {
        // close() is flushing: these go to the spool once the send loop has stopped.
        late.push(line);
        return;
      }
      batcher.add(line);
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'usage producer: record failed');
    }
  }

  function kick(): void {
    if (working) return;
    working = work()
      .catch((err) => logger.error({ err: (err as Error).message }, 'usage producer: send loop failed'))
      .finally(() => {
        working = null;
        if (pending.length > 0 && !spoolBlocked) kick();
      });
  }

  let everReady = ready();
  redis.once('ready', () => (everReady = true));
  /** At boot the client is still connecting: worth a short wait, unlike a Redis that went away. */
  async function awaitFirstConnect(): Promise<void> {
    if (everReady || ready()) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        redis.off('ready', done);
        resolve();
      };
      const t = setTimeout(done, addTimeoutMs);
      redis.once('ready', done);
    });
  }

  async function addBatch(batch: SerializedBatch): Promise<boolean> {
    if (!ready()) await awaitFirstConnect();
    if (!ready()) return false;
    let timer: NodeJS.Timeout | undefined;
    const add = queue.add(USAGE_JOB_NAME, rawJson(batch.json), { ...USAGE_JOB_OPTIONS, jobId: batch.batchId });
    try {
      const res = await Promise.race([add, new Promise<'timeout'>((r) => (timer = setTimeout(r, addTimeoutMs, 'timeout')))]);
      if (res === 'timeout') {
        // It may still land later: harmless, the replay adds the same job id.
        add.catch(() => undefined);
        return false;
      }
      return true;
    } catch (err) {
      onRedisError(err as Error);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** One serial loop does every send, spool write and replay step, so the order can't change. */
  async function work(): Promise<void> {
    await init;
    for (;;) {
      if (pending.length > 0) {
        if (!spoolMode && !ready()) await awaitFirstConnect();
        if (spoolMode || pending.length > maxPendingBatches || !ready()) {
          const batches = pending.slice();
          try {
            await spool.append(batches);
          } catch (err) {
            // Disk trouble: keep the batches in memory (never drop) and retry with the replay timer.
            logger.error({ err: (err as Error).message, spoolPath: spool.path }, 'usage producer: cannot write spool');
            spoolBlocked = true;
            return;
          }
          pending.splice(0, batches.length);
          for (const b of batches) {
            pendingEvents -= b.events;
            journal?.done(b.batchId);
          }
          stats.batchesSpooled += batches.length;
          if (!spoolMode) {
            const why = !ready()
              ? 'redis not connected'
              : pending.length + batches.length > maxPendingBatches
                ? 'backlog over maxPendingBatches'
                : 'queue add failed or timed out';
            logger.warn({ spoolPath: spool.path, why }, 'usage producer: spooling batches to disk');
          }
          spoolMode = true;
          continue;
        }
        const batch = pending[0]!;
        if (await addBatch(batch)) {
          pending.shift();
          pendingEvents -= batch.events;
          journal?.done(batch.batchId);
          stats.batchesSent++;
        } else spoolMode = true;
        continue;
      }
      if (spoolMode && replayRequested && !closing && ready()) {
        const step = await spool.replayStep(addBatch);
        if (step === 'done') spoolMode = false;
        if (step === 'more') continue;
        replayRequested = false;
      }
      return;
    }
  }

  const replayTimer = setInterval(() => {
    if (spoolBlocked) {
      spoolBlocked = false;
      kick();
    }
    if (spoolMode && ready()) {
      replayRequested = true;
      kick();
    }
  }, replayIntervalMs);
  replayTimer.unref();
  const onReady = () => {
    if (spoolMode) {
      replayRequested = true;
      kick();
    }
  };
  redis.on('ready', onReady);
  kick();

  async function idle(): Promise<void> {
    while (working) await working;
  }

  async function flush(): Promise<void> {
    batcher.cut();
    if (!working && pending.length) kick();
    await idle();
    // A spool write that failed leaves batches in memory; say so rather than pretend.
    if (pending.length > 0) throw new Error(`usage producer: ${pendingEvents} events could not be sent nor spooled`);
  }

  async function close(): Promise<void> {
    if (closePromise) return closePromise;
    closing = true;
    replayRequested = false;
    clearInterval(replayTimer);
    redis.off('ready', onReady);
    closePromise = (async () => {
      try {
        await flush();
      } finally {
        closed = true;
        batcher.stop();
        journal?.close();
        if (late.length) {
          try {
            spool.appendSync([batcher.batchOf(late.splice(0))]);
            stats.batchesSpooled++;
          } catch (err) {
            logger.error({ err: (err as Error).message, spoolPath: spool.path }, 'usage producer: cannot write spool');
          }
        }
        await queue.close().catch(() => undefined);
        spool.unlock();
        // The error listener stays: a client that is going away may still emit one.
        if (ownsRedis) redis.disconnect();
      }
    })();
    return closePromise;
  }

  return {
    record,
    flush,
    close,
    spoolDepth: () => spool.lines,
    buffered: () => batcher.filled + pendingEvents + late.length,
    stats: () => ({
      ...stats,
      batchesReplayed: spool.replayed,
      corruptSpoolLines: spool.corruptLines + recovered.corrupt,
      eventsUnserializable: batcher.eventsUnserializable,
      batchesRecovered,
    }),
    spoolPath: spool.path,
    journalDir: journal?.dir ?? null,
    queue,
  };
}
