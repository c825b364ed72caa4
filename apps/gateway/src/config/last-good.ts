import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { PolicySnapshot } from '@tollgate/policy';

/**
 * The last good policy snapshots on local disk (docs/adr/0029): written after changes loaded from
 * Redis (debounced), read at boot only when Redis can't be reached. The file is
 *
 *   tollgate-last-good v1 sha256=<hex of the body>\n<body: JSON array of snapshots>
 *
 * written to a temporary file, fsynced and renamed over the old one, so a reader sees a whole
 * file or the previous one. A file that is too large, truncated, corrupt or of another format is
 * ignored with a warning; a snapshot in it that fails validation is skipped.
 */
export const LAST_GOOD_FILE = 'policy-snapshots.v1';
const HEADER = 'tollgate-last-good v1 sha256=';

export type LastGoodOptions = {
  dir: string;
  logger: Logger;
  /** Largest file read or written; a larger one is ignored (hostile or runaway contents). */
  maxBytes: number;
  /** Changes within this window are written once, at its end. */
  debounceMs: number;
};

export function encodeLastGood(snapshots: readonly PolicySnapshot[]): string {
  const body = JSON.stringify(snapshots);
  const sum = createHash('sha256').update(body).digest('hex');
  return `${HEADER}${sum}\n${body}`;
}

/** The snapshots in `text`, or a reason it was refused. */
export function decodeLastGood(text: string): { snapshots: PolicySnapshot[]; skipped: number } | { error: string } {
  const nl = text.indexOf('\n');
  if (nl === -1 || !text.startsWith(HEADER)) return { error: 'unknown format' };
  const sum = text.slice(HEADER.length, nl);
  const body = text.slice(nl + 1);
  if (createHash('sha256').update(body).digest('hex') !== sum) return { error: 'checksum mismatch (truncated or corrupt)' };
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return { error: 'unreadable JSON' };
  }
  if (!Array.isArray(raw)) return { error: 'not a list of snapshots' };
  const snapshots: PolicySnapshot[] = [];
  const seen = new Set<string>();
  let skipped = 0;
  for (const item of raw) {
    const parsed = PolicySnapshot.safeParse(item);
    if (!parsed.success || seen.has(parsed.data.tenantId)) skipped++;
    else {
      seen.add(parsed.data.tenantId);
      snapshots.push(parsed.data);
    }
  }
  return { snapshots, skipped };
}

export class LastGood {
  readonly file: string;
  private timer: NodeJS.Timeout | null = null;
  private pending: (() => readonly PolicySnapshot[]) | null = null;
  /** The write in progress: writes are serialised, so an older state never renames over a newer one. */
  private writing: Promise<void> = Promise.resolve();
  /** Counters for tests: files written, writes refused or failed. */
  readonly stats = { writes: 0, failures: 0 };

  constructor(private readonly opts: LastGoodOptions) {
    this.file = path.join(opts.dir, LAST_GOOD_FILE);
  }

  /** Snapshots from the file; empty (with a warning) when it is missing, too large or invalid. Never throws. */
  read(): PolicySnapshot[] {
    const { logger, maxBytes } = this.opts;
    try {
      const size = statSync(this.file).size;
      if (size > maxBytes) {
        logger.warn({ file: this.file, size, maxBytes }, 'last good configuration file too large; ignored');
        return [];
      }
      const result = decodeLastGood(readFileSync(this.file, 'utf8'));
      if ('error' in result) {
        logger.warn({ file: this.file, reason: result.error }, 'last good configuration file ignored');
        return [];
      }
      if (result.skipped)
        logger.warn({ file: this.file, skipped: result.skipped }, 'invalid snapshots in the last good configuration skipped');
      return result.snapshots;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') logger.warn({ file: this.file, err: (err as Error).message }, 'last good configuration unreadable; ignored');
      return [];
    }
  }

  /** Writes what `current` returns once the debounce window closes (a burst of changes: one write). */
  schedule(current: () => readonly PolicySnapshot[]): void {
    this.pending = current;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, this.opts.debounceMs);
    this.timer.unref();
  }

  /**
   * Writes a pending change now (shutdown, tests); resolves when it is on disk. Never rejects: a
   * full disk must not stop serving. The file is written off the event loop; only the JSON is built on it.
   */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const current = this.pending;
    this.pending = null;
    if (current) {
      const snapshots = current();
      this.writing = this.writing.then(() => this.write(snapshots));
    }
    return this.writing;
  }

  stop(): Promise<void> {
    return this.flush();
  }

  private async write(snapshots: readonly PolicySnapshot[]): Promise<void> {
    const { logger, maxBytes, dir } = this.opts;
    const text = encodeLastGood(snapshots);
    const bytes = Buffer.byteLength(text);
    if (bytes > maxBytes) {
      this.stats.failures++;
      logger.warn({ bytes, maxBytes }, 'configuration larger than GATEWAY_STATE_MAX_BYTES; last good copy not updated');
      return;
    }
    // Per process: cluster workers write the same content, each through its own temporary file.
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      await mkdir(dir, { recursive: true });
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.file);
      this.stats.writes++;
    } catch (err) {
      this.stats.failures++;
      // Nothing to remove when the directory itself is unusable.
      await rm(tmp, { force: true }).catch(() => undefined);
      logger.warn({ err: (err as Error).message, dir }, 'could not save the last good configuration');
    }
  }
}
