/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) headers, parsed strictly: a header
 * that breaks any rule is ignored as a whole, never repaired, so a hostile client can't make the
 * gateway record or forward something it did not check. No dependency: the gateway reads these
 * before it knows whether a request is sampled.
 */
export type TraceParent = {
  traceId: string;
  spanId: string;
  /** The trace-flags byte (bit 0 = sampled). */
  flags: number;
};

/** Longest traceparent looked at (a future version may append fields; 55 chars today). */
export const MAX_TRACEPARENT_LENGTH = 256;
/** Longest tracestate kept: the 512 characters the spec asks every vendor to propagate. */
export const MAX_TRACESTATE_LENGTH = 512;
/** Most list members a tracestate may have. */
export const MAX_TRACESTATE_MEMBERS = 32;

const HEX = /^[0-9a-f]+$/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

/** The header's trace id, parent span id and flags; null when absent or invalid in any way. */
export function parseTraceparent(header: string | string[] | undefined): TraceParent | null {
  // Two traceparent headers: the spec says to discard both.
  if (typeof header !== 'string') return null;
  const len = header.length;
  if (len < 55 || len > MAX_TRACEPARENT_LENGTH) return null;
  if (header[2] !== '-' || header[35] !== '-' || header[52] !== '-') return null;
  const version = header.slice(0, 2);
  if (!HEX.test(version) || version === 'ff') return null;
  // Version 00 is exactly 55 characters; a later version may carry more after another dash.
  if (version === '00' ? len !== 55 : len > 55 && header[55] !== '-') return null;
  const traceId = header.slice(3, 35);
  const spanId = header.slice(36, 52);
  const flags = header.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(spanId) || !HEX.test(flags)) return null;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
  // A later version's flags may use bits this one doesn't know: only "sampled" is carried on.
  return { traceId, spanId, flags: version === '00' ? parseInt(flags, 16) : parseInt(flags, 16) & 1 };
}

export function formatTraceparent(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-${flags & 1 ? '01' : '00'}`;
}

const SIMPLE_KEY = /^[a-z][_0-9a-z\-*/]{0,255}$/;
const TENANT_KEY = /^[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13}$/;
// Printable ASCII except ',' and '=', at most 256, not ending in a space.
const VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * The tracestate header, normalised (members joined by ','), or null when absent or invalid:
 * over 512 characters, over 32 members, a malformed or repeated key, a bad value. Invalid means
 * dropped whole, as the spec allows; it only travels with a traceparent that was accepted.
 */
export function parseTracestate(header: string | string[] | undefined): string | null {
  // Repeated tracestate headers are one list (RFC 9110 field combination).
  const raw = Array.isArray(header) ? header.join(',') : header;
  if (raw === undefined || raw.length === 0 || raw.length > MAX_TRACESTATE_LENGTH) return null;
  const members: string[] = [];
  const keys = new Set<string>();
  for (const part of raw.split(',')) {
    const member = part.trim();
    if (member === '') continue; // empty list members are allowed and ignored
    const eq = member.indexOf('=');
    if (eq <= 0) return null;
    const key = member.slice(0, eq);
    const value = member.slice(eq + 1);
    if (!(SIMPLE_KEY.test(key) || TENANT_KEY.test(key)) || !VALUE.test(value) || keys.has(key)) return null;
    keys.add(key);
    members.push(member);
    if (members.length > MAX_TRACESTATE_MEMBERS) return null;
  }
  return members.length ? members.join(',') : null;
}
