import { buildDecision } from './decision';
import { validateDecideRequest } from './validate';
import type { DecideRequest, Decision, Limiter } from './types';

type Entry =
  | { a: 'fixed_window'; count: number; expiresAt: number }
  | { a: 'sliding_window'; w: number; c: number; p: number; expiresAt: number }
  | { a: 'gcra'; tat: number; expiresAt: number }
  | { a: 'token_bucket'; tokens: number; ts: number; expiresAt: number };

export type MemoryLimiterOptions = {
  /** Most limiter states kept; the least recently used go first. Default 100 000 (~10 MB). */
  maxKeys?: number;
  /** Clock in epoch ms, for tests. */
  now?: () => number;
};

export type MemoryLimiter = Limiter & {
  /** Same answer, without a promise: the fail-open path needs no I/O. */
  decideSync(request: DecideRequest): Decision;
  size(): number;
  clear(): void;
};

const EPS = 1e-6;

/**
 * Per-process limiter with the same algorithms and the same Decision shape as the Redis one,
 * for fail-open mode. Each process counts alone, so N gateways let through up to N × limit while
 * Redis is down. The quota is NOT enforced here (Decision.quota is null): a per-process count of a
 * monthly quota would be meaningless, and usage is still metered and billed afterwards.
 */
export function createMemoryLimiter({ maxKeys = 100_000, now = Date.now }: MemoryLimiterOptions = {}): MemoryLimiter {
  if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new RangeError(`maxKeys must be a positive integer, got ${maxKeys}`);
  const entries = new Map<string, Entry>();

  function read(key: string, nowMs: number): Entry | undefined {
    const e = entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= nowMs) {
      entries.delete(key);
      return undefined;
    }
    return e;
  }
  function write(key: string, e: Entry) {
    // Map keeps insertion order: re-inserting marks the key most recently used.
    entries.delete(key);
    entries.set(key, e);
    while (entries.size > maxKeys) entries.delete(entries.keys().next().value!);
  }

  function decideSync(req: DecideRequest): Decision {
    validateDecideRequest(req);
    const rateOnly: DecideRequest = { rates: req.rates, quota: null, cost: req.cost };
    const cost = req.cost ?? 1;
    const nowMs = Math.floor(now());
    const nowUs = nowMs * 1000;
    const results: number[] = [];
    const staged: (() => void)[] = [];
    let refused = 0;
    let worstRetry = -1;
    req.rates.forEach((r, i) => {
      const winMs = r.windowSeconds * 1000;
      const limit = r.limit;
      let ok: boolean;
      let remaining: number;
      let resetMs: number;
      let retryMs: number;
      if (r.algorithm === 'fixed_window') {
        const e = read(r.key, nowMs) as Extract<Entry, { a: 'fixed_window' }> | undefined;
        const count = e?.a === 'fixed_window' ? e.count : 0;
        const expiresAt = e?.a === 'fixed_window' ? e.expiresAt : nowMs + winMs;
        ok = count + cost <= limit;
        remaining = limit - count - (ok ? cost : 0);
        resetMs = expiresAt - nowMs;
        retryMs = ok ? 0 : resetMs;
        staged.push(() => write(r.key, { a: 'fixed_window', count: count + cost, expiresAt }));
      } else if (r.algorithm === 'sliding_window') {
        const e = read(r.key, nowMs);
        const idx = Math.floor(nowMs / winMs);
        const elapsed = nowMs - idx * winMs;
        const hw = e?.a === 'sliding_window' ? e.w : -1;
        let cur = 0;
        let prev = 0;
        if (e?.a === 'sliding_window' && hw === idx) {
          cur = e.c;
          prev = e.p;
        } else if (e?.a === 'sliding_window' && hw === idx - 1) prev = e.c;
        const est = (prev * (winMs - elapsed)) / winMs + cur;
        ok = est + cost <= limit + EPS;
        remaining = Math.floor(limit - est - (ok ? cost : 0) + EPS);
        resetMs = winMs - elapsed;
        if (ok) retryMs = 0;
        else if (cost > limit) retryMs = resetMs + winMs;
        else if (cur + cost <= limit) retryMs = Math.ceil(resetMs - (winMs * (limit - cur - cost)) / prev);
        else retryMs = Math.ceil(resetMs + winMs * (1 - (limit - cost) / cur));
        resetMs = Math.max(resetMs, retryMs);
        staged.push(() => write(r.key, { a: 'sliding_window', w: idx, c: cur + cost, p: prev, expiresAt: nowMs + 2 * winMs }));
      } else if (r.algorithm === 'gcra') {
        const e = read(r.key, nowMs);
        const winUs = winMs * 1000;
        const emission = winUs / limit;
        const tat = Math.max(e?.a === 'gcra' ? e.tat : 0, nowUs);
        const newTat = tat + cost * emission;
        const diff = newTat - nowUs;
        ok = diff <= winUs + EPS;
        if (ok) {
          remaining = Math.floor((winUs - diff) / emission + EPS);
          resetMs = Math.ceil(diff / 1000);
          retryMs = 0;
        } else {
          remaining = Math.floor((winUs - (tat - nowUs)) / emission + EPS);
          resetMs = Math.ceil((tat - nowUs) / 1000);
          retryMs = Math.ceil((diff - winUs) / 1000);
        }
        staged.push(() => write(r.key, { a: 'gcra', tat: newTat, expiresAt: nowMs + Math.ceil(diff / 1000) + 1000 }));
      } else {
        const e = read(r.key, nowMs);
        const winUs = winMs * 1000;
        const rate = limit / winUs;
        let tokens = limit;
        if (e?.a === 'token_bucket') tokens = Math.min(limit, e.tokens + Math.max(0, nowUs - e.ts) * rate);
        ok = tokens + EPS >= cost;
        const after = Math.max(0, ok ? tokens - cost : tokens);
        remaining = Math.floor(after + EPS);
        const refillUs = (limit - after) / rate;
        resetMs = Math.ceil(refillUs / 1000);
        retryMs = ok ? 0 : cost > limit ? winMs : Math.ceil((cost - tokens) / rate / 1000);
        staged.push(() =>
          write(r.key, { a: 'token_bucket', tokens: after, ts: nowUs, expiresAt: nowMs + Math.ceil(refillUs / 1000) + 1000 }),
        );
      }
      remaining = Math.max(0, remaining);
      retryMs = Math.max(0, retryMs);
      if (!ok) {
        retryMs = Math.max(1, retryMs);
        if (retryMs > worstRetry) {
          worstRetry = retryMs;
          refused = i + 1;
        }
      }
      results.push(ok ? 1 : 0, remaining, resetMs, retryMs);
    });
    const allowed = refused === 0;
    if (allowed) for (const apply of staged) apply();
    return buildDecision(rateOnly, [allowed ? 1 : 0, refused, ...results], 0, nowMs, 'memory');
  }

  return {
    decide: async (req) => decideSync(req),
    decideSync,
    size: () => entries.size,
    clear: () => entries.clear(),
  };
}
