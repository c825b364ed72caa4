import type { DecideRequest, Decision, MemoryLimiter } from '@tollgate/ratelimit';

/** Quota counters last seen in Redis decisions, kept for fallback; oldest dropped past this many. */
const MAX_QUOTAS_SEEN = 100_000;

/**
 * This process's decisions while Redis can't make them (docs/adr/0020): every rate limit divided
 * by the number of live gateway processes, and a quota checked against the last counter this
 * process saw in Redis, of which it may use its share (what was left / processes).
 */
export function createFallback(memory: MemoryLimiter, liveProcesses?: () => number) {
  /** Quota key → `used` in the last Redis decision that carried it; and calls allowed in fallback since. */
  const quotaSeen = new Map<string, number>();
  const quotaLocal = new Map<string, number>();

  /** What a Redis decision tells about its quota counter. */
  function observeQuota(req: DecideRequest, d: Decision): void {
    const q = req.quota;
    if (!q || !d.quota) return;
    if (quotaSeen.size >= MAX_QUOTAS_SEEN && !quotaSeen.has(q.key)) quotaSeen.delete(quotaSeen.keys().next().value!);
    quotaSeen.set(q.key, d.quota.used);
    quotaLocal.delete(q.key);
  }

  // Fallback requests: each rate divided by the live processes, built once per (request, count).
  const scaled = new WeakMap<DecideRequest, { n: number; req: DecideRequest }>();

  function fallbackDecision(req: DecideRequest): Decision {
    const n = Math.max(1, Math.floor(liveProcesses?.() ?? 1));
    let s = scaled.get(req);
    if (s === undefined || s.n !== n) {
      s = { n, req: { rates: req.rates.map((r) => ({ ...r, limit: Math.max(1, Math.floor(r.limit / n)) })), quota: null, cost: req.cost } };
      scaled.set(req, s);
    }
    const cost = req.cost ?? 1;
    const q = req.quota ?? null;
    const now = Date.now();
    let quotaState: Decision['quota'] = null;
    let overage = false;
    if (q) {
      const seen = quotaSeen.get(q.key) ?? 0;
      const local = quotaLocal.get(q.key) ?? 0;
      const share = Math.floor(Math.max(0, q.limit - seen) / n);
      const used = seen + local;
      const windowSeconds = q.periodStart != null ? Math.round((q.periodEnd - q.periodStart) / 1000) : null;
      quotaState = { mode: q.mode, limit: q.limit, used, remaining: Math.max(0, q.limit - used), resetAt: q.periodEnd, windowSeconds };
      if (local + cost > share) {
        if (q.mode === 'hard_cap') {
          return {
            kind: 'decision',
            allowed: false,
            reason: 'quota',
            limitName: 'quota',
            rate: null,
            rates: [],
            quota: quotaState,
            overage: false,
            retryAfterSeconds: Math.max(1, Math.ceil((q.periodEnd - now) / 1000)),
            retryAfterMs: null,
            now,
            source: 'memory',
          };
        }
        overage = true;
      }
    }
    const d: Decision =
      s.req.rates.length > 0
        ? memory.decideSync(s.req)
        : {
            kind: 'decision',
            allowed: true,
            reason: null,
            limitName: null,
            rate: null,
            rates: [],
            quota: null,
            overage: false,
            retryAfterSeconds: null,
            now,
            source: 'memory',
          };
    if (!q || !d.allowed) return d;
    quotaLocal.set(q.key, (quotaLocal.get(q.key) ?? 0) + cost);
    const used = quotaState!.used + cost;
    return { ...d, overage, quota: { ...quotaState!, used, remaining: Math.max(0, q.limit - used) } };
  }

  return { observeQuota, fallbackDecision };
}
