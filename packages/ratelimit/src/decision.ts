import type { DecideRequest, Decision, QuotaState, RateState } from './types';

const secondsUp = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/** The epoch-aligned bucket a sliding window counts a call made at `atMs` (Redis ms) in, as lua.ts does. */
export function windowIndex(rate: { windowSeconds: number }, atMs: number): number {
  return Math.floor(atMs / (rate.windowSeconds * 1000));
}

/** Reply entries one decision takes (see lua.ts for the layout). */
export function replyLength(req: DecideRequest): number {
  return 2 + req.rates.length * 4 + (req.quota ? 3 : 0);
}

/**
 * Turns one decision's part of the flat reply both limiters produce (see lua.ts for the layout),
 * starting at `at`, into a Decision. Kept in one place so the Redis and the in-memory limiter
 * can't drift apart in meaning.
 */
export function buildDecision(req: DecideRequest, reply: readonly number[], at: number, now: number, source: Decision['source']): Decision {
  const num = (i: number) => Number(reply[at + i] ?? 0);
  const allowed = num(0) === 1;
  const refused = num(1);
  const rates: RateState[] = req.rates.map((r, i) => {
    const b = 2 + i * 4;
    return {
      name: r.name,
      algorithm: r.algorithm,
      limit: r.limit,
      windowSeconds: r.windowSeconds,
      allowed: num(b) === 1,
      remaining: Math.max(0, Math.min(r.limit, num(b + 1))),
      resetSeconds: secondsUp(num(b + 2)),
      retryAfterSeconds: num(b) === 1 ? 0 : Math.max(1, secondsUp(num(b + 3))),
    };
  });
  let quota: QuotaState | null = null;
  let overage = false;
  if (req.quota) {
    const q = req.quota;
    const b = 2 + req.rates.length * 4;
    const used = num(b);
    overage = allowed && num(b + 2) === 1;
    quota = {
      mode: q.mode,
      limit: q.limit,
      used,
      remaining: Math.max(0, q.limit - used),
      resetAt: q.periodEnd,
      windowSeconds: q.periodStart != null ? Math.round((q.periodEnd - q.periodStart) / 1000) : null,
    };
  }
  let rate: RateState | null = null;
  if (refused >= 1 && refused <= rates.length) rate = rates[refused - 1]!;
  else
    for (const r of rates)
      if (!rate || r.remaining < rate.remaining || (r.remaining === rate.remaining && r.resetSeconds > rate.resetSeconds)) rate = r;

  let reason: Decision['reason'] = null;
  let limitName: string | null = null;
  let retryAfterSeconds: number | null = null;
  let retryAfterMs: number | null = null;
  if (!allowed) {
    if (refused === rates.length + 1 && quota) {
      reason = 'quota';
      limitName = 'quota';
      retryAfterSeconds = Math.max(1, secondsUp(quota.resetAt - now));
      retryAfterMs = Math.max(0, quota.resetAt - now);
    } else {
      reason = 'rate';
      limitName = rate?.name ?? null;
      retryAfterSeconds = rate?.retryAfterSeconds ?? 1;
      retryAfterMs = refused >= 1 && refused <= rates.length ? Math.max(0, num(2 + (refused - 1) * 4 + 3)) : 0;
    }
  }
  return {
    kind: 'decision',
    allowed,
    reason,
    limitName,
    rate,
    rates,
    quota,
    overage,
    retryAfterSeconds,
    retryAfterMs,
    now,
    source,
    request: req,
  };
}
