import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

// Addresses an upstream must not point at unless the tenant allows private targets: the
// gateway would otherwise be a proxy into our own network (RFC 6890 special-purpose ranges).
const PRIVATE = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 96],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE.addSubnet(net, bits, 'ipv6');
}

// Cloud metadata endpoints stay blocked even for tenants that allow private targets: nothing
// legitimate is served there and they hand out credentials.
const METADATA = new Set(['169.254.169.254', '169.254.170.2', 'fd00:ec2::254', '100.100.100.200']);
const METADATA_HOSTS = /^(metadata|metadata\.google\.internal|metadata\.azure\.com|instance-data(\.ec2\.internal)?)\.?$/i;
const LOCAL_NAMES = /(^|\.)(localhost|local|internal|localdomain|home\.arpa)\.?$/i;

/** An IPv4 address hidden in an IPv6 one (::ffff:a.b.c.d, ::a.b.c.d), else null. */
function embeddedV4(addr: string): string | null {
  const lower = addr.toLowerCase();
  const dotted = /^(?:0*:)*(?:ffff:)?(\d+\.\d+\.\d+\.\d+)$/.exec(lower.replace(/^::/, '0:'));
  if (dotted) return dotted[1]!;
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return null;
}

export type AddressClass = 'public' | 'private' | 'metadata';

export function classifyAddress(addr: string): AddressClass {
  const bare = addr.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 0) return 'private';
  const v4 = family === 6 ? embeddedV4(bare) : bare;
  if (v4 && isIP(v4) === 4) {
    if (METADATA.has(v4)) return 'metadata';
    return PRIVATE.check(v4, 'ipv4') ? 'private' : 'public';
  }
  if (METADATA.has(bare.toLowerCase())) return 'metadata';
  return PRIVATE.check(bare, 'ipv6') ? 'private' : 'public';
}

export type Resolver = (host: string) => Promise<string[]>;

const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

export type UpstreamCheck = { ok: true; url: string } | { ok: false; reason: string };

/**
 * Decides whether the gateway may forward to `raw`. Host names are resolved and every address
 * must pass, so a public name pointing at 127.0.0.1 is refused like the literal.
 */
export async function checkUpstreamUrl(raw: string, opts: { allowPrivate: boolean; resolve?: Resolver }): Promise<UpstreamCheck> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'is not a valid URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: 'must use http or https' };
  if (url.username || url.password) return { ok: false, reason: 'must not contain credentials' };
  if (url.search || url.hash) return { ok: false, reason: 'must not carry a query string or fragment' };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!host) return { ok: false, reason: 'needs a host' };
  if (METADATA_HOSTS.test(host)) return { ok: false, reason: 'points at a cloud metadata service' };

  let addresses: string[];
  if (isIP(host)) {
    addresses = [host];
  } else {
    if (LOCAL_NAMES.test(host) && !opts.allowPrivate) {
      return { ok: false, reason: 'points at a local or internal host name (allow private targets in settings to use it)' };
    }
    try {
      addresses = await (opts.resolve ?? systemResolver)(host);
    } catch {
      return { ok: false, reason: `host ${host} does not resolve` };
    }
    if (addresses.length === 0) return { ok: false, reason: `host ${host} does not resolve` };
  }
  for (const addr of addresses) {
    const cls = classifyAddress(addr);
    if (cls === 'metadata') return { ok: false, reason: 'points at a cloud metadata service' };
    if (cls === 'private' && !opts.allowPrivate) {
      return {
        ok: false,
        reason: `resolves to a private, loopback or link-local address (${addr}); allow private targets in settings to use it`,
      };
    }
  }
  // Normalised form (no trailing slash) so the gateway joins paths predictably.
  const normalised = url.toString().replace(/\/$/, '');
  return { ok: true, url: normalised };
}
