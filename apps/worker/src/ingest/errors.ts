/**
 * Whether a database failure can pass by itself. Connection loss, a restarting server,
 * serialization/deadlock aborts and exhausted resources can; a data or constraint error would
 * fail the same way every time, so retrying it only hides the bug.
 */
const TRANSIENT_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  '40001',
  '40P01',
  '55P03',
  '57P01',
  '57P02',
  '57P03',
  '57014',
]);

export function isTransientDbError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  if (TRANSIENT_CODES.has(code)) return true;
  // Class 08: connection exception; class 53: insufficient resources.
  return code.startsWith('08') || code.startsWith('53');
}

/** Exponential backoff with full jitter, capped. */
export function backoffMs(attempt: number, baseMs = 500, capMs = 60_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.floor(ceiling / 2 + Math.random() * (ceiling / 2));
}
