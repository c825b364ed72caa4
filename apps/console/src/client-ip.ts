import type { IncomingMessage } from 'node:http';
import { clientAddress, createTrustedProxyCheck, normalizeIp, type TrustedProxyCheck } from '@tollgate/config';
import type { ConsoleConfig } from './env';

// Which address the console believes a request came from (rate limits, audit rows). Used by
// src/main.ts, which has the socket; the app reads the result from CLIENT_IP_HEADER.

/** The client's address for one request, from the socket and (only if configured) X-Forwarded-For. */
export function resolveClientIp(config: Pick<ConsoleConfig, 'trustProxy' | 'trustedProxies'>): (req: IncomingMessage) => string {
  if (!config.trustProxy) return (req) => normalizeIp(req.socket.remoteAddress ?? '');
  const listed = config.trustedProxies.length ? createTrustedProxyCheck(config.trustedProxies) : null;
  return (req) => {
    const peer = req.socket.remoteAddress;
    // No list: the direct peer is the one proxy, so the entry it appended (the right-most) counts.
    const isTrusted: TrustedProxyCheck = listed ?? ((a) => a !== undefined && peer !== undefined && normalizeIp(a) === normalizeIp(peer));
    return clientAddress(peer, req.headers['x-forwarded-for'], isTrusted);
  };
}
