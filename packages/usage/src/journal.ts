// The crash journal. The batch being filled lives in memory for up to maxWaitMs; a process
// killed then (SIGKILL, OOM, a crash) lost its events for good — ~64 calls per kill at
// 500 req/s. So every batch also has a file of its own, written (never fsync'ed: the page cache
// survives a process kill, and only a machine crash could lose it) within `flushMs` of each
// event, sealed when the batch is cut, and deleted once the batch is in Redis or in the spool.
// The next start of the same source turns what is left into spool lines, replayed in order like
// any other; a batch that did reach Redis before the kill comes back under its own batch id,
// which the queue (job id) and the worker (ProcessedBatch) both ignore.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, unlink, writeSync } from 'node:fs';
import path from 'node:path';
import { BATCH_TAIL, looksLikeBatch, type BatchWriter, type SerializedBatch } from './job-format';
import type { UsageLogger } from './spool';

export function journalDirName(source: string): string {
  return `usage-journal-${source.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100)}`;
}

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const noop = () => undefined;

export type RecoveredJournal = { batches: SerializedBatch[]; files: string[]; corrupt: number };

/** One source's journal directory; the spool's lock covers it. Every method is synchronous and never throws. */
export class BatchJournal {
  readonly dir: string;
  private fd: number | null = null;
  private fdBatch: string | null = null;
  private lastError = 0;
  writes = 0;

  constructor(
    spoolDir: string,
    source: string,
    private readonly logger: UsageLogger,
  ) {
    this.dir = path.join(spoolDir, journalDirName(source));
    mkdirSync(this.dir, { recursive: true });
  }

  /** Writes the events `w` holds beyond what its file already has (opening the file on its first events). */
  write(w: BatchWriter): void {
    if (w.journaled < 0 || w.events === 0 || w.length === w.journaled) return;
    this.writeBytes(w, w.bytesFrom(w.journaled));
  }

  /** The batch was cut: the rest of its text (with the closing `]}`) goes to its file, which is closed. */
  seal(w: BatchWriter, batch: SerializedBatch): void {
    if (w.journaled >= 0 && batch.events > 0) this.writeBytes(w, batch.json.subarray(w.journaled));
    if (this.fdBatch === batch.batchId) this.closeFile();
  }

  /** The batch is in Redis or fdatasync'ed in the spool: its file goes (a kill before that replays a duplicate the worker skips). */
  done(batchId: string): void {
    unlink(path.join(this.dir, batchId), noop);
  }

  /** Batches a killed predecessor left, oldest first, each made whole; `files` are to be removed once they are safe elsewhere. */
  recover(): RecoveredJournal {
    const out: RecoveredJournal = { batches: [], files: [], corrupt: 0 };
    let names: string[];
    try {
      names = readdirSync(this.dir)
        .filter((n) => ULID.test(n))
        .sort();
    } catch {
      return out;
    }
    for (const name of names) {
      const file = path.join(this.dir, name);
      out.files.push(file);
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch (err) {
        this.logger.error({ err: (err as Error).message, file }, 'usage producer: cannot read journal file');
        out.files.pop();
        continue;
      }
      // Written at event boundaries: an unsealed file needs only its closing bytes.
      const sealed = bytes.length >= 2 && bytes.subarray(bytes.length - 2).equals(BATCH_TAIL);
      const json = sealed ? bytes : Buffer.concat([bytes, BATCH_TAIL]);
      let batch: unknown;
      try {
        batch = JSON.parse(json.toString('utf8'));
      } catch {
        batch = undefined;
      }
      if (!looksLikeBatch(batch) || batch.batchId !== name) {
        out.corrupt++;
        this.logger.error({ file, bytes: bytes.length }, 'usage producer: skipping a corrupt journal file');
        continue;
      }
      if (batch.events.length > 0) out.batches.push({ batchId: name, events: batch.events.length, json });
    }
    return out;
  }

  removeFiles(files: readonly string[]): void {
    for (const f of files) rmSync(f, { force: true });
  }

  close(): void {
    this.closeFile();
  }

  private writeBytes(w: BatchWriter, bytes: Buffer): void {
    try {
      if (this.fdBatch !== w.batchId) {
        this.closeFile();
        this.fd = openSync(path.join(this.dir, w.batchId), 'w');
        this.fdBatch = w.batchId;
      }
      let off = 0;
      while (off < bytes.length) off += writeSync(this.fd!, bytes, off, bytes.length - off);
      w.journaled += bytes.length;
      this.writes++;
    } catch (err) {
      // Disk trouble: this batch is not journaled any further (its file would have a hole); the
      // queue and the spool don't depend on the journal, so nothing else changes.
      w.journaled = -1;
      this.closeFile();
      rmSync(path.join(this.dir, w.batchId), { force: true });
      if (Date.now() - this.lastError > 10_000) {
        this.logger.error({ err: (err as Error).message, dir: this.dir }, 'usage producer: cannot write journal');
        this.lastError = Date.now();
      }
    }
  }

  private closeFile(): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        // already gone
      }
    }
    this.fd = null;
    this.fdBatch = null;
  }
}
