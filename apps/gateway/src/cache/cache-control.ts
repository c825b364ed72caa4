/**
 * The HTTP caching rules the gateway's response cache follows (RFC 9111, as a shared cache),
 * as pure functions over header values so they can be tested without a server.
 */

/**
 * Statuses stored when the route caches. RFC 9110 §15.1 "heuristically cacheable" minus 206
 * (no range support), 405/501 (answered by the gateway or meaning a misconfiguration) and 414
 * (the gateway refuses long targets itself). 404/410 are negative caching, bounded by the TTL.
 */
export const CACHEABLE_STATUSES: ReadonlySet<number> = new Set([200, 203, 204, 300, 301, 308, 404, 410]);

export type Directives = Map<string, string | true>;

/** `Cache-Control` → directive → value (`true` when it has none). Lower-cases names; unquotes values. */
export function parseCacheControl(value: string | string[] | undefined): Directives {
  const out: Directives = new Map();
  if (value === undefined) return out;
  const text = Array.isArray(value) ? value.join(',') : value;
  const n = text.length;
  let i = 0;
  while (i < n) {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === ',')) i++;
    if (i >= n) break;
    let start = i;
    while (i < n && text[i] !== '=' && text[i] !== ',') i++;
    const name = text.slice(start, i).trim().toLowerCase();
    let v: string | true = true;
    if (text[i] === '=') {
      i++;
      while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
      if (text[i] === '"') {
        // A quoted value may hold commas (`private="a, b"`).
        i++;
        let q = '';
        while (i < n && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < n) i++;
          q += text[i];
          i++;
        }
        v = q;
        while (i < n && text[i] !== ',') i++;
      } else {
        start = i;
        while (i < n && text[i] !== ',') i++;
        v = text.slice(start, i).trim();
      }
    }
    // The first occurrence wins (RFC 9111 §4.2.1 leaves duplicates to the cache: be strict).
    if (name && !out.has(name)) out.set(name, v);
  }
  return out;
}

/** A delta-seconds value, or null when absent, 'invalid' when malformed (= treat as stale). */
function deltaSeconds(v: string | true | undefined): number | null | 'invalid' {
  if (v === undefined) return null;
  if (v === true || !/^\d+$/.test(v)) return 'invalid';
  // Larger than a cache can represent means 2^31 (RFC 9111 §1.2.2).
  return v.length > 10 ? 2 ** 31 : Math.min(Number(v), 2 ** 31);
}

export type ResponseHeaders = Record<string, string | string[] | undefined>;

export type StoreDecision = { store: true; ttlMs: number; vary: string[]; initialAgeSeconds: number } | { store: false; reason: string };

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * Whether a response may be stored, and for how long. Never longer than the route's TTL; the
 * upstream can only shorten it (`s-maxage`, then `max-age`, then `Expires`) or forbid storing
 * (`no-store`, `private`, `no-cache` — the gateway does not revalidate, so "store but revalidate
 * every time" is "don't store"). Responses setting cookies are never stored. `Vary: *` can't be
 * matched; any other `Vary` is honoured by keying on those request headers. A response with a
 * `Content-Encoding` varies on `Accept-Encoding` even when the upstream forgot to say so.
 */
export function decideStore(status: number, headers: ResponseHeaders, routeTtlSeconds: number, now: number): StoreDecision {
  if (!CACHEABLE_STATUSES.has(status)) return { store: false, reason: 'status' };
  if (headers['set-cookie'] !== undefined) return { store: false, reason: 'set-cookie' };
  const cc = parseCacheControl(headers['cache-control']);
  if (cc.has('no-store')) return { store: false, reason: 'no-store' };
  if (cc.has('private')) return { store: false, reason: 'private' };
  if (cc.has('no-cache')) return { store: false, reason: 'no-cache' };
  if (cc.size === 0 && /(^|,)\s*no-cache\s*(,|$)/i.test(single(headers.pragma) ?? '')) return { store: false, reason: 'no-cache' };

  let lifetime = routeTtlSeconds;
  const sMax = deltaSeconds(cc.get('s-maxage'));
  const max = deltaSeconds(cc.get('max-age'));
  const upstream = sMax ?? max;
  if (upstream === 'invalid') return { store: false, reason: 'max-age' };
  if (upstream !== null) lifetime = Math.min(lifetime, upstream);
  else if (headers.expires !== undefined) {
    // An invalid Expires means "already expired" (RFC 9111 §5.3).
    const expires = Date.parse(single(headers.expires)!);
    const date = headers.date !== undefined ? Date.parse(single(headers.date)!) : now;
    if (Number.isNaN(expires)) return { store: false, reason: 'expires' };
    lifetime = Math.min(lifetime, Math.floor((expires - (Number.isNaN(date) ? now : date)) / 1000));
  }
  const ageHeader = deltaSeconds(single(headers.age)?.trim());
  const initialAgeSeconds = typeof ageHeader === 'number' ? ageHeader : 0;
  const ttlMs = (lifetime - initialAgeSeconds) * 1000;
  if (ttlMs <= 0) return { store: false, reason: 'stale' };

  const vary = parseVary(headers.vary);
  if (vary === '*') return { store: false, reason: 'vary-star' };
  if (headers['content-encoding'] !== undefined && !vary.includes('accept-encoding')) vary.push('accept-encoding');
  vary.sort();
  return { store: true, ttlMs, vary, initialAgeSeconds };
}

/** Lower-case header names the response varies on, or `'*'`. */
export function parseVary(value: string | string[] | undefined): string[] | '*' {
  if (value === undefined) return [];
  const names = new Set<string>();
  for (const raw of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const name = raw.trim().toLowerCase();
    if (name === '*') return '*';
    if (name) names.add(name);
  }
  return [...names];
}

/**
 * Whether a request may use the cache at all (`null`) or why not. Requests whose forwarded
 * headers carry credentials or cookies the upstream sees (but the gateway doesn't judge) bypass
 * it: the response may depend on an identity that isn't in the key (RFC 9111 §3.5 for
 * Authorization). Ranges and bodies bypass it too.
 */
export function bypassReason(
  headers: Record<string, string | string[] | undefined>,
  forwardsAuthorization: boolean,
  forwardsCookie: boolean,
): string | null {
  if (forwardsAuthorization) return 'authorization';
  if (forwardsCookie) return 'cookie';
  if (headers.range !== undefined) return 'range';
  if (headers['content-length'] !== undefined && headers['content-length'] !== '0') return 'body';
  if (headers['transfer-encoding'] !== undefined) return 'body';
  return null;
}

/** The request asks that nothing about this exchange be stored (RFC 9111 §5.2.1.5). */
export function requestForbidsStore(headers: Record<string, string | string[] | undefined>): boolean {
  const cc = headers['cache-control'];
  return cc !== undefined && parseCacheControl(cc).has('no-store');
}

/** `If-None-Match` against a stored ETag, weak comparison (RFC 9110 §13.1.2). */
export function etagMatches(ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch.trim() === '*') return true;
  const strip = (t: string) => t.trim().replace(/^W\//, '');
  const mine = strip(etag);
  return ifNoneMatch.split(',').some((t) => strip(t) === mine);
}
