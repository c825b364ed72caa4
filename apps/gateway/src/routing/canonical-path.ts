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
 * characters are decoded and other escapes upper-cased; everything some upstream could read as
 * a different path is refused (docs/adr/0019-one-path-for-routing-and-forwarding.md):
 * - dot segments (raw or encoded, any case), encoded `/` or `\`, raw `\`, empty segments (`//`);
 * - path parameters: `;` raw or as `%3B` (Tomcat, Jetty and Spring drop `;…` from a segment, so
 *   `/p;x/get` is `/p/get` to them, and `/..;/` is `/../`);
 * - `%25` followed by two hex digits: a second decoding (by a proxy or framework that decodes
 *   again) would turn it into another escape, e.g. `%252e` into `.`;
 * - escaped non-ASCII that is not valid UTF-8 (overlong forms like `%C0%AE` for `.`), or whose
 *   compatibility normalisation (NFKC) contains ASCII (`%EF%BC%8E`, a fullwidth `.`, is `.` to
 *   a normalising server, and a fullwidth `p` is `p`);
 * - NUL and every other control or raw non-ASCII byte.
 * Query strings are passed through, minus control characters.
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
    if (c <= 32 || c >= 127 || c === 37 /* % */ || c === 92 /* \ */ || c === 35 /* # */ || c === 59 /* ; */) {
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

/** The byte of the escape `%XX` at `i` (before `end`), or -1 when it is truncated or not hex. */
function escapeAt(raw: string, i: number, end: number): number {
  if (i + 2 >= end) return -1;
  const h = hexValue(raw.charCodeAt(i + 1));
  const l = hexValue(raw.charCodeAt(i + 2));
  return h < 0 || l < 0 ? -1 : h * 16 + l;
}

const DOUBLE_ESCAPE = /%25[0-9A-Fa-f]{2}/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Why escaped non-ASCII bytes are refused, or null: invalid or overlong UTF-8, or text that normalises into ASCII. */
function checkEscapedText(bytes: number[]): string | null {
  let text: string;
  try {
    text = strictUtf8.decode(Uint8Array.from(bytes));
  } catch {
    return 'escaped bytes in path are not valid UTF-8 (overlong or truncated)';
  }
  const folded = text.normalize('NFKC');
  for (let k = 0; k < folded.length; k++) {
    if (folded.charCodeAt(k) < 0x80) return 'escaped character in path normalises to ASCII (e.g. a fullwidth or one-dot-leader dot)';
  }
  return null;
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
      // Checked on the output, so `%25%32%65` (which becomes `%252e`) is caught too.
      if (segment.includes('%25') && DOUBLE_ESCAPE.test(segment)) return fail('double-encoded escape (%25XX) in path');
      out += segment;
      if (i !== end) out += '/';
      segment = '';
      continue;
    }
    if (c <= 32 || c >= 127) return fail('control, space or non-ASCII character in path');
    if (c === 92) return fail('backslash in path');
    if (c === 35) return fail('fragment in request target');
    if (c === 59) return fail('path parameter (;) in path');
    if (c === 37) {
      const byte = escapeAt(raw, i, end);
      if (byte < 0) return fail('malformed or truncated percent-escape in path');
      if (byte === 0x2f || byte === 0x5c) return fail('encoded slash or backslash in path');
      if (byte < 0x20 || byte === 0x7f) return fail('encoded control character in path');
      if (byte === 0x3b) return fail('path parameter (;) in path');
      if (byte >= 0x80) {
        // A run of escaped bytes: one or more UTF-8 characters.
        const bytes: number[] = [];
        let j = i;
        for (let b = byte; b >= 0x80; b = j < end && raw.charCodeAt(j) === 37 ? escapeAt(raw, j, end) : -1) {
          bytes.push(b);
          segment += '%' + HEX[b >> 4] + HEX[b & 15];
          j += 3;
        }
        const bad = checkEscapedText(bytes);
        if (bad !== null) return fail(bad);
        i = j - 1;
        continue;
      }
      if (isUnreserved(byte)) segment += String.fromCharCode(byte);
      else segment += '%' + HEX[byte >> 4] + HEX[byte & 15];
      i += 2;
      continue;
    }
    segment += raw[i];
  }
  return out;
}
