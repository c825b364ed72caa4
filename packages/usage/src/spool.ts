// The disk spool: complete batches, one JSON line each, appended (fdatasync'ed) while Redis is
// away and replayed in order when it returns. The file is truncated only once every line is in Redis.
import { closeSync, fdatasyncSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { open, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import type { UsageBatch } from './event';
import { looksLikeBatch, type SerializedBatch } from './job-format';

/** Any pino-like logger. */
export type UsageLogger = {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
};

const REPLAY_READ_BYTES = 1 << 20;
const NEWLINE = Buffer.from('\n');

export function spoolFileName(source: string): string {
  return `usage-spool-${source.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100)}.jsonl`;
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

const spoolBytes = (batches: readonly SerializedBatch[]) => Buffer.concat(batches.flatMap((b) => [b.json, NEWLINE]));

/** One source's spool file, locked for this process. Not concurrent: the producer's send loop calls it serially. */
export class Spool {
  readonly path: string;
  private readonly lockPath: string;
  /** Lines not yet replayed. */
  lines = 0;
  private replayOffset = 0;
  corruptLines = 0;
  replayed = 0;

  constructor(
    dir: string,
    source: string,
    private readonly logger: UsageLogger,
  ) {
    mkdirSync(dir, { recursive: true });
    this.path = path.join(dir, spoolFileName(source));
    this.lockPath = `${this.path}.lock`;
    lockSpool(this.lockPath);
  }

  unlock(): void {
    rmSync(this.lockPath, { force: true });
  }

  /** Counts the lines a previous run left (and ends a torn tail); true when there is something to replay. */
  async scan(): Promise<boolean> {
    try {
      const st = await stat(this.path);
      if (st.size === 0) return false;
      // Counted in chunks: a spool from a long outage can be far larger than memory should hold.
      const fh = await open(this.path, 'r+');
      try {
        const chunk = Buffer.alloc(REPLAY_READ_BYTES);
        let last = 10;
        for (let off = 0; off < st.size;) {
          const { bytesRead } = await fh.read(chunk, 0, chunk.length, off);
          if (bytesRead === 0) break;
          for (let i = 0; i < bytesRead; i++) if (chunk[i] === 10) this.lines++;
          last = chunk[bytesRead - 1]!;
          off += bytesRead;
        }
        if (last !== 10) {
          // A torn tail from a crash: end it, so our next append starts a line of its own
          // instead of being glued to the fragment and skipped with it.
          await fh.write('\n', st.size);
          await fh.datasync();
          this.lines++;
        }
      } finally {
        await fh.close();
      }
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.logger.error({ err: (err as Error).message, spoolPath: this.path }, 'usage producer: cannot read spool');
      return false;
    }
  }

  /** Appends batches and fdatasyncs; a partial write (disk full) is cut off again before the error is thrown. */
  async append(batches: readonly SerializedBatch[]): Promise<void> {
    const fh = await open(this.path, 'a');
    let before = -1;
    try {
      before = (await fh.stat()).size;
      await fh.write(spoolBytes(batches));
      await fh.datasync();
    } catch (err) {
      if (before >= 0) await fh.truncate(before).catch(() => undefined);
      throw err;
    } finally {
      await fh.close();
    }
    this.lines += batches.length;
  }

  appendSync(batches: readonly SerializedBatch[]): void {
    const fd = openSync(this.path, 'a');
    try {
      writeSync(fd, spoolBytes(batches));
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.lines += batches.length;
  }

  /**
   * Replays up to ~1 MiB of lines through `add`; 'more' when it made progress and lines are left,
   * 'done' when the file is empty (then truncated), 'failed' when an add did not land.
   */
  async replayStep(add: (batch: SerializedBatch) => Promise<boolean>): Promise<'more' | 'done' | 'failed'> {
    const fh = await open(this.path, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (!fh) {
      this.lines = 0;
      this.replayOffset = 0;
      return 'done';
    }
    let size: number;
    let chunk: Buffer;
    try {
      size = (await fh.stat()).size;
      let want = REPLAY_READ_BYTES;
      for (;;) {
        const len = Math.min(want, size - this.replayOffset);
        chunk = Buffer.alloc(Math.max(0, len));
        if (len > 0) await fh.read(chunk, 0, len, this.replayOffset);
        if (chunk.includes(10) || this.replayOffset + len >= size) break;
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
      if (atEof && this.replayOffset + (chunk.length - pos) < size) break;
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
        this.corruptLines++;
        this.logger.error(
          { spoolPath: this.path, offset: this.replayOffset, bytes: consumed },
          'usage producer: skipping corrupt spool line',
        );
      } else if (batch) {
        // The line itself is the job's data: it parsed as a batch, and is sent as it was written.
        const b = batch as UsageBatch;
        if (!(await add({ batchId: b.batchId, events: b.events.length, json: bytes }))) return 'failed';
        this.replayed++;
      }
      this.replayOffset += consumed;
      this.lines = Math.max(0, this.lines - 1);
      pos += consumed;
    }
    if (this.replayOffset >= size) {
      // Every line is in Redis: only now does the spool go. Appends happen in the same serial
      // loop, so nothing can have been written since the size was read.
      await truncate(this.path, 0);
      this.replayOffset = 0;
      this.lines = 0;
      this.logger.info({ spoolPath: this.path, replayed: this.replayed }, 'usage producer: spool replayed');
      return 'done';
    }
    return 'more';
  }
}
