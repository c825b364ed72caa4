// Stripe's side of the fault suite: what the worker's meter reporting job sent to the stand-in.
import { meterEventName } from '@tollgate/billing';
import { waitFor } from '../harness/index';
import type { Stack, Tenant } from './stack';

/** What the Stripe stand-in took as meter events for the tenant's plan (0 without Stripe). */
export function metered(stack: Stack, t: Pick<Tenant, 'planId'>): number {
  const name = meterEventName(t.planId);
  return (stack.stripe?.meterEvents ?? []).filter((e) => e.event_name === name).reduce((a, e) => a + e.value, 0);
}

/** The last successful run of a worker job (seconds since the epoch, from its metrics), or 0. */
export async function lastJobRun(stack: Stack, job: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${stack.worker.port}/metrics`)).text();
  const m = text.match(
    new RegExp(`tollgate_worker_job_last_success_timestamp_seconds\\{job="${job.replace(/\./g, '\\.')}"\\} ([\\d.e+]+)`),
  );
  return m ? Number(m[1]) : 0;
}

/**
 * Waits until the worker's meter reporting job has sent Stripe what the ledger holds, then for one
 * more complete run (which would send anything over); returns the meter total, which the test
 * compares with the ledger. Every identifier must have been taken once.
 */
export async function settleMeter(stack: Stack, t: Pick<Tenant, 'planId'>, ledger: number, timeoutMs = 60_000): Promise<number> {
  await waitFor(() => metered(stack, t) >= ledger, { timeoutMs, intervalMs: 200, what: `${ledger} units metered to Stripe` });
  const reached = Date.now() / 1000;
  await waitFor(async () => (await lastJobRun(stack, 'billing.meter-report.v1')) > reached + 1.5, {
    timeoutMs: 30_000,
    intervalMs: 200,
    what: 'one more meter report run',
  });
  const ids = stack.stripe!.meterEvents.map((e) => e.identifier);
  if (new Set(ids).size !== ids.length) throw new Error('a meter event identifier was taken twice');
  return metered(stack, t);
}
