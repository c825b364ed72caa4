import type { UsageEvent, UsageProducer } from '@tollgate/usage';

/** Where the request path hands usage events; never blocks and never throws. */
export interface UsageSink {
  add(event: UsageEvent): void;
  /** Flushes everything buffered (to the queue, or to the spool when Redis is down). */
  close(): Promise<void>;
  stats(): { buffered: number; spooled: number };
}

/** Keeps events in memory; for tests that only look at HTTP behaviour. */
export function createMemoryUsageSink(): UsageSink & { events: UsageEvent[] } {
  const events: UsageEvent[] = [];
  return {
    events,
    add: (e) => void events.push(e),
    close: async () => undefined,
    stats: () => ({ buffered: events.length, spooled: 0 }),
  };
}

/** The real sink: @tollgate/usage's batching producer (BullMQ queue `usage`, disk spool). */
export function usageSinkFromProducer(producer: UsageProducer): UsageSink {
  return {
    add: (e) => producer.record(e),
    close: () => producer.close(),
    stats: () => ({ buffered: producer.buffered(), spooled: producer.spoolDepth() }),
  };
}
