import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { CompiledApi, CompiledRoute, TenantRuntime } from '../routing/route-table';
import { bypassReason, decideStore, etagMatches, requestForbidsStore } from './cache-control';
import type { CacheEntry, ResponseCache } from './response-cache';
import type { BodyTap } from '../proxy/forward';
import { headerRecord, setHeaderInList } from '../proxy/headers';

export type CacheResult = 'hit' | 'miss' | 'bypass';

/** What the request path carries from the lookup to the response. */
export type CacheState =
  | { kind: 'hit'; entry: CacheEntry }
  | { kind: 'bypass'; reason: string }
  | {
      kind: 'miss';
      cache: ResponseCache;
      primary: string;
      tenantId: string;
      api: CompiledApi;
      ttlSeconds: number;
      header: (name: string) => string;
      /** HEAD misses and `Cache-Control: no-store` requests are forwarded but not stored. */
      store: boolean;
    };

export type CacheLookupInput = {
  cache: ResponseCache;
  method: string;
  tenant: TenantRuntime;
  api: CompiledApi;
  route: CompiledRoute;
  /** Canonical path below the base path, and the query as forwarded (credential removed). */
  rest: string;
  query: string;
  requestHeaders: IncomingHttpHeaders;
  /** undici's flat `[name, value, …]` list about to be sent upstream (lower-case names). */
  forwardHeaders: readonly string[];
};

/** Value of a header as the upstream would receive it (duplicates joined), '' when absent. */
export function forwardedHeader(list: readonly string[], name: string): string {
  let out: string | null = null;
  for (let i = 0; i < list.length; i += 2) {
    if (list[i] === name) out = out === null ? list[i + 1]! : `${out}, ${list[i + 1]!}`;
  }
  return out ?? '';
}

/**
 * Looks the request up. Runs after authentication and limits (a hit is a counted call) and after
 * the forwarded headers are built, so `Vary` is matched against what the upstream would see.
 */
export function lookupCache(i: CacheLookupInput): CacheState {
  const s = lookup(i);
  i.cache.counts[s.kind]++;
  return s;
}

function lookup(i: CacheLookupInput): CacheState {
  if (i.method !== 'GET' && i.method !== 'HEAD') return { kind: 'bypass', reason: 'method' };
  const fwd = i.forwardHeaders;
  let identity = '';
  let forwardsAuth = false;
  let forwardsCookie = false;
  for (let k = 0; k < fwd.length; k += 2) {
    const name = fwd[k]!;
    if (name === 'authorization') forwardsAuth = true;
    else if (name === 'cookie') forwardsCookie = true;
    // Every identity header the upstream is told (consumer, key, plan, JWT claims) is part of the
    // key, so no caller is ever served a response made for another. Tenant is in the key anyway;
    // the request id is per request.
    else if (name.startsWith('x-tollgate-') && name !== 'x-tollgate-request-id' && name !== 'x-tollgate-tenant')
      identity += `${name}=${fwd[k + 1]!}\n`;
  }
  const reason = bypassReason(i.requestHeaders, forwardsAuth, forwardsCookie);
  if (reason) return { kind: 'bypass', reason };
  const primary = i.cache.primaryKey({
    tenantId: i.tenant.tenantId,
    api: i.api,
    routeId: i.route.id,
    identity,
    // Upstreams may build absolute links from these: a response for one host is not another's.
    host: forwardedHeader(fwd, 'x-forwarded-host'),
    proto: forwardedHeader(fwd, 'x-forwarded-proto'),
    path: i.rest,
    query: i.query,
  });
  const header = (name: string) => forwardedHeader(fwd, name);
  const entry = i.cache.lookup(primary, header);
  if (entry) return { kind: 'hit', entry };
  return {
    kind: 'miss',
    cache: i.cache,
    primary,
    tenantId: i.tenant.tenantId,
    api: i.api,
    ttlSeconds: i.route.policy.cacheTtlSeconds,
    header,
    store: i.method === 'GET' && !requestForbidsStore(i.requestHeaders),
  };
}

/**
 * Request coalescing: of concurrent misses for one URL (same primary key) only the first goes to
 * the upstream; the others wait for it — at most `maxWaitMs`, their own header timeout — and are
 * answered from what it stored. A waiter whose variant wasn't stored, or whose wait ran out, goes
 * to the upstream itself (it never waits twice). The first request calls the returned `end` when
 * its exchange is over, however it ended.
 */
