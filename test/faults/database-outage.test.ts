// PostgreSQL refusing connections for 30 s, then read-only for 10 s (what a failover to a
// standby looks like, SQLSTATE 25006), under load through the gateway: the worker retries
// every batch until the database takes it. Nothing lands in BullMQ's failed list, nothing is
// parked, and after recovery what the gateway served = rollups = ledger = Stripe meter events
// (the worker's meter reporting job, through the real SDK to the local Stripe stand-in), to the request.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { waitFor } from '../harness/index';
import { startStripeStandIn, type StripeStandIn } from '@tollgate/billing/testing';
import { adminClient, billedAndCounted, createTenant, warmUp, runLoad, settle, startStack, type Stack, type Tenant } from './stack';
import { settleMeter } from './meter';

/** The outage windows of the incident; an env knob may shorten them locally (the behaviour is the same: every batch delayed, retried, applied). */
const REFUSE_MS = Number(process.env.FAULT_DB_REFUSE_MS ?? 30_000);
const READ_ONLY_MS = Number(process.env.FAULT_DB_READ_ONLY_MS ?? 10_000);
const RATE = 100;
const LOAD_MS = 4_000;

describe('database faults: billed = served', () => {
  let stack: Stack;
  let t: Tenant;
  let admin: pg.Client;
  let stripe: StripeStandIn;
  const figures: Record<string, unknown> = {};

  beforeAll(async () => {
    stripe = await startStripeStandIn();
    stack = await startStack(
      'dbout',
      async (db, upstream) => {
        t = await createTenant(db, upstream, { stripe: true });
      },
      { stripe },
    );
    admin = await adminClient();
    await warmUp(stack, t);
  }, 240_000);
  afterAll(async () => {
    // Whatever happened, give the database back before dropping it.
    await admin?.query(`ALTER DATABASE "${stack.database.name}" WITH ALLOW_CONNECTIONS true`).catch(() => undefined);
    await admin?.query(`ALTER DATABASE "${stack.database.name}" RESET default_transaction_read_only`).catch(() => undefined);
    await admin?.end();
    await stack?.stop();
    await stripe?.stop();
    process.stdout.write(`fault figures: ${JSON.stringify(figures)}\n`);
  });

  const terminate = () =>
    admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [
      stack.database.name,
    ]);

  async function assertNothingLost(label: string, served2xx: number, before: Awaited<ReturnType<typeof billedAndCounted>>, sent: number) {
    const after = await settle(stack, t, before.requests + sent);
    const got = {
      served2xx,
      rollup2xx: after.ok - before.ok,
      ledger: after.ledger - before.ledger,
      requests: after.requests - before.requests,
    };
    // Stripe holds the whole ledger (the warm-up call included), sent once.
    const meter = await settleMeter(stack, t, after.ledger);
    figures[label] = { sent, ...got, meterTotal: meter, ledgerTotal: after.ledger };
    expect(got).toEqual({ served2xx, rollup2xx: served2xx, ledger: served2xx, requests: sent });
    expect(meter).toBe(after.ledger);
    expect(await stack.usageQueue.getJobCounts('failed')).toEqual({ failed: 0 });
    expect(await stack.db.parkedUsage.count()).toBe(0);
  }

  it(`refusing connections for ${REFUSE_MS / 1000} s loses nothing and parks nothing`, async () => {
    const before = await billedAndCounted(stack.db, t);
    const load = await runLoad(stack.gateway.port, t.host, t.liveKey, { rate: RATE, durationMs: LOAD_MS }, async () => {
      await admin.query(`ALTER DATABASE "${stack.database.name}" WITH ALLOW_CONNECTIONS false`);
      await terminate();
    });
    expect(load.errors).toBe(0);
    // The worker keeps retrying while the database refuses; its metrics say so.
    const metrics = `http://127.0.0.1:${stack.worker.port}/metrics`;
    await waitFor(async () => /tollgate_usage_batches_total\{result="retried"\} [1-9]/.test(await (await fetch(metrics)).text()), {
      timeoutMs: 20_000,
      what: 'batches retried',
    });
    await new Promise((r) => setTimeout(r, Math.max(0, REFUSE_MS - LOAD_MS))); // the outage itself: nothing to await
    await admin.query(`ALTER DATABASE "${stack.database.name}" WITH ALLOW_CONNECTIONS true`);
    await assertNothingLost('refuse', load.ok, before, load.sent);
  }, 180_000);

  it(`a read-only database (failover, 25006) for ${READ_ONLY_MS / 1000} s loses nothing and parks nothing`, async () => {
    const before = await billedAndCounted(stack.db, t);
    const load = await runLoad(stack.gateway.port, t.host, t.liveKey, { rate: RATE, durationMs: LOAD_MS }, async () => {
      await admin.query(`ALTER DATABASE "${stack.database.name}" SET default_transaction_read_only = on`);
      await terminate();
    });
    expect(load.errors).toBe(0);
    await new Promise((r) => setTimeout(r, Math.max(0, READ_ONLY_MS - LOAD_MS))); // the outage itself
    // Still nothing applied from the window: every write was refused.
    await admin.query(`ALTER DATABASE "${stack.database.name}" RESET default_transaction_read_only`);
    await terminate(); // sessions keep the setting they started with
    await assertNothingLost('readOnly', load.ok, before, load.sent);
  }, 180_000);
});
