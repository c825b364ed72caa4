import { describe, expect, it } from 'vitest';
import { formatTraceparent, parseTraceparent, parseTracestate } from './traceparent';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('parseTraceparent', () => {
  it('accepts a version 00 header and keeps its flags', () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`)).toEqual({ traceId: TRACE, spanId: SPAN, flags: 1 });
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-00`)).toEqual({ traceId: TRACE, spanId: SPAN, flags: 0 });
  });

  it('accepts a later version with more fields, keeping only the sampled bit', () => {
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-03-whatever-comes-next`)).toEqual({ traceId: TRACE, spanId: SPAN, flags: 1 });
    expect(parseTraceparent(`01-${TRACE}-${SPAN}-00`)).toEqual({ traceId: TRACE, spanId: SPAN, flags: 0 });
  });

  it('ignores hostile and malformed values whole', () => {
    const bad = [
      undefined,
      '',
      'garbage',
      `ff-${TRACE}-${SPAN}-01`, // version ff is forbidden
      `00-${'0'.repeat(32)}-${SPAN}-01`, // all-zero trace id
      `00-${TRACE}-${'0'.repeat(16)}-01`, // all-zero span id
      `00-${TRACE.toUpperCase()}-${SPAN}-01`, // upper case hex
      `00-${TRACE}-${SPAN}-01-extra`, // version 00 has nothing after the flags
      `00-${TRACE}-${SPAN}-0x`,
      `0g-${TRACE}-${SPAN}-01`,
      `00_${TRACE}_${SPAN}_01`,
      `00-${TRACE.slice(1)}-${SPAN}0-01`,
      `cc-${TRACE}-${SPAN}-01x`, // a later version's next field must start with a dash
      `cc-${TRACE}-${SPAN}-01-${'a'.repeat(300)}`, // overlong
      `00-${TRACE}-${SPAN}-01, 00-${TRACE}-${SPAN}-01`, // two headers joined
      [`00-${TRACE}-${SPAN}-01`, `00-${TRACE}-${SPAN}-01`],
      ` 00-${TRACE}-${SPAN}-01`,
    ];
    for (const value of bad) expect(parseTraceparent(value), String(value)).toBeNull();
  });

  it('formats a version 00 header with only the sampled flag', () => {
    expect(formatTraceparent(TRACE, SPAN, 1)).toBe(`00-${TRACE}-${SPAN}-01`);
    expect(formatTraceparent(TRACE, SPAN, 0)).toBe(`00-${TRACE}-${SPAN}-00`);
    expect(formatTraceparent(TRACE, SPAN, 3)).toBe(`00-${TRACE}-${SPAN}-01`);
  });
});

describe('parseTracestate', () => {
  it('keeps a valid list, trimmed and joined', () => {
    expect(parseTracestate('rojo=00f067aa0ba902b7, congo=t61rcWkgMzE')).toBe('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
    expect(parseTracestate('tenant@vendor=x,,a*b/c_d-e=1')).toBe('tenant@vendor=x,a*b/c_d-e=1');
    expect(parseTracestate(['a=1', 'b=2'])).toBe('a=1,b=2');
  });

  it('drops the whole header when any member is invalid, repeated, too many or too long', () => {
    const bad = [
      undefined,
      '',
      ',',
      'novalue',
      '=value',
      'Upper=1',
      'a=1,a=2',
      'a=has,comma', // the comma makes "comma" a member without '='
      'a=\u00e9',
      'a=x\ty',
      'a=b=c',
      Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(','),
      `a=${'x'.repeat(600)}`,
      `a=${'x'.repeat(257)}`,
    ];
    for (const value of bad) expect(parseTracestate(value), String(value).slice(0, 40)).toBeNull();
  });
});
