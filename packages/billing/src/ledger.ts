/**
 * Identifiers Stripe sees. They are derived from what a ledger line *is* (subscription, kind,
 * hour) and, for a meter event, from how much of the line had been reported before it (the
 * offset), so re-sending the same report after a crash or a 5xx carries the same identifier
 * and Stripe refuses the duplicate instead of billing it twice.
 */
export type LedgerKindName = 'USAGE' | 'FLAT_FEE' | 'PRORATION' | 'ADJUSTMENT';

export function ledgerIdentifier(subscriptionId: string, kind: LedgerKindName, hourStartMs: number): string {
  return `tg_${subscriptionId}_${kind.toLowerCase()}_${Math.floor(hourStartMs / 1000)}`;
}

/** The meter event that reports a line's quantity from `offset` on. */
export function meterEventIdentifier(lineIdentifier: string, offset: bigint): string {
  return `${lineIdentifier}_${offset}`;
}
