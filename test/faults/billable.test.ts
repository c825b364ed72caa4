// What is billable (ADR 0017): calls the upstream answered. With the upstream down the gateway
// answers 502/503 itself, and none of those is billed; calls made with a test key are counted
// (and shown as test traffic) but never billed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/index';
import { billedAndCounted, call, createTenant, runLoad, settle, startStack, warmUp, type Stack, type Tenant } from './stack';

const RATE = 100;

describe('billable = answered by the upstream', () => {
  let stack: Stack;
  let t: Tenant;
  const figures: Record<string, unknown> = {};

  beforeAll(async () => {
    stack = await startStack('bill', async (db, upstream) => {
      t = await createTenant(db, upstream);
    });
    await warmUp(stack, t);
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
    process.stdout.write(`fault figures: ${JSON.stringify(figures)}\n`);
  });

  it("the upstream down for a while: the gateway's own 5xx are counted, never billed", async () => {
    const before = await billedAndCounted(stack.db, t);
    const load = await runLoad(stack.gateway.port, t.host, t.liveKey, { rate: RATE, durationMs: 4_000 }, async () => {
      await new Promise((r) => setTimeout(r, 1_000)); // served normally first: the load's schedule, not a wait for state
      await stack.upstream.stop();
      await new Promise((r) => setTimeout(r, 2_000)); // the outage
      await stack.upstream.start();
    });
    const gateway5xx = [...load.byStatus].filter(([s]) => s >= 500).reduce((a, [, n]) => a + n, 0);
    expect(load.errors).toBe(0);
    expect(gateway5xx).toBeGreaterThan(0);
    expect(load.ok).toBeGreaterThan(0);
    const after = await settle(stack, t, before.requests + load.sent);
    const got = {
      sent: load.sent,
      served2xx: load.ok,
      gateway5xx,
      requests: after.requests - before.requests,
      rollup2xx: after.ok - before.ok,
      rollup5xx: after.errors5xx - before.errors5xx,
      ledger: after.ledger - before.ledger,
    };
    figures.upstreamDown = got;
    expect(got).toEqual({ ...got, requests: load.sent, rollup2xx: load.ok, rollup5xx: gateway5xx, ledger: load.ok });
  }, 120_000);

  it('test-key calls are served and counted, and bill nothing', async () => {
    // The target may sit out its cooldown after the outage; the calls made until it serves are counted in the baseline.
    const prior = (await billedAndCounted(stack.db, t)).requests;
    let probes = 0;
    await waitFor(async () => (probes++, (await call(stack.gateway.port, t.host, t.liveKey)) === 200), {
      timeoutMs: 30_000,
      what: 'the upstream back in rotation',
    });
    const before = await settle(stack, t, prior + probes);
    const load = await runLoad(stack.gateway.port, t.host, t.testKey, { rate: 50, durationMs: 2_000 });
    expect(load.ok).toBe(load.sent);
    const after = await settle(stack, t, before.requests + load.sent);
    figures.testKey = {
      sent: load.sent,
      served2xx: load.ok,
      requests: after.requests - before.requests,
      ledger: after.ledger - before.ledger,
    };
    expect(after.requests - before.requests).toBe(load.sent);
    expect(after.ledger - before.ledger).toBe(0);
  }, 120_000);
});
