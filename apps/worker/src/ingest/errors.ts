/**
 * How a failed usage write is handled. The default is to retry: a database outage, a read-only
 * failover (25006), a full disk (53100), a lock timeout (55P03), a dropped connection, a
 * deploy that broke a query, an error nobody has seen before — none of them is the batch's
 * fault, and all of them pass once someone fixes the database. Only an error the batch's own
 * data provokes, and that would fail the same way on every retry, is worth isolating and
 * parking: a value PostgreSQL cannot store (class 22, data exception) or a row a check or
 * not-null constraint refuses.
 */
const DATA_ERROR_CODES = new Set(['23502', '23514']);

/** Whether the error is provably the batch's own data (see above); everything else is retried. */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return false;
  return code.startsWith('22') || DATA_ERROR_CODES.has(code);
}

/** The SQLSTATE or driver code of an error, for logs and parked rows. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code.slice(0, 32) : 'unknown';
}

/** Exponential backoff with full jitter, capped. */
export function backoffMs(attempt: number, baseMs = 500, capMs = 60_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.floor(ceiling / 2 + Math.random() * (ceiling / 2));
}