export async function coalesce(state: CacheState, maxWaitMs: number): Promise<{ state: CacheState; end: (() => void) | null }> {
  if (state.kind !== 'miss' || !state.store) return { state, end: null };
  const pending = state.cache.fillInProgress(state.primary);
  if (!pending) return { state, end: state.cache.beginFill(state.primary) };
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, maxWaitMs);
    void pending.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  const entry = state.cache.lookup(state.primary, state.header);
  if (!entry) return { state, end: null };
  state.cache.counts.miss--;
  state.cache.counts.coalesced++;
  return { state: { kind: 'hit', entry }, end: null };
}

/** Headers that belong to one exchange, not to the stored response. */
const PER_REQUEST = new Set(['age', 'x-cache', 'content-length', 'x-request-id', 'set-cookie']);

/** 304 keeps what RFC 9110 §15.4.5 says a 304 carries. */
const NOT_MODIFIED_HEADERS = ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary'];

/** Answers from the cache: stored status, headers and body, plus this request's own headers. */
export function sendCached(
  reply: FastifyReply,
  cache: ResponseCache,
  entry: CacheEntry,
  method: string,
  requestHeaders: IncomingHttpHeaders,
  own: Record<string, string> | null,
  requestId: string,
): FastifyReply {
  const age = String(cache.ageSeconds(entry));
  const etag = entry.headers.etag;
  const inm = requestHeaders['if-none-match'];
  if (typeof inm === 'string' && typeof etag === 'string' && entry.status === 200 && etagMatches(inm, etag)) {
    reply.code(304);
    for (const name of NOT_MODIFIED_HEADERS) if (entry.headers[name] !== undefined) reply.header(name, entry.headers[name]);
  } else {
    reply.code(entry.status).headers(entry.headers);
    if (entry.status !== 204) reply.header('content-length', String(entry.body.length));
  }
  if (own) reply.headers(own);
  reply.header('age', age).header('x-cache', 'HIT').header('x-request-id', requestId);
  if (method === 'HEAD' || reply.statusCode === 304 || entry.status === 204) return reply.send();
  return reply.send(entry.body);
}

/**
 * On a miss, tags the response (`headers`, the flat list the client gets, gains `X-Cache`) and —
 * if it may be stored — returns a tap that copies the body while it streams to the client. A body
 * past the size limit stops the copy (the client still gets all of it); only a body that ended
 * normally is stored, so a reset or timed-out upstream never leaves a truncated entry.
 */
export function captureResponse(
  state: CacheState,
  status: number,
  upstreamHeaders: Record<string, string | string[] | undefined>,
  headers: string[],
): BodyTap | null {
  if (state.kind !== 'miss') {
    if (state.kind === 'bypass') setHeaderInList(headers, 'x-cache', 'BYPASS');
    return null;
  }
  setHeaderInList(headers, 'x-cache', 'MISS');
  if (!state.store) return null;
  const { cache } = state;
  // Both what the upstream said and what the client gets must allow storing: a route transform
  // that strips the upstream's `private` or `Set-Cookie` doesn't make a personal response shareable.
  const now = Date.now();
  const d = decideStore(status, upstreamHeaders, state.ttlSeconds, now);
  if (!d.store) return null;
  const sent = headerRecord(headers);
  const out = decideStore(status, sent, state.ttlSeconds, now);
  if (!out.store) return null;
  const ttlMs = Math.min(d.ttlMs, out.ttlMs);
  const vary = [...new Set([...d.vary, ...out.vary])].sort();
  const max = cache.maxEntryBytes;
  const declared = upstreamHeaders['content-length'];
  if (typeof declared === 'string' && Number(declared) > max) return null;
  const stored: Record<string, string | string[]> = {};
  for (const name in sent) if (!PER_REQUEST.has(name)) stored[name] = sent[name]!;
  let chunks: Buffer[] | null = [];
  let size = 0;
  return {
    data(chunk) {
      if (chunks === null) return;
      size += chunk.length;
      if (size > max) chunks = null;
      else chunks.push(chunk);
    },
    end(complete) {
      if (chunks === null || !complete) return;
      cache.store(
        state.primary,
        { tenantId: state.tenantId, api: state.api },
        vary,
        state.header,
        { status, headers: stored, body: Buffer.concat(chunks, size) },
        ttlMs,
        Math.max(d.initialAgeSeconds, out.initialAgeSeconds),
      );
    },
  };
}
