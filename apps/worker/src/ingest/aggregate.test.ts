import { describe, expect, it } from 'vitest';
import { isBillable, UsageEvent } from '@tollgate/usage';
import { aggregateBatch } from './aggregate';

const base: UsageEvent = {
  id: '01J00000000000000000000000',
  ts: Date.UTC(2026, 0, 1, 10, 0, 5),
  tenantId: 'ten_a',
  apiId: 'api_a',
  routeId: 'rte_a',
  keyId: 'key_a',
  consumerId: 'con_a',
  subscriptionId: 'sub_a',
  planId: 'pln_a',
  method: 'GET',
  status: 101,
  latencyMs: 3,
  upstreamLatencyMs: 2,
  bytesIn: 0,
  bytesOut: 0,
  cacheHit: false,
  rejected: null,
  answeredBy: 'upstream',
};

describe('WebSocket usage records (ADR 0026)', () => {
  it('counts the handshake as one billable call and the connection records as bytes only', () => {
    const record = (id: string, seq: number, final: boolean, bytesIn: number, bytesOut: number): UsageEvent => ({
      ...base,
      id,
      bytesIn,
      bytesOut,
      latencyMs: 60_000,
      upstreamLatencyMs: null,
      websocket: { connectionId: base.id, seq, final, durationMs: 60_000, messagesIn: 3, messagesOut: 4, closeCode: final ? 1000 : null },
    });
    const events = [base, record('01J00000000000000000000001', 0, false, 100, 200), record('01J00000000000000000000002', 1, true, 10, 20)];
    for (const e of events) expect(UsageEvent.safeParse(e).success).toBe(true);
    const agg = aggregateBatch(events);
    expect(agg.rollups).toHaveLength(1);
    expect(agg.rollups[0]).toMatchObject({ requests: 1, bytesIn: 110, bytesOut: 220 });
    expect(agg.billable).toBe(1);
    expect(agg.ledger[0]!.quantity).toBe(1);
    expect(isBillable(events[1]!)).toBe(false);
  });

  it('still accepts and counts an event written before the websocket field existed', () => {
    const old = { ...base, status: 200 } as Record<string, unknown>;
    delete old.answeredBy;
    const parsed = UsageEvent.parse(old);
    expect(aggregateBatch([parsed]).rollups[0]!.requests).toBe(1);
  });

  it('refuses a malformed websocket record', () => {
    const bad = {
      ...base,
      websocket: { connectionId: base.id, seq: -1, final: true, durationMs: 1, messagesIn: 0, messagesOut: 0, closeCode: null },
    };
    expect(UsageEvent.safeParse(bad).success).toBe(false);
  });
});
