// Redis loses its data (a real FLUSHALL on the stack's own redis-server) in the middle of a
// billing period. The worker, without a restart, rebuilds every open period's quota counter
// from the ledger, republishes policies and keys, and recreates its job schedulers: a hard cap
// holds within the documented bound (ADR 0017) and billing jobs run again: what was served =
// rollups = ledger = Stripe meter events (the worker's job, to the local Stripe stand-in).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/index';
import { startStripeStandIn, type StripeStandIn } from '@tollgate/billing/testing';
import { createTenant, runLoad, settle, startStack, warmUp, type Stack, type Tenant } from './stack';
import { settleMeter } from './meter';

const CAP = 300;
const RATE = 50;
/** REDIS_RESTORE_CHECK_MS of the stack: calls accepted before the rebuild are the bound's first term. */
const RESTORE_CHECK_MS = 500;

describe('Redis data loss mid-period', () => {
  let stack: Stack;
  let t: Tenant;
  let stripe: StripeStandIn;
  const figures: Record<string, unknown> = {};

  beforeAll(async () => {
    stripe = await startStripeStandIn();
    stack = await startStack(
      'rloss',
      async (db, upstream) => {
        t = await createTenant(db, upstream, { monthlyQuota: CAP, quotaMode: 'HARD_CAP', stripe: true });
      },
      { stripe },
    );
    await warmUp(stack, t);
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
    await stripe?.stop();
    process.stdout.write(`fault figures: ${JSON.stringify(figures)}\n`);
  });

  const metric = async (re: RegExp) => {
    const text = await (await fetch(`http://127.0.0.1:${stack.worker.port}/metrics`)).text();
    const m = text.match(re);
    return m ? Number(m[1]) : null;
  };

  it('a hard cap holds across FLUSHALL: the counter comes back from the ledger, and accepted calls stay within the bound', async () => {
    // The whole cap used (the warm-up call included), and billed.
    const used = await runLoad(stack.gateway.port, t.host, t.liveKey, { rate: 100, durationMs: ((CAP + 20) / 100) * 1000 });
    const before = await settle(stack, t, 1 + used.sent);
    expect(before.ledger).toBe(CAP);
    expect(before.ok).toBe(CAP);

    const flushedAt = Date.now();
    await stack.redis.client.flushall();
    const after = await runLoad(stack.gateway.port, t.host, t.liveKey, { rate: RATE, durationMs: 4_000 });
    // Everything is rebuilt without an operator: marker, counter (from the ledger), keys.
    await waitFor(async () => (await stack.redis.client.exists(`${stack.keyspace.prefix}:meta:published`)) === 1, {
      timeoutMs: 30_000,
      what: 'the restore',
    });
    const settled = await settle(stack, t, 1 + used.sent + after.sent);
    const overshoot = settled.ok - CAP;
    // Bound: the calls the gateway accepted before the worker's next check rebuilt the counter
    // (rate x check interval), plus the same again for calls counted after the loss and billed
    // before the rebuild (the counter is raised to the ledger's figure, not added to).
    const bound = Math.ceil(2 * RATE * (RESTORE_CHECK_MS / 1000)) + 10;
    figures.quota = {
      cap: CAP,
      acceptedBefore: before.ok,
      acceptedAfterFlush: after.ok,
      refusedAfterFlush: after.byStatus.get(429) ?? 0,
      ledger: settled.ledger,
      overshoot,
      bound,
      flushToSettledMs: Date.now() - flushedAt,
    };
    expect(settled.ledger).toBe(settled.ok);
    // The meter job came back with the schedulers: Stripe holds exactly the ledger.
    const meter = await settleMeter(stack, t, settled.ledger);
    figures.quota = { ...(figures.quota as object), meter };
    expect(meter).toBe(settled.ledger);
    expect(overshoot).toBeLessThanOrEqual(bound);
    // Without the rebuild the whole cap was handed out again.
    expect(after.ok).toBeLessThan(CAP / 2);
    expect(after.byStatus.get(429) ?? 0).toBeGreaterThan(after.sent / 2);
  }, 120_000);

  it('the job schedulers come back after FLUSHALL and billing jobs run again without a restart', async () => {
    const flushedAt = Date.now() / 1000;
    await stack.redis.client.flushall();
    await waitFor(async () => ((await metric(/tollgate_worker_schedulers_restored_total (\d+)/)) ?? 0) >= 3, {
      timeoutMs: 30_000,
      what: 'schedulers recreated',
    });
    const ran = await waitFor(
      async () => {
        const at = await metric(/tollgate_worker_job_last_success_timestamp_seconds\{job="billing\.meter-report\.v1"\} ([\d.e+]+)/);
        return at !== null && at > flushedAt ? at : null;
      },
      { timeoutMs: 30_000, what: 'a meter report run after the flush' },
    );
    figures.schedulers = { secondsToFirstRun: Number((ran - flushedAt).toFixed(2)) };
    expect(await stack.usageQueue.getJobCounts('failed')).toEqual({ failed: 0 });
    expect(stack.worker.child.exitCode).toBeNull();
  }, 90_000);
});
