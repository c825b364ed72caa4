import { BlockList, isIP } from 'node:net';

/**
 * Which upstream addresses the platform may dial. Shared by the console (checked when a target is
 * saved) and the gateway (checked again on every new connection, after DNS: a name that resolved
 * to a public address when saved may resolve to 127.0.0.1 later — DNS rebinding).
 *
 * - `metadata`: cloud metadata services. Refused always, in every spelling: IPv4, and IPv4
 *   embedded in IPv6 (mapped, compatible, SIIT, NAT64 well-known and local-use prefixes at every
 *   RFC 6052 length, 6to4, Teredo).
 * - `private`: RFC 6890 special-purpose ranges (loopback, RFC 1918, link-local, ULA, ...).
 *   Refused unless the tenant allows private targets.
 * - `public`: everything else.
 */
export type AddressClass = 'public' | 'private' | 'metadata';

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
  ['::ffff:0:0:0', 96],
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

// Cloud metadata endpoints (AWS, GCP, Azure, Oracle: 169.254.169.254 and its /24 neighbours such
// as AWS's DNS and time servers; AWS ECS task metadata 169.254.170.2; Alibaba 100.100.100.200;
// AWS over IPv6 fd00:ec2::254).
const METADATA_V4 = new BlockList();
METADATA_V4.addSubnet('169.254.169.0', 24, 'ipv4');
METADATA_V4.addSubnet('169.254.170.0', 24, 'ipv4');
METADATA_V4.addAddress('100.100.100.200', 'ipv4');
const METADATA_V6 = new BlockList();
METADATA_V6.addAddress('fd00:ec2::254', 'ipv6');

/** Metadata services by name, refused before any lookup. */
export const METADATA_HOST_NAMES = /^(metadata|metadata\.google\.internal|metadata\.azure\.com|instance-data(\.ec2\.internal)?)\.?$/i;

/** The 16 bytes of an IPv6 address (no brackets, no zone), or null. */
export function ipv6Bytes(addr: string): Uint8Array | null {
  if (isIP(addr) !== 6) return null;
  let s = addr.toLowerCase();
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) !== -1) {
    // A trailing dotted quad is two groups.
    const q = s
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    s = `${s.slice(0, lastColon + 1)}${((q[0]! << 8) | q[1]!).toString(16)}:${((q[2]! << 8) | q[3]!).toString(16)}`;
  }
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  let groups: number[];
  const gap = s.indexOf('::');
  if (gap === -1) groups = parse(s);
  else {
    const a = parse(s.slice(0, gap));
    const b = parse(s.slice(gap + 2));
    groups = [...a, ...new Array<number>(8 - a.length - b.length).fill(0), ...b];
  }
  if (groups.length !== 8) return null;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 255;
  });
  return out;
}

const dotted = (b: ArrayLike<number>) => `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;

function startsWith(bytes: Uint8Array, prefix: readonly number[]): boolean {
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** RFC 6052 positions of an IPv4 address in an IPv4-embedded IPv6 address, by prefix length (bit 64-71 is skipped). */
function rfc6052(bytes: Uint8Array, prefixBits: 32 | 40 | 48 | 56 | 64 | 96): string {
  const pick = (idx: number[]) => dotted(idx.map((i) => bytes[i]!));
  switch (prefixBits) {
    case 32:
      return pick([4, 5, 6, 7]);
    case 40:
      return pick([5, 6, 7, 9]);
    case 48:
      return pick([6, 7, 9, 10]);
    case 56:
      return pick([7, 9, 10, 11]);
    case 64:
      return pick([9, 10, 11, 12]);
    case 96:
      return pick([12, 13, 14, 15]);
  }
}

/** Every IPv4 address an IPv6 address may carry, by the embeddings that reach IPv4 hosts. */
export function embeddedIpv4(addr: string): string[] {
  const b = ipv6Bytes(addr);
  if (b === null) return [];
  const out: string[] = [];
  const zero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  // ::a.b.c.d (compatible), ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (SIIT)
  if (zero(0, 10) && ((b[10] === 0 && b[11] === 0) || (b[10] === 0xff && b[11] === 0xff))) out.push(rfc6052(b, 96));
  if (zero(0, 8) && b[8] === 0xff && b[9] === 0xff && b[10] === 0 && b[11] === 0) out.push(rfc6052(b, 96));
  // NAT64 well-known 64:ff9b::/96
  if (startsWith(b, [0x00, 0x64, 0xff, 0x9b]) && zero(4, 12)) out.push(rfc6052(b, 96));
  // NAT64 local-use 64:ff9b:1::/48, operators choose the length: every RFC 6052 position from /48
  if (startsWith(b, [0x00, 0x64, 0xff, 0x9b, 0x00, 0x01])) for (const n of [48, 56, 64, 96] as const) out.push(rfc6052(b, n));
  // 6to4 2002:AABB:CCDD::/48
  if (b[0] === 0x20 && b[1] === 0x02) out.push(dotted([b[2]!, b[3]!, b[4]!, b[5]!]));
  // Teredo 2001:0::/32: server at bits 32-63, client obfuscated (inverted) in the last 32 bits
  if (startsWith(b, [0x20, 0x01, 0x00, 0x00])) {
    out.push(rfc6052(b, 32));
    out.push(dotted([b[12]! ^ 255, b[13]! ^ 255, b[14]! ^ 255, b[15]! ^ 255]));
  }
  return out;
}

/** Classifies an IP address (IPv6 with or without brackets or zone); anything that isn't an IP is `private`. */
export function classifyAddress(addr: string): AddressClass {
  const bare = addr.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 0) return 'private';
  if (family === 4) {
    if (METADATA_V4.check(bare, 'ipv4')) return 'metadata';
    return PRIVATE.check(bare, 'ipv4') ? 'private' : 'public';
  }
  if (METADATA_V6.check(bare, 'ipv6')) return 'metadata';
  const embedded = embeddedIpv4(bare);
  if (embedded.some((v4) => METADATA_V4.check(v4, 'ipv4'))) return 'metadata';
  if (PRIVATE.check(bare, 'ipv6')) return 'private';
  return embedded.some((v4) => PRIVATE.check(v4, 'ipv4')) ? 'private' : 'public';
}

/** Whether the platform may connect to `addr` for a tenant with this private-targets setting. */
export function isAllowedTarget(addr: string, allowPrivate: boolean): boolean {
  const cls = classifyAddress(addr);
  return cls === 'public' || (cls === 'private' && allowPrivate);
}
