import type { IncomingMessage } from 'node:http';
import { util as undiciUtil } from 'undici';
import { GATEWAY_DERIVED_REQUEST_HEADERS, HOP_BY_HOP_HEADERS, URL_OVERRIDE_REQUEST_HEADERS } from '@tollgate/policy';

const { headerNameToString } = undiciUtil;

/** Where the client's own `X-Request-Id` goes upstream (validated); `X-Request-Id` is the gateway's. */
export const CLIENT_REQUEST_ID = 'x-client-request-id';
const CLIENT_REQUEST_ID_FORM = /^[A-Za-z0-9+/=._:-]{1,128}$/;

// Hop-by-hop headers never cross; on requests, what the gateway re-derives itself (Host,
// X-Forwarded-*, the request ids), what undici can't pass through (Expect) and URL overrides
// (X-Original-URL) go too.
const REQUEST_DROP = new Set([
  ...HOP_BY_HOP_HEADERS,
  ...GATEWAY_DERIVED_REQUEST_HEADERS,
  ...URL_OVERRIDE_REQUEST_HEADERS,
  'x-request-id',
  CLIENT_REQUEST_ID,
]);
const RESPONSE_DROP = HOP_BY_HOP_HEADERS;

function connectionTokens(value: string, into: Set<string>): void {
  for (const t of value.split(',')) {
    const name = t.trim().toLowerCase();
    if (name) into.add(name);
  }
}

export type ForwardHeaderOptions = {
  /** Header carrying the API key, removed so upstreams never see client secrets. */
  credentialHeader: string | null;
  /** Lower-case names to remove (route transform). */
  remove: readonly string[] | null;
  /** The gateway's request id, sent as `X-Request-Id`; absent = set by the caller. */
  requestId?: string;
};

/**
 * The client's headers minus hop-by-hop ones, minus every header named in `Connection`, minus
 * the whole `x-tollgate-*` namespace: all removed BEFORE the gateway adds its own, so nothing a
 * client sends (e.g. `Connection: x-tollgate-consumer`) can remove or alter identity headers.
 * Names are compared with `_` read as `-`: CGI-style servers (and nginx, PHP, WSGI) map both
 * `X-Tollgate-Consumer` and `X_Tollgate_Consumer` onto `HTTP_X_TOLLGATE_CONSUMER`.
 * With `requestId`, the gateway's id goes up as `X-Request-Id` and the client's own one, when
 * well-formed, as `X-Client-Request-Id`.
 * Returns undici's flat `[name, value, …]` form, preserving duplicates and order.
 */
export function buildForwardHeaders(req: IncomingMessage, opts: ForwardHeaderOptions): string[] {
  const raw = req.rawHeaders;
  let named: Set<string> | null = null;
  const conn = req.headers.connection;
  if (conn !== undefined) {
    named = new Set();
    connectionTokens(conn, named);
  }
  const out: string[] = [];
  let clientId: string | null = null;
  let cookieSent = false;
  for (let i = 0; i < raw.length; i += 2) {
    const sent = raw[i]!.toLowerCase();
    // HTTP/2 pseudo-headers (`:method`, `:path`, `:authority`, `:scheme`) are the request line, not headers.
    if (sent.charCodeAt(0) === 58 /* : */) continue;
    const name = sent.indexOf('_') === -1 ? sent : sent.replace(/_/g, '-');
    if (REQUEST_DROP.has(name)) {
      if (name === 'x-request-id' && clientId === null && CLIENT_REQUEST_ID_FORM.test(raw[i + 1]!)) clientId = raw[i + 1]!;
      continue;
    }
    if (name.charCodeAt(0) === 120 /* x */ && name.startsWith('x-tollgate-')) continue;
    if (named !== null && named.has(name)) continue;
    if (name === opts.credentialHeader) continue;
    if (opts.remove !== null && opts.remove.includes(name)) continue;
    if (name === 'cookie' && req.httpVersionMajor === 2) {
      // HTTP/2 may split cookies over several fields; HTTP/1.1 wants one (RFC 9113 §8.2.3).
      if (!cookieSent) out.push('cookie', req.headers.cookie!);
      cookieSent = true;
      continue;
    }
    out.push(sent, raw[i + 1]!);
  }
  if (opts.requestId !== undefined) {
    out.push('x-request-id', opts.requestId);
    // A trusted proxy's id is the gateway's own (app.ts): sent once, as X-Request-Id.
    if (clientId !== null && clientId !== opts.requestId) out.push(CLIENT_REQUEST_ID, clientId);
  }
  return out;
}

/** Response headers the gateway sets itself when it has limit headers of its own. */
const LIMIT_HEADERS: ReadonlySet<string> = new Set([
  'ratelimit',
  'ratelimit-policy',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
]);

/**
 * Upstream response headers as a flat `[name, value, …]` list (lower-case names, duplicates and
 * order kept, ready for `writeHead`), minus hop-by-hop ones, those its `Connection` names, those
 * a route transform removes, and those the gateway is about to set itself: `X-Request-Id`
 * always, the rate-limit headers when `ownLimitHeaders`.
 */
export function filterResponseHeaders(
  raw: readonly (Buffer | string)[],
  remove: readonly string[] | null,
  ownLimitHeaders: boolean,
): string[] {
  let named: Set<string> | null = null;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = headerNameToString(raw[i]!);
    const v = raw[i + 1]!;
    const value = typeof v === 'string' ? v : v.toString('latin1');
    if (RESPONSE_DROP.has(name)) {
      // Upstreams nearly always say just keep-alive/close, which name no other header.
      if (name === 'connection' && value !== 'keep-alive' && value !== 'close') connectionTokens(value, (named ??= new Set()));
      continue;
    }
    if (name === 'x-request-id') continue;
    if (ownLimitHeaders && LIMIT_HEADERS.has(name)) continue;
    if (remove !== null && remove.includes(name)) continue;
    out.push(name, value);
  }
  if (named === null) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!named.has(out[i]!)) kept.push(out[i]!, out[i + 1]!);
  return kept;
}

/** Sets `name` in a flat header list, replacing every earlier value (a route transform's `set`). */
export function setHeaderInList(list: string[], name: string, value: string): void {
  for (let i = list.length - 2; i >= 0; i -= 2) if (list[i] === name) list.splice(i, 2);
  list.push(name, value);
}

/** A flat header list as an object, repeated names as arrays (what the cache rules read). */
export function headerRecord(list: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    const prev = out[name];
    out[name] = prev === undefined ? list[i + 1]! : Array.isArray(prev) ? [...prev, list[i + 1]!] : [prev, list[i + 1]!];
  }
  return out;
}

/** Appends `client` to a trusted X-Forwarded-For chain, or starts a new one. */
export function forwardedFor(existing: string | string[] | undefined, client: string, trusted: boolean): string {
  if (!trusted || existing === undefined) return client;
  const chain = Array.isArray(existing) ? existing.join(', ') : existing;
  return chain ? `${chain}, ${client}` : client;
}
