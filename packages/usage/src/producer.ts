import { closeSync, fdatasyncSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { open, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { Job, Queue, type JobsOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { monotonicFactory } from 'ulid';
import { QUEUES, type Keyspace } from '@tollgate/policy';
import { USAGE_BATCH_VERSION, USAGE_JOB_NAME, type UsageBatch, type UsageEvent } from './event';

/** Any pino-like logger. */
export type UsageLogger = {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
};

/**
 * Options every usage job is added with. A completed job keeps its whole batch in Redis (~200 KB
 * at 500 events of ~400 B), so only the last 100 stay, for at most 60 s: completed usage jobs
 * then hold at most 100 × 200 KB ≈ 20 MB of Redis per queue whatever the traffic, so Redis
 * memory is dominated by key records and snapshots (~540 B per key, ~2 KB per tenant snapshot).
 * A replayed add of a batch id BullMQ has already forgotten is harmless: the worker's unique
 * batch id is the real guard (ADR 0006) and skips it. Before: 1,000 jobs / 10 minutes (≈ 147 MB
 * seen in the 10k-tenant run of issue 25), and earlier an hour / 100,000 jobs.
 */
export const USAGE_JOB_OPTIONS: JobsOptions = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 60, count: 100 },
  removeOnFail: { age: 7 * 86_400 },
};

export type UsageProducerOptions = {
  /**
   * ioredis options (the producer makes its own client with `enableOfflineQueue: false` so a
   * dead Redis fails fast), a client you own (then configure it the same way; not closed by
   * close()), or a factory whose client the producer owns and closes.
   */
  connection: RedisOptions | Redis | (() => Redis);
  keyspace: Keyspace;
  /** Directory of the spool file; created if missing. */
  spoolDir: string;
  /** This producer's stable identity (gateway instance / worker slot): names the spool file. */
  source: string;
  logger: UsageLogger;
  /** Events per batch; a full batch is sent at once. Default 500. */
  maxBatch?: number;
  /** Longest an event waits in memory before its batch is cut. Default 250 ms. */
  maxWaitMs?: number;
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
  corruptSpoolLines: number;
  /** Events JSON could not encode (a programming error upstream), dropped with an error log. */
  eventsUnserializable: number;
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
  /** Events in memory, not yet in Redis nor on disk. */
  buffered(): number;
  stats(): UsageProducerStats;
  readonly spoolPath: string;
  readonly queue: Queue;
};

const REPLAY_READ_BYTES = 1 << 20;
/** Smallest buffer a batch starts with. */
const MIN_BATCH_BYTES = 16 * 1024;

/**
 * A batch on its way: its JSON text as UTF-8 bytes (exactly what JSON.stringify gives for the
 * UsageBatch), written event by event as they are recorded. Serialising a whole batch at once
 * (~200 KB for 500 events) held the gateway's event loop for 1-2 ms per batch, which its
 * requests felt at p99; and bytes off the JS heap cost the young-generation GC nothing.
 */
type SerializedBatch = { batchId: string; events: number; json: Buffer };

/** Appends event JSON to one batch's bytes; the buffer grows by doubling. */
class BatchWriter {
  private buf: Buffer;
  private len = 0;
  events = 0;
  constructor(
    readonly batchId: string,
    head: string,
    capacity: number,
  ) {
    this.buf = Buffer.allocUnsafe(Math.max(capacity, head.length * 3 + 2));
    this.len = this.buf.write(head, 0, 'utf8');
  }
  add(json: string): void {
    // At most 3 bytes per UTF-16 unit, plus the separator and the closing "]}".
    const need = this.len + json.length * 3 + 3;
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    if (this.events > 0) this.buf[this.len++] = 0x2c; // ,
    this.len += this.buf.write(json, this.len, 'utf8');
    this.events++;
  }
  /** Closes the JSON text; the writer is done with. */
  finish(): SerializedBatch {
    this.buf[this.len++] = 0x5d; // ]
    this.buf[this.len++] = 0x7d; // }
    return { batchId: this.batchId, events: this.events, json: this.buf.subarray(0, this.len) };
  }
}

const RAW_JSON = Symbol('tollgate.rawJson');
type RawJson = { [RAW_JSON]: Buffer };

/**
 * A job whose data is JSON text already encoded: BullMQ hands its data to Redis as a script
 * argument, which takes bytes as well as a string, so it is stored as it is, not serialised again.
 */
class RawJsonJob extends Job {
  override asJSON(): ReturnType<Job['asJSON']> {
    // The data object has only a symbol key, so the base class serialises it to a cheap "{}".
    const json = super.asJSON();
    const raw = (this.data as Partial<RawJson> | undefined)?.[RAW_JSON];
    if (raw instanceof Buffer) json.data = raw as unknown as string;
    return json;
  }
}

/** The `usage` queue, taking batches as JSON text (BullMQ's documented way to extend its Job class). */
class UsageQueue extends Queue {
  protected override get Job(): typeof Job {
    // Generic only in its type parameters, which the queue never narrows.
    return RawJsonJob as unknown as typeof Job;
  }
}

function isRedisInstance(c: RedisOptions | Redis): c is Redis {
  // Checked by shape: a second copy of ioredis would fail an instanceof test.
  return typeof (c as Redis).sendCommand === 'function';
}

/** The spool holds one JSON batch per line; this is enough to replay it, the worker validates fully. */
function looksLikeBatch(v: unknown): v is UsageBatch {
  const b = v as UsageBatch;
  return (
    !!b &&
    typeof b === 'object' &&
    b.v === USAGE_BATCH_VERSION &&
    typeof b.batchId === 'string' &&
    b.batchId.length === 26 &&
    Array.isArray(b.events)
  );
}

/**
 * Two live producers on one spool file would truncate each other's batches, so the file is
 * claimed with a pid lock; a lock whose process is gone is taken over.
 */
function lockSpool(lockPath: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(lockPath, 'utf8').trim());
      let alive = false;
      if (Number.isInteger(pid) && pid > 0) {
        try {
          process.kill(pid, 0);
          alive = true;
        } catch (e) {
          alive = (e as NodeJS.ErrnoException).code === 'EPERM';
        }
      }
      if (alive) throw new Error(`usage spool ${lockPath.slice(0, -5)} is in use by process ${pid}: give each producer its own source`);
      rmSync(lockPath, { force: true });
    }
  }
  throw new Error(`cannot lock usage spool ${lockPath}`);
}

