import { errorBody, type ErrorBody } from '@tollgate/policy';
import type { DecideRequest, Decision } from './types';

const secondsUntil = (epochMs: number, now: number) => Math.max(0, Math.ceil((epochMs - now) / 1000));

/**
 * A count's decimal text. `String(n)` and `${n}` keep each new string in V8's number-to-string
 * cache, which lives in the old generation: a header value that counts down (a new number on
 * every call) was held by the cache through the next scavenge and promoted. In a heap-sampling
 * profile of what survived the gateway's scavenges, these headers were a fifth of the bytes.
 * `toFixed(0)` gives the same text for an integer and caches nothing.
 */
const int = (n: number): string =>
  n >= 0 && n < SMALL.length && (n | 0) === n ? SMALL[n]! : Number.isInteger(n) ? n.toFixed(0) : String(n);
/** Reset times in seconds and counts near a limit are mostly small: their text is made once. */
const SMALL: readonly string[] = Array.from({ length: 4096 }, (_, i) => i.toFixed(0));

/** `X-RateLimit-Reset` is epoch seconds: the same text for a whole second of calls. */
let lastEpoch = -1;
let lastEpochText = '';
function epochText(seconds: number): string {
  if (seconds !== lastEpoch) {
    lastEpochText = int(seconds);
    lastEpoch = seconds;
  }
  return lastEpochText;
}

/** Policy names become Structured Field strings: only printable ASCII, quotes and backslashes escaped. */
function sfString(name: string): string {
  return `"${name.replace(/[^\x20-\x7e]/g, '').replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** `RateLimit-Policy` and the quoted limit names depend on the policy alone: built once per request shape. */
type PolicyParts = { policy: string; names: string[]; rateLimits: string[]; quotaLimit: string };
const partsByRequest = new WeakMap<DecideRequest, PolicyParts>();

function policyParts(decision: Decision): PolicyParts {
  // The memory limiter decides on a fresh request object each time: nothing to reuse there.
  const key = decision.source === 'redis' ? decision.request : undefined;
  const cached = key === undefined ? undefined : partsByRequest.get(key);
  if (cached !== undefined) return cached;
  const names = decision.rates.map((r) => sfString(r.name));
  const policy = decision.rates.map((r, i) => `${names[i]};q=${r.limit};w=${r.windowSeconds}`);
  const q = decision.quota;
  if (q) policy.push(`"quota";q=${q.limit}${q.windowSeconds ? `;w=${q.windowSeconds}` : ''}`);
  const parts = {
    policy: policy.join(', '),
    names,
    rateLimits: decision.rates.map((r) => int(r.limit)),
    quotaLimit: q ? int(q.limit) : '',
  };
  if (key !== undefined) partsByRequest.set(key, parts);
  return parts;
}

/**
 * Response headers for a decision, allowed or refused:
 * - `RateLimit-Policy` / `RateLimit` as in draft-ietf-httpapi-ratelimit-headers (-08 to -10):
 *   one list member per limit, e.g. `"plan";q=100;w=60, "quota";q=10000;w=2592000` and
 *   `"plan";r=42;t=13, "quota";r=9000;t=86400`. The quota has no `w` when its period start is unknown.
 * - `X-RateLimit-Limit/Remaining/Reset` for the most restrictive rate (the quota when there is no
 *   rate); Reset is epoch seconds, as GitHub and most clients read it.
 * - `Retry-After` (delta seconds) when refused.
 */
export function rateLimitHeaders(decision: Decision): Record<string, string> {
  const { policy, names, rateLimits, quotaLimit } = policyParts(decision);
  let state = '';
  for (let i = 0; i < decision.rates.length; i++) {
    const r = decision.rates[i]!;
    state += `${i === 0 ? '' : ', '}${names[i]};r=${int(r.remaining)};t=${int(r.resetSeconds)}`;
  }
  const q = decision.quota;
  if (q) state += `${state === '' ? '' : ', '}"quota";r=${int(q.remaining)};t=${int(secondsUntil(q.resetAt, decision.now))}`;
  const headers: Record<string, string> = {};
  if (policy !== '') {
    headers['RateLimit-Policy'] = policy;
    headers['RateLimit'] = state;
  }
  const nowSeconds = Math.floor(decision.now / 1000);
  // A refused quota is the binding limit even when a rate is also listed.
  const rate = decision.rate;
  if (rate && decision.reason !== 'quota') {
    const i = decision.rates.indexOf(rate);
    headers['X-RateLimit-Limit'] = i === -1 ? int(rate.limit) : rateLimits[i]!;
    headers['X-RateLimit-Remaining'] = int(rate.remaining);
    headers['X-RateLimit-Reset'] = epochText(nowSeconds + rate.resetSeconds);
  } else if (q) {
    headers['X-RateLimit-Limit'] = quotaLimit;
    headers['X-RateLimit-Remaining'] = int(q.remaining);
    headers['X-RateLimit-Reset'] = epochText(Math.ceil(q.resetAt / 1000));
  }
  if (!decision.allowed && decision.retryAfterSeconds != null) headers['Retry-After'] = int(decision.retryAfterSeconds);
  return headers;
}

/**
 * The 429 body for a refused decision: which limit, when it resets, how long to wait. Codes are
 * `rate_limited` or `quota_exceeded` (both 429 in ERROR_STATUS).
 */
export function limitExceededBody(decision: Decision, requestId?: string): ErrorBody {
  const retryAfterSeconds = decision.retryAfterSeconds ?? 1;
  if (decision.reason === 'quota' && decision.quota) {
    const resetsAt = new Date(decision.quota.resetAt).toISOString();
    return errorBody(
      'quota_exceeded',
      `Quota of ${decision.quota.limit} requests for this billing period is used up; it resets at ${resetsAt}.`,
      requestId,
      {
        limit: 'quota',
        quota: decision.quota.limit,
        used: decision.quota.used,
        resetsAt,
        retryAfterSeconds,
      },
    );
  }
  const r = decision.rate;
  const resetsAt = new Date(decision.now + retryAfterSeconds * 1000).toISOString();
  const what = r ? `"${r.name}" rate limit of ${r.limit} requests per ${r.windowSeconds} s` : 'rate limit';
  return errorBody('rate_limited', `The ${what} is exceeded; retry after ${retryAfterSeconds} s.`, requestId, {
    limit: r?.name ?? null,
    resetsAt,
    retryAfterSeconds,
  });
}
