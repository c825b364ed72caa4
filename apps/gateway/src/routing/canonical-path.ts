/**
 * The one canonical form of a request target, used for API/route matching, limiter subjects
 * and the URL forwarded upstream. Ambiguous input is refused rather than repaired: a gateway
 * that "fixes" `/a/%2e%2e/b` and an upstream that decodes it differently disagree about which
 * resource was authorised (the classic path-confusion bypass).
 */
export type CanonicalTarget = { ok: true; path: string; query: string } | { ok: false; reason: string };

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 65 && c <= 70) return c - 55; // A-F
  if (c >= 97 && c <= 102) return c - 87; // a-f
  return -1;
}

function isUnreserved(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46 || c === 95 || c === 126;
}

const fail = (reason: string): CanonicalTarget => ({ ok: false, reason });

/**
 * Canonicalises an origin-form request target (`/path?query`). Percent-encoded unreserved
 * characters are decoded and other escapes upper-cased; dot segments (raw or encoded, any
 * case), encoded `/` or `\`, raw `\`, empty segments (`//`), NUL and every other control or
 * non-ASCII byte are refused. Query strings are passed through, minus control characters.
 */
export function canonicalizeTarget(rawUrl: string): CanonicalTarget {
  const len = rawUrl.length;
  if (len === 0 || rawUrl.charCodeAt(0) !== 47) return fail('request target must start with /');
  let q = rawUrl.indexOf('?');
  if (q === -1) q = len;

  // Fast path: most paths contain only safe characters and no suspicious sequences.
  let simple = true;
  let prev = 0;
  for (let i = 0; i < q; i++) {
    const c = rawUrl.charCodeAt(i);
    if (c <= 32 || c >= 127 || c === 37 /* % */ || c === 92 /* \ */ || c === 35 /* # */) {
      simple = false;
      break;
    }
    if (c === 47 && prev === 47) return fail('empty path segment');
    if (c === 46 && (prev === 47 || prev === 46)) {
      simple = false;
      break;
    }
    prev = c;
  }

  let path: string;
  if (simple) {
    path = q === len ? rawUrl : rawUrl.slice(0, q);
  } else {
    const res = canonicalizePathSlow(rawUrl, q);
    if (typeof res !== 'string') return res;
    path = res;
  }

  let query = '';
  if (q < len) {
    for (let i = q + 1; i < len; i++) {
      const c = rawUrl.charCodeAt(i);
      if (c <= 32 || c >= 127 || c === 35) return fail('invalid character in query');
    }
    query = rawUrl.slice(q + 1);
  }
  return { ok: true, path, query };
}

function canonicalizePathSlow(raw: string, end: number): string | CanonicalTarget {
  // Index 0 is the leading '/', already checked.
  let out = '/';
  let segment = '';
  for (let i = 1; i <= end; i++) {
    const c = i === end ? 47 : raw.charCodeAt(i);
    if (c === 47) {
      if (segment === '.' || segment === '..') return fail('dot segment in path');
      if (segment === '' && i !== end) return fail('empty path segment');
      out += segment;
      if (i !== end) out += '/';
      segment = '';
      continue;
    }
    if (c <= 32 || c >= 127) return fail('control, space or non-ASCII character in path');
    if (c === 92) return fail('backslash in path');
    if (c === 35) return fail('fragment in request target');
    if (c === 37) {
      if (i + 2 >= end) return fail('truncated percent-escape in path');
      const h = hexValue(raw.charCodeAt(i + 1));
      const l = hexValue(raw.charCodeAt(i + 2));
      if (h < 0 || l < 0) return fail('malformed percent-escape in path');
      const byte = h * 16 + l;
      if (byte === 0x2f || byte === 0x5c) return fail('encoded slash or backslash in path');
      if (byte < 0x20 || byte === 0x7f) return fail('encoded control character in path');
      if (isUnreserved(byte)) segment += String.fromCharCode(byte);
      else segment += '%' + HEX[h] + HEX[l];
      i += 2;
      continue;
    }
    segment += raw[i];
  }
  return out;
}
