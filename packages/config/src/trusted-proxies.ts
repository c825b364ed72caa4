import { BlockList, isIP } from 'node:net';
import { z } from 'zod';

// Which client address a service believes: the socket peer, unless that peer is a proxy the
// operator named, in which case the nearest address in X-Forwarded-For that isn't one of those
// proxies. The gateway (GATEWAY_TRUSTED_PROXIES) and the console (CONSOLE_TRUSTED_PROXIES) parse
// the same setting and resolve the address the same way, so a spoofed header means the same
// nothing to both.

/** Comma-separated IP addresses and CIDR blocks, e.g. `10.0.0.0/8, 2001:db8::/32, 127.0.0.1`. */
export const cidrList = z
  .string()
  .default('')
  .transform((value, ctx) => {
    const out: string[] = [];
    for (const raw of value.split(',')) {
      const item = raw.trim();
      if (!item) continue;
      const [addr, bits] = item.split('/');
      const family = isIP(addr ?? '');
      const max = family === 6 ? 128 : 32;
      const n = bits === undefined ? max : Number(bits);
      if (!family || !Number.isInteger(n) || n < 0 || n > max) {
        ctx.addIssue({ code: 'custom', message: `not an IP address or CIDR: ${JSON.stringify(item)}` });
        return z.NEVER;
      }
      out.push(`${addr}/${n}`);
    }
    return out;
  });

export type TrustedProxyCheck = (address: string | undefined) => boolean;

/** A matcher for the trusted-proxy CIDR list; IPv4-mapped IPv6 addresses count as IPv4. */
export function createTrustedProxyCheck(cidrs: readonly string[]): TrustedProxyCheck {
  if (cidrs.length === 0) return () => false;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr, bits] = cidr.split('/') as [string, string];
    list.addSubnet(addr, Number(bits), isIP(addr) === 6 ? 'ipv6' : 'ipv4');
  }
  return (address) => {
    if (!address) return false;
    const ip = normalizeIp(address);
    const family = isIP(ip);
    return family !== 0 && list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
  };
}

export function normalizeIp(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Hops examined from the right before the chain counts as all proxies (a header of 1,000 entries costs ≤ this). */
export const MAX_FORWARDED_HOPS = 32;

/**
 * One X-Forwarded-For entry as an address, or null when it is none: surrounding space, a port
 * (`1.2.3.4:80`, `[2001:db8::1]:443`) and brackets are dropped; anything else that isn't an IP
 * address (a name, `unknown`, garbage) is null.
 */
export function forwardedEntryAddress(entry: string): string | null {
  let s = entry.trim();
  if (s.length === 0 || s.length > 64) return null;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0 || (end !== s.length - 1 && !/^:\d{1,5}$/.test(s.slice(end + 1)))) return null;
    s = s.slice(1, end);
  } else if (s.indexOf(':') === s.lastIndexOf(':') && s.includes(':')) {
    const [host, port] = s.split(':') as [string, string];
    if (!/^\d{1,5}$/.test(port)) return null;
    s = host;
  }
  return isIP(s) ? normalizeIp(s) : null;
}

/**
 * The client's address: the socket peer, or — when the peer is a trusted proxy — the right-most
 * X-Forwarded-For entry that isn't a trusted proxy (every hop to its right was appended by one of
 * ours, so it is the address our outermost proxy saw). Entries to its left were written by the
 * client and are never read. An entry that isn't an address where an address must be stops the
 * walk at the trusted hop that passed it on, as do more than MAX_FORWARDED_HOPS trusted hops.
 */
export function clientAddress(peer: string | undefined, xff: string | string[] | undefined, isTrusted: TrustedProxyCheck): string {
  const ip = normalizeIp(peer ?? '');
  if (!xff || !isTrusted(peer)) return ip;
  const header = Array.isArray(xff) ? xff.join(',') : xff;
  let nearest = ip;
  let end = header.length;
  for (let hops = 0; end > 0 && hops < MAX_FORWARDED_HOPS; hops++) {
    const comma = header.lastIndexOf(',', end - 1);
    const raw = header.slice(comma + 1, end);
    end = comma < 0 ? 0 : comma;
    if (raw.trim() === '') continue;
    const hop = forwardedEntryAddress(raw);
    if (hop === null) return nearest;
    if (!isTrusted(hop)) return hop;
    nearest = hop;
  }
  return nearest;
}
