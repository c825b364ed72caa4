/**
 * Billing periods are calendar months anchored on the subscription's start (Stripe's
 * `billing_cycle_anchor` rule): a period that starts on the 31st ends on the last day of a
 * shorter month and goes back to the 31st when the month has one. All maths is in UTC.
 */
export type Period = { start: Date; end: Date };

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

/** The anchor's day/time moved `months` months from the anchor, clamped to the month's end. */
export function addAnchoredMonths(anchor: Date, months: number): Date {
  const y = anchor.getUTCFullYear();
  const m = anchor.getUTCMonth() + months;
  const year = y + Math.floor(m / 12);
  const month = ((m % 12) + 12) % 12;
  const day = Math.min(anchor.getUTCDate(), daysInMonth(year, month));
  return new Date(
    Date.UTC(year, month, day, anchor.getUTCHours(), anchor.getUTCMinutes(), anchor.getUTCSeconds(), anchor.getUTCMilliseconds()),
  );
}

/** The monthly period, anchored at `anchor`, that contains `at`. */
export function billingPeriodAt(anchor: Date, at: Date): Period {
  const t = at.getTime();
  let n = (at.getUTCFullYear() - anchor.getUTCFullYear()) * 12 + (at.getUTCMonth() - anchor.getUTCMonth());
  // The month difference is at most one off; step to the period that holds `at`.
  while (addAnchoredMonths(anchor, n).getTime() > t) n--;
  while (addAnchoredMonths(anchor, n + 1).getTime() <= t) n++;
  return { start: addAnchoredMonths(anchor, n), end: addAnchoredMonths(anchor, n + 1) };
}

/** Whole seconds in [start, end); periods and changes are second-aligned in practice. */
export function periodSeconds(p: Period): bigint {
  return BigInt(Math.floor((p.end.getTime() - p.start.getTime()) / 1000));
}

/** The hour an instant falls in (UTC), the ledger's granularity. */
export function hourStart(ms: number): Date {
  return new Date(ms - (((ms % 3_600_000) + 3_600_000) % 3_600_000));
}
