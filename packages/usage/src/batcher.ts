// Cuts recorded events into batches: by count (maxBatch) or by age (maxWaitMs), whichever comes
// first, and keeps the batch being filled in its journal file within journalMs of each event.
import { monotonicFactory } from 'ulid';
import type { UsageEvent } from './event';
import { batchHead, BatchWriter, MIN_BATCH_BYTES, type SerializedBatch } from './job-format';
import type { BatchJournal } from './journal';
import type { UsageLogger } from './spool';

export type BatcherOptions = {
  source: string;
  maxBatch: number;
  maxWaitMs: number;
  /** Longest an event stays in memory only; 0 = no journal. */
  journalMs: number;
  journal: BatchJournal | null;
  logger: UsageLogger;
  /** Gets every cut batch, in order (synchronously, from add() or a timer). */
  onBatch: (batch: SerializedBatch) => void;
};

export class Batcher {
  private filling: BatchWriter | null = null;
  private cutTimer: NodeJS.Timeout | null = null;
  private journalTimer: NodeJS.Timeout | null = null;
  /** Sized like the last batch, so a steady stream doesn't regrow every batch's buffer. */
  private nextCapacity = MIN_BATCH_BYTES;
  private readonly nextId = monotonicFactory();
  private readonly journalNow = () => this.flushJournal();
  eventsUnserializable = 0;

  constructor(private readonly o: BatcherOptions) {}

  /** Events in the batch being filled. */
  get filled(): number {
    return this.filling?.events ?? 0;
  }

  /** An event JSON can't encode (a BigInt, a cycle: a bug upstream) is dropped with a log. */
  serialize(event: UsageEvent): string | null {
    let line: string | undefined;
    try {
      line = JSON.stringify(event);
    } catch {
      line = undefined;
    }
    if (typeof line === 'string' && line.startsWith('{')) return line;
    this.eventsUnserializable++;
    this.o.logger.error(
      { eventId: typeof event?.id === 'string' ? event.id : null },
      'usage producer: dropping an event that cannot be serialized',
    );
    return null;
  }

  /** Adds one serialised event; a full batch is cut at once. */
  add(line: string): void {
    const w = (this.filling ??= this.start());
    w.add(line);
    if (w.events >= this.o.maxBatch) this.cut();
    else {
      if (!this.cutTimer) this.cutTimer = setTimeout(() => this.cut(), this.o.maxWaitMs);
      if (this.o.journal && !this.journalTimer) this.journalTimer = setTimeout(this.journalNow, this.o.journalMs);
    }
  }

  /** Writes the batch being filled to its journal file now. */
  flushJournal(): void {
    if (this.journalTimer) clearTimeout(this.journalTimer);
    this.journalTimer = null;
    if (this.filling && this.o.journal) this.o.journal.write(this.filling);
  }

  /** Closes the batch being filled (if any) and hands it on. */
  cut(): void {
    if (this.cutTimer) clearTimeout(this.cutTimer);
    this.cutTimer = null;
    if (this.journalTimer) clearTimeout(this.journalTimer);
    this.journalTimer = null;
    const w = this.filling;
    if (w === null) return;
    this.filling = null;
    const batch = w.finish();
    this.o.journal?.seal(w, batch);
    this.nextCapacity = Math.max(MIN_BATCH_BYTES, batch.json.length + 4096);
    this.o.onBatch(batch);
  }

  /** A whole batch of these lines at once (not journaled: for the spool after close). */
  batchOf(lines: readonly string[]): SerializedBatch {
    const w = this.start();
    for (const l of lines) w.add(l);
    return w.finish();
  }

  stop(): void {
    if (this.cutTimer) clearTimeout(this.cutTimer);
    if (this.journalTimer) clearTimeout(this.journalTimer);
    this.cutTimer = this.journalTimer = null;
  }

  private start(): BatchWriter {
    const batchId = this.nextId();
    return new BatchWriter(batchId, batchHead(batchId, this.o.source), this.nextCapacity);
  }
}
