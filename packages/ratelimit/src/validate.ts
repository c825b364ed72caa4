import { LimitInputError, type DecideRequest } from './types';

const ALGORITHMS = new Set(['sliding_window', 'gcra', 'token_bucket', 'fixed_window']);
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_LIMIT = 1_000_000_000;
/** Monthly quotas can be far larger than any per-window rate; still exact in a Lua double. */
const MAX_QUOTA = 1_000_000_000_000_000;
const MAX_WINDOW_SECONDS = 86_400;
/** Epoch ms bounds: years 2000..2200. Anything else is a unit mistake (seconds, µs) or garbage. */
const MIN_EPOCH_MS = 946_684_800_000;
const MAX_EPOCH_MS = 7_258_118_400_000;
export const MAX_RATES_PER_DECISION = 8;

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/** The `{…}` hash tag Redis Cluster hashes, or null when the key has none. */
export function hashTag(key: string): string | null {
  const open = key.indexOf('{');
  if (open < 0) return null;
  const close = key.indexOf('}', open + 1);
  if (close <= open + 1) return null;
  return key.slice(open + 1, close);
}

/**
 * Throws LimitInputError naming the first bad field. Run by every limiter before any I/O; the
 * gateway can also run it when a snapshot loads, so a bad policy is caught once, not per request.
 */
export function validateDecideRequest(req: DecideRequest): void {
  if (!req || typeof req !== 'object') throw new LimitInputError('decide request must be an object');
  if (!Array.isArray(req.rates)) throw new LimitInputError('rates must be an array');
  if (req.rates.length > MAX_RATES_PER_DECISION) throw new LimitInputError(`at most ${MAX_RATES_PER_DECISION} rate limits per decision`);
  if (req.rates.length === 0 && !req.quota) throw new LimitInputError('nothing to decide: no rate limits and no quota');
  const cost = req.cost ?? 1;
  if (!isInt(cost, 1, MAX_LIMIT)) throw new LimitInputError(`cost must be an integer ≥ 1, got ${String(req.cost)}`);
  const names = new Set<string>();
  const tags = new Set<string | null>();
  for (const [i, r] of req.rates.entries()) {
    const at = `rates[${i}]`;
    if (!r || typeof r !== 'object') throw new LimitInputError(`${at} must be an object`);
    if (typeof r.name !== 'string' || !NAME.test(r.name)) throw new LimitInputError(`${at}.name must match ${NAME}`);
    if (r.name === 'quota') throw new LimitInputError(`${at}.name "quota" is reserved for the quota`);
    if (names.has(r.name)) throw new LimitInputError(`${at}.name "${r.name}" is used twice`);
    names.add(r.name);
    if (typeof r.key !== 'string' || r.key.length === 0 || r.key.length > 512)
      throw new LimitInputError(`${at}.key must be a non-empty string`);
    if (!isInt(r.limit, 1, MAX_LIMIT)) throw new LimitInputError(`${at}.limit must be an integer 1..${MAX_LIMIT}, got ${String(r.limit)}`);
    if (!isInt(r.windowSeconds, 1, MAX_WINDOW_SECONDS))
      throw new LimitInputError(`${at}.windowSeconds must be an integer 1..${MAX_WINDOW_SECONDS}, got ${String(r.windowSeconds)}`);
    if (!ALGORITHMS.has(r.algorithm)) throw new LimitInputError(`${at}.algorithm must be one of ${[...ALGORITHMS].join(', ')}`);
    tags.add(hashTag(r.key));
  }
  const keys = new Set(req.rates.map((r) => r.key));
  if (keys.size !== req.rates.length) throw new LimitInputError('two rate limits share one key');
  const q = req.quota;
  if (q) {
    if (typeof q !== 'object') throw new LimitInputError('quota must be an object');
    if (typeof q.key !== 'string' || q.key.length === 0 || q.key.length > 512)
      throw new LimitInputError('quota.key must be a non-empty string');
    if (keys.has(q.key)) throw new LimitInputError('quota.key is also a rate limit key');
    if (!isInt(q.limit, 0, MAX_QUOTA)) throw new LimitInputError(`quota.limit must be an integer 0..${MAX_QUOTA}, got ${String(q.limit)}`);
    if (q.mode !== 'hard_cap' && q.mode !== 'overage') throw new LimitInputError('quota.mode must be hard_cap or overage');
    if (!isInt(q.periodEnd, MIN_EPOCH_MS, MAX_EPOCH_MS))
      throw new LimitInputError(`quota.periodEnd must be epoch milliseconds, got ${String(q.periodEnd)}`);
    if (q.periodStart != null) {
      if (!isInt(q.periodStart, MIN_EPOCH_MS, MAX_EPOCH_MS))
        throw new LimitInputError(`quota.periodStart must be epoch milliseconds, got ${String(q.periodStart)}`);
      if (q.periodStart >= q.periodEnd) throw new LimitInputError('quota.periodStart must be before quota.periodEnd');
    }
    tags.add(hashTag(q.key));
  }
  // One EVALSHA may only touch one Redis Cluster slot: every key must carry the same hash tag.
  const keyCount = req.rates.length + (q ? 1 : 0);
  if (keyCount > 1) {
    if (tags.has(null)) throw new LimitInputError('every key of a multi-key decision needs a {hash tag} (build keys with createKeyspace)');
    if (tags.size > 1)
      throw new LimitInputError(`keys of one decision must share one hash tag, got ${[...tags].map((t) => `{${t}}`).join(', ')}`);
  }
}
