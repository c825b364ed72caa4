import type { IncomingMessage } from 'node:http';
import { GATEWAY_DERIVED_REQUEST_HEADERS, HOP_BY_HOP_HEADERS } from '@tollgate/policy';

// Hop-by-hop headers never cross; on requests, what the gateway re-derives itself (Host,
// X-Forwarded-*) and what undici can't pass through (Expect) go too.
const REQUEST_DROP = new Set([...HOP_BY_HOP_HEADERS, ...GATEWAY_DERIVED_REQUEST_HEADERS]);
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
};

/**
 * The client's headers minus hop-by-hop ones, minus every header named in `Connection`, minus
 * the whole `x-tollgate-*` namespace: all removed BEFORE the gateway adds its own, so nothing a
 * client sends (e.g. `Connection: x-tollgate-consumer`) can remove or alter identity headers.
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
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (REQUEST_DROP.has(name)) continue;
    if (name.charCodeAt(0) === 120 /* x */ && name.startsWith('x-tollgate-')) continue;
    if (named !== null && named.has(name)) continue;
    if (name === opts.credentialHeader) continue;
    if (opts.remove !== null && opts.remove.includes(name)) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

/** Upstream response headers minus hop-by-hop ones and those its `Connection` names. */
export function filterResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
  remove: readonly string[] | null,
): Record<string, string | string[]> {
  let named: Set<string> | null = null;
  const conn = headers.connection;
  // Upstreams nearly always say just keep-alive/close, which name no other header.
  if (conn !== undefined && conn !== 'keep-alive' && conn !== 'close') {
    named = new Set();
    connectionTokens(Array.isArray(conn) ? conn.join(',') : conn, named);
  }
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || RESPONSE_DROP.has(name)) continue;
    if (named !== null && named.has(name)) continue;
    if (remove !== null && remove.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Appends `client` to a trusted X-Forwarded-For chain, or starts a new one. */
export function forwardedFor(existing: string | string[] | undefined, client: string, trusted: boolean): string {
  if (!trusted || existing === undefined) return client;
  const chain = Array.isArray(existing) ? existing.join(', ') : existing;
  return chain ? `${chain}, ${client}` : client;
}
