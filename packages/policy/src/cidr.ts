/**
 * CIDR lists compiled into a matcher for the request path (ADR 0025): per prefix length, a set of
 * masked networks, so an address costs one set lookup per distinct prefix length in the list
 * (a handful in practice), whatever the list's size. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is
 * IPv4, in addresses and in CIDRs alike.
 */
export type ParsedCidr = { family: 4; bits: number; net: number } | { family: 6; bits: number; net: string };

/** An IPv4 address as an unsigned 32-bit integer, or -1 when it isn't one (no allocation). */
export function ipv4ToInt(s: string): number {
  let n = 0;
  let part = -1;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (part < 0 || dots === 3) return -1;
      n = n * 256 + part;
      part = -1;
      dots++;
    } else if (c >= 48 && c <= 57) {
      // No leading zeros (`010` is octal to some parsers): refuse rather than guess.
      if (part === 0) return -1;
      part = part < 0 ? c - 48 : part * 10 + (c - 48);
      if (part > 255) return -1;
    } else return -1;
  }
  if (part < 0 || dots !== 3) return -1;
  return n * 256 + part;
}

/** The 16 bytes of an IPv6 address (no brackets or zone), or null; no `node:net`, so the console's bundles can use it. */
export function parseIpv6(s: string): Uint8Array | null {
  if (s.length < 2 || s.length > 45) return null;
  const gap = s.indexOf('::');
  if (gap !== -1 && s.indexOf('::', gap + 1) !== -1) return null;
  const groups: number[] = [];
  const tail: number[] = [];
  const parseSide = (part: string, out: number[], last: boolean): boolean => {
    if (part === '') return true;
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      if (last && i === pieces.length - 1 && p.includes('.')) {
        const v4 = ipv4ToInt(p);
        if (v4 < 0) return false;
        out.push(Math.floor(v4 / 65536), v4 % 65536);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return false;
        out.push(parseInt(p, 16));
      }
    }
    return true;
  };
  if (gap === -1) {
    if (!parseSide(s, groups, true) || groups.length !== 8) return null;
  } else {
    if (!parseSide(s.slice(0, gap), groups, false) || !parseSide(s.slice(gap + 2), tail, true)) return null;
    if (groups.length + tail.length > 7) return null;
    while (groups.length + tail.length < 8) groups.push(0);
    groups.push(...tail);
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i]! >> 8;
    out[2 * i + 1] = groups[i]! & 255;
  }
  return out;
}

const mask4 = (bits: number) => (bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0);

function masked6(bytes: Uint8Array, bits: number): string {
  let out = '';
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    const b = keep === 0 ? 0 : bytes[i]! & ((0xff << (8 - keep)) & 0xff);
    out += (b < 16 ? '0' : '') + b.toString(16);
  }
  return out;
}

function mappedV4(bytes: Uint8Array): number {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return -1;
  if (bytes[10] !== 0xff || bytes[11] !== 0xff) return -1;
  return ((bytes[12]! << 24) >>> 0) + (bytes[13]! << 16) + (bytes[14]! << 8) + bytes[15]!;
}

/** `a.b.c.d/n`, `x:y::/n`, or a single address (a /32 or /128). Null when malformed. */
export function parseCidr(text: string): ParsedCidr | null {
  if (typeof text !== 'string' || text.length > 64) return null;
  const slash = text.indexOf('/');
  const addr = slash === -1 ? text : text.slice(0, slash);
  const bitsText = slash === -1 ? null : text.slice(slash + 1);
  if (bitsText !== null && !/^(0|[1-9][0-9]{0,2})$/.test(bitsText)) return null;
  const v4 = ipv4ToInt(addr);
  if (v4 >= 0) {
    const bits = bitsText === null ? 32 : Number(bitsText);
    if (bits > 32) return null;
    return { family: 4, bits, net: (v4 & mask4(bits)) >>> 0 };
  }
  const bytes = parseIpv6(addr);
  if (bytes === null) return null;
  const bits = bitsText === null ? 128 : Number(bitsText);
  if (bits > 128) return null;
  const m = mappedV4(bytes);
  if (m >= 0 && bits >= 96) return { family: 4, bits: bits - 96, net: (m & mask4(bits - 96)) >>> 0 };
  return { family: 6, bits, net: masked6(bytes, bits) };
}

type V4Group = { mask: number; nets: Set<number> };
type V6Group = { bits: number; nets: Set<string> };

export type IpMatcher = {
  readonly size: number;
  /** Whether `address` (as the socket or X-Forwarded-For gives it) is in one of the CIDRs. */
  has(address: string): boolean;
};

/** Compiles CIDRs (already validated: malformed ones are skipped) into a matcher. */
export function compileCidrs(cidrs: readonly string[]): IpMatcher {
  const v4 = new Map<number, V4Group>();
  const v6 = new Map<number, V6Group>();
  let size = 0;
  for (const c of cidrs) {
    const p = parseCidr(c);
    if (p === null) continue;
    size++;
    if (p.family === 4) {
      let g = v4.get(p.bits);
      if (!g) v4.set(p.bits, (g = { mask: mask4(p.bits), nets: new Set() }));
      g.nets.add(p.net);
    } else {
      let g = v6.get(p.bits);
      if (!g) v6.set(p.bits, (g = { bits: p.bits, nets: new Set() }));
      g.nets.add(p.net);
    }
  }
  const groups4 = [...v4.values()];
  const groups6 = [...v6.values()];
  const match4 = (ip: number) => {
    for (let i = 0; i < groups4.length; i++) {
      const g = groups4[i]!;
      if (g.nets.has((ip & g.mask) >>> 0)) return true;
    }
    return false;
  };
  return {
    size,
    has(address: string): boolean {
      const ip = ipv4ToInt(address);
      if (ip >= 0) return groups4.length !== 0 && match4(ip);
      const bare = address.charCodeAt(0) === 91 ? address.slice(1, -1) : address;
      const zone = bare.indexOf('%');
      const bytes = parseIpv6(zone === -1 ? bare : bare.slice(0, zone));
      if (bytes === null) return false;
      const m = mappedV4(bytes);
      if (m >= 0) return groups4.length !== 0 && match4(m);
      for (let i = 0; i < groups6.length; i++) {
        const g = groups6[i]!;
        if (g.nets.has(masked6(bytes, g.bits))) return true;
      }
      return false;
    },
  };
}
