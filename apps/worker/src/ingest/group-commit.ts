import type { Sql } from 'postgres';
import type { UsageBatch } from '@tollgate/usage';
import { applyUsageBatches, type GroupResult } from './apply-batch';
import { isDataError } from './errors';

export type BatchOutcome = { applied: boolean };

export type GroupCommitOptions = {
  /** A group stops growing at this many events. */
  maxEvents: number;
  /** Groups written at once by this process. */
  maxInFlight: number;
  /** After each committed group (metrics). */
  onGroup?: (res: GroupResult, batches: number) => void;
  /** Wraps each group's write (its trace span, ADR 0027). */
  trace?: ((batches: readonly UsageBatch[], write: () => Promise<GroupResult>) => Promise<GroupResult>) | null;
};

type Pending = { batch: UsageBatch; resolve: (o: BatchOutcome) => void; reject: (e: unknown) => void };

/**
 * Group commit for usage batches. The queue processor hands each batch in and waits; batches
 * that arrive while a transaction is running are written together by the next one. Under light
 * load a group is one batch (no added latency); under heavy load groups grow, so the rows
 * written per event fall with the load instead of rising with it. Each batch's promise settles
 * only after its group committed, so BullMQ acknowledges nothing that is not durable.
 */
export class GroupCommit {
  private pending: Pending[] = [];
  private inFlight = 0;

  constructor(
    private readonly sql: Sql,
    private readonly opts: GroupCommitOptions,
  ) {}

  apply(batch: UsageBatch): Promise<BatchOutcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({ batch, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.opts.maxInFlight && this.pending.length) {
      const group: Pending[] = [];
      let events = 0;
      while (this.pending.length && (group.length === 0 || events + this.pending[0]!.batch.events.length <= this.opts.maxEvents)) {
        const p = this.pending.shift()!;
        group.push(p);
        events += p.batch.events.length;
      }
      this.inFlight++;
      void this.write(group).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async write(group: Pending[]): Promise<void> {
    const batches = group.map((p) => p.batch);
    try {
      const trace = this.opts.trace;
      const res = trace ? await trace(batches, () => this.applyGroup(batches)) : await this.applyGroup(batches);
      this.opts.onGroup?.(res, group.length);
      group.forEach((p, i) => p.resolve({ applied: res.applied[i]! }));
    } catch (err) {
      // An outage, a read-only failover, a lock timeout, a bug: every batch is retried later.
      for (const p of group) p.reject(err);
    }
  }

  private async applyGroup(batches: UsageBatch[]): Promise<GroupResult> {
    try {
      return await applyUsageBatches(this.sql, batches);
    } catch (err) {
      if (!isDataError(err)) throw err;
      // Some event's values are refused: the same group again, isolating (and parking) only
      // what PostgreSQL refuses, so its neighbours are applied now.
      return applyUsageBatches(this.sql, batches, { isolate: true });
    }
  }
}
