export type RetryOptions = {
  /** Attempts in total, the first included. */
  attempts?: number;
  baseMs?: number;
  maxMs?: number;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
};

type StripeLikeError = { type?: string; statusCode?: number; headers?: Record<string, string> };

/** 429, 5xx and lost connections can pass; anything else (4xx) will fail the same way again. */
export function isRetryableStripeError(err: unknown): boolean {
  const e = err as StripeLikeError | null;
  if (!e || typeof e !== 'object') return false;
  if (e.headers?.['stripe-should-retry'] === 'false') return false;
  if (e.headers?.['stripe-should-retry'] === 'true') return true;
  if (e.type === 'StripeConnectionError' || e.type === 'StripeRateLimitError' || e.type === 'StripeAPIError') return true;
  return e.statusCode === 429 || e.statusCode === 409 || (e.statusCode !== undefined && e.statusCode >= 500);
}

/** Runs `fn`, retrying what can pass with exponential backoff and jitter. */
export async function withStripeRetry<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 5;
  const base = opts.baseMs ?? 250;
  const cap = opts.maxMs ?? 10_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= attempts || !isRetryableStripeError(err)) throw err;
      const ceiling = Math.min(cap, base * 2 ** (attempt - 1));
      const delay = Math.floor(ceiling / 2 + Math.random() * (ceiling / 2));
      opts.onRetry?.(err, attempt, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
