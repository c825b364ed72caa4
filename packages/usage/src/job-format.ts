// The job format of the `usage` queue: a batch's JSON text, written event by event as events
// are recorded, and handed to BullMQ as bytes so it is never serialised twice.
import { Job, Queue, type JobsOptions } from 'bullmq';
import { USAGE_BATCH_VERSION, type UsageBatch } from './event';

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

/** Smallest buffer a batch starts with. */
export const MIN_BATCH_BYTES = 16 * 1024;

/**
 * A batch on its way: its JSON text as UTF-8 bytes (exactly what JSON.stringify gives for the
 * UsageBatch), written event by event as they are recorded. Serialising a whole batch at once
 * (~200 KB for 500 events) held the gateway's event loop for 1-2 ms per batch, which its
 * requests felt at p99; and bytes off the JS heap cost the young-generation GC nothing.
 */
export type SerializedBatch = { batchId: string; events: number; json: Buffer };

/** The text a batch starts with: the same JSON.stringify gives for a UsageBatch { v, batchId, source, events }. */
export function batchHead(batchId: string, source: string): string {
  return `{"v":${USAGE_BATCH_VERSION},"batchId":"${batchId}","source":${JSON.stringify(source)},"events":[`;
}

/** The bytes that close a batch's JSON text. */
export const BATCH_TAIL = Buffer.from(']}');

/** Appends event JSON to one batch's bytes; the buffer grows by doubling. */
export class BatchWriter {
  private buf: Buffer;
  private len = 0;
  events = 0;
  /** Bytes already written to the batch's journal file (see journal.ts). */
  journaled = 0;
  constructor(
    readonly batchId: string,
    head: string,
    capacity: number,
  ) {
    this.buf = Buffer.allocUnsafe(Math.max(capacity, head.length * 3 + 2));
    this.len = this.buf.write(head, 0, 'utf8');
  }
  /** Bytes written so far (the head and whole events only). */
  get length(): number {
    return this.len;
  }
  /** The bytes from `from` to the end of the last whole event (a view, valid until the next add). */
  bytesFrom(from: number): Buffer {
    return this.buf.subarray(from, this.len);
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

/** The spool and the journal hold batches as JSON text; this is enough to replay one, the worker validates fully. */
export function looksLikeBatch(v: unknown): v is UsageBatch {
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

const RAW_JSON = Symbol('tollgate.rawJson');
/** A job's data given as JSON text already encoded. */
export type RawJson = { [RAW_JSON]: Buffer };
export const rawJson = (json: Buffer): RawJson => ({ [RAW_JSON]: json });

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
export class UsageQueue extends Queue {
  protected override get Job(): typeof Job {
    // Generic only in its type parameters, which the queue never narrows.
    return RawJsonJob as unknown as typeof Job;
  }
}