export function spoolFileName(source: string): string {
  return `usage-spool-${source.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100)}.jsonl`;
}

/**
 * Batches usage events into the BullMQ queue `usage` (job id = batch ULID). While Redis is away,
 * batches are appended to a spool file (one line per batch, fdatasync after every append) and
 * replayed in order when it returns; the file is truncated only after every line was added.
 * Nothing is dropped while the process lives; memory is bounded by maxBatch × maxPendingBatches.
 */
export function createUsageProducer(opts: UsageProducerOptions): UsageProducer {
  const maxBatch = opts.maxBatch ?? 500;
  const maxWaitMs = opts.maxWaitMs ?? 250;
  const addTimeoutMs = opts.addTimeoutMs ?? 1000;
  const maxPendingBatches = opts.maxPendingBatches ?? 20;
  const replayIntervalMs = opts.replayIntervalMs ?? 1000;
  for (const [name, v] of Object.entries({ maxBatch, maxWaitMs, addTimeoutMs, maxPendingBatches, replayIntervalMs })) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }
  const { logger, source } = opts;
  mkdirSync(opts.spoolDir, { recursive: true });
  const spoolPath = path.join(opts.spoolDir, spoolFileName(source));
  const lockPath = `${spoolPath}.lock`;
  lockSpool(lockPath);
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
  const nextId = monotonicFactory();

  /** The batch being filled, if any. */
  let filling: BatchWriter | null = null;
  const pending: SerializedBatch[] = [];
  let pendingEvents = 0;
  let spoolMode = false;
  let spoolLines = 0;
  let replayOffset = 0;
  let replayRequested = false;
  let closing = false;
  let closed = false;
  let closePromise: Promise<void> | null = null;
  const late: string[] = [];
  let cutTimer: NodeJS.Timeout | null = null;
  let working: Promise<void> | null = null;
  const stats: UsageProducerStats = {
    eventsRecorded: 0,
    batchesSent: 0,
    batchesSpooled: 0,
    batchesReplayed: 0,
    corruptSpoolLines: 0,
    eventsUnserializable: 0,
  };

  const ready = () => redis.status === 'ready';

  // A spool left by a previous run of this source is replayed before anything new is sent.
  const init = (async () => {
    try {
      const st = await stat(spoolPath);
      if (st.size > 0) {
        // Counted in chunks: a spool from a long outage can be far larger than memory should hold.
        const fh = await open(spoolPath, 'r+');
        try {
          const chunk = Buffer.alloc(REPLAY_READ_BYTES);
          let last = 10;
          for (let off = 0; off < st.size;) {
            const { bytesRead } = await fh.read(chunk, 0, chunk.length, off);
            if (bytesRead === 0) break;
            for (let i = 0; i < bytesRead; i++) if (chunk[i] === 10) spoolLines++;
            last = chunk[bytesRead - 1]!;
            off += bytesRead;
          }
          if (last !== 10) {
            // A torn tail from a crash: end it, so our next append starts a line of its own
            // instead of being glued to the fragment and skipped with it.
            await fh.write('\n', st.size);
            await fh.datasync();
            spoolLines++;
          }
        } finally {
          await fh.close();
        }
        spoolMode = true;
        replayRequested = true;
        logger.info({ spoolPath, batches: spoolLines }, 'usage producer: found a spool to replay');
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        logger.error({ err: (err as Error).message, spoolPath }, 'usage producer: cannot read spool');
    }
  })();

  /** An event JSON can't encode (a BigInt, a cycle: a bug upstream) is dropped with a log. */
  function serialize(event: UsageEvent): string | null {
    let line: string | undefined;
    try {
      line = JSON.stringify(event);
    } catch {
      line = undefined;
    }
    if (typeof line === 'string' && line.startsWith('{')) return line;
    stats.eventsUnserializable++;
    logger.error(
      { eventId: typeof event?.id === 'string' ? event.id : null },
      'usage producer: dropping an event that cannot be serialized',
    );
    return null;
  }

  function record(event: UsageEvent): void {
    try {
      stats.eventsRecorded++;
      const line = serialize(event);
      if (line === null) return;
      if (closed) {
        appendSpoolSync([batchOf([line])]);
        return;
      }
      if (closing) {
        // close() is flushing: these go to the spool once the send loop has stopped.
        late.push(line);
        return;
      }
      (filling ??= startBatch()).add(line);
      if (filling.events >= maxBatch) cut();
      else if (!cutTimer) cutTimer = setTimeout(cut, maxWaitMs);
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'usage producer: record failed');
    }
  }

  const sourceJson = JSON.stringify(source);
  /** Sized like the last batch, so a steady stream doesn't regrow every batch's buffer. */
  let nextCapacity = MIN_BATCH_BYTES;
  /** Writes the same text JSON.stringify gives for a UsageBatch { v, batchId, source, events }. */
  function startBatch(): BatchWriter {
    const batchId = nextId();
    return new BatchWriter(batchId, `{"v":${USAGE_BATCH_VERSION},"batchId":"${batchId}","source":${sourceJson},"events":[`, nextCapacity);
  }
  function batchOf(lines: string[]): SerializedBatch {
    const w = startBatch();
    for (const l of lines) w.add(l);
    return w.finish();
  }

  function cut(): void {
    if (cutTimer) clearTimeout(cutTimer);
    cutTimer = null;
    if (filling === null) return;
    const batch = filling.finish();
    filling = null;
    nextCapacity = Math.max(MIN_BATCH_BYTES, batch.json.length + 4096);
    pending.push(batch);
    pendingEvents += batch.events;
    kick();
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
    const data: RawJson = { [RAW_JSON]: batch.json };
    const add = queue.add(USAGE_JOB_NAME, data, { ...USAGE_JOB_OPTIONS, jobId: batch.batchId });
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

  const NEWLINE = Buffer.from('\n');
  const spoolBytes = (batches: SerializedBatch[]) => Buffer.concat(batches.flatMap((b) => [b.json, NEWLINE]));

  let spoolBlocked = false;
  async function appendSpool(batches: SerializedBatch[]): Promise<void> {
    const fh = await open(spoolPath, 'a');
    let before = -1;
    try {
      before = (await fh.stat()).size;
      await fh.write(spoolBytes(batches));
      await fh.datasync();
    } catch (err) {
      // A partial write (disk full) would glue the retry onto a fragment: cut it off again.
      if (before >= 0) await fh.truncate(before).catch(() => undefined);
      throw err;
    } finally {
      await fh.close();
    }
  }
  function appendSpoolSync(batches: SerializedBatch[]): void {
    const fd = openSync(spoolPath, 'a');
    try {
      writeSync(fd, spoolBytes(batches));
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    spoolLines += batches.length;
    stats.batchesSpooled += batches.length;
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
            await appendSpool(batches);
          } catch (err) {
            // Disk trouble: keep the batches in memory (never drop) and retry with the replay timer.
            logger.error({ err: (err as Error).message, spoolPath }, 'usage producer: cannot write spool');
            spoolBlocked = true;
            return;
          }
          pending.splice(0, batches.length);
          for (const b of batches) pendingEvents -= b.events;
          spoolLines += batches.length;
          stats.batchesSpooled += batches.length;
          if (!spoolMode) {
            const why = !ready()
              ? 'redis not connected'
              : pending.length + batches.length > maxPendingBatches
                ? 'backlog over maxPendingBatches'
                : 'queue add failed or timed out';
            logger.warn({ spoolPath, why }, 'usage producer: spooling batches to disk');
          }
          spoolMode = true;
          continue;
        }
        const batch = pending[0]!;
        if (await addBatch(batch)) {
          pending.shift();
          pendingEvents -= batch.events;
          stats.batchesSent++;
        } else spoolMode = true;
        continue;
      }
      if (spoolMode && replayRequested && !closing && ready()) {
        const step = await replayStep();
        if (step === 'more') continue;
        replayRequested = false;
      }
      return;
    }
  }

  /** Replays up to ~1 MiB of spool lines; 'more' when it made progress and lines are left. */
  async function replayStep(): Promise<'more' | 'done' | 'failed'> {
    const fh = await open(spoolPath, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (!fh) {
      spoolMode = false;
      spoolLines = 0;
      replayOffset = 0;
      return 'done';
    }
    let size: number;
    let chunk: Buffer;
    try {
      size = (await fh.stat()).size;
      let want = REPLAY_READ_BYTES;
      for (;;) {
        const len = Math.min(want, size - replayOffset);
        chunk = Buffer.alloc(Math.max(0, len));
        if (len > 0) await fh.read(chunk, 0, len, replayOffset);
        if (chunk.includes(10) || replayOffset + len >= size) break;
        want *= 2; // one batch longer than the read size
      }
    } finally {
      await fh.close();
    }
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(10, pos);
      const atEof = nl < 0;
      // A line cut by the read size is read whole next step; only a tail at EOF is torn.
      if (atEof && replayOffset + (chunk.length - pos) < size) break;
      const bytes = chunk.subarray(pos, atEof ? chunk.length : nl);
      const line = bytes.toString('utf8');
      const consumed = (atEof ? chunk.length : nl + 1) - pos;
      let batch: unknown;
      try {
        batch = line.trim() === '' ? null : JSON.parse(line);
      } catch {
        batch = undefined;
      }
      if (line.trim() !== '' && !looksLikeBatch(batch)) {
        // A torn write (crash, full disk) or a damaged file: skip the line, never stall the replay.
        stats.corruptSpoolLines++;
        logger.error({ spoolPath, offset: replayOffset, bytes: consumed }, 'usage producer: skipping corrupt spool line');
      } else if (batch) {
        // The line itself is the job's data: it parsed as a batch, and is sent as it was written.
        const b = batch as UsageBatch;
        if (!(await addBatch({ batchId: b.batchId, events: b.events.length, json: bytes }))) return 'failed';
        stats.batchesReplayed++;
      }
      replayOffset += consumed;
      spoolLines = Math.max(0, spoolLines - 1);
      pos += consumed;
    }
    if (replayOffset >= size) {
      // Every line is in Redis: only now does the spool go. Appends happen in this same loop,
      // so nothing can have been written since the size was read.
      await truncate(spoolPath, 0);
      replayOffset = 0;
      spoolLines = 0;
      spoolMode = false;
      logger.info({ spoolPath, replayed: stats.batchesReplayed }, 'usage producer: spool replayed');
      return 'done';
    }
    return 'more';
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
    cut();
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
        if (late.length) {
          try {
            appendSpoolSync([batchOf(late.splice(0))]);
          } catch (err) {
            logger.error({ err: (err as Error).message, spoolPath }, 'usage producer: cannot write spool');
          }
        }
        await queue.close().catch(() => undefined);
        rmSync(lockPath, { force: true });
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
    spoolDepth: () => spoolLines,
    buffered: () => (filling?.events ?? 0) + pendingEvents + late.length,
    stats: () => ({ ...stats }),
    spoolPath,
    queue,
  };
}
