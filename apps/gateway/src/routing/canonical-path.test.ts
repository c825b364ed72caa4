import { describe, expect, it } from 'vitest';
import { canonicalizeTarget } from './canonical-path';

const ok = (raw: string) => {
  const r = canonicalizeTarget(raw);
  if (!r.ok) throw new Error(`expected ${raw} to be accepted: ${r.reason}`);
  return r;
};

describe('canonicalizeTarget', () => {
  it('passes ordinary paths and queries through unchanged', () => {
    expect(ok('/')).toEqual({ ok: true, path: '/', query: '' });
    expect(ok('/a/b-c_d.e~f')).toEqual({ ok: true, path: '/a/b-c_d.e~f', query: '' });
    expect(ok('/a/b/?x=1&y=%20')).toEqual({ ok: true, path: '/a/b/', query: 'x=1&y=%20' });
    expect(ok('/.well-known/x').path).toBe('/.well-known/x');
    expect(ok('/a/..b/c.').path).toBe('/a/..b/c.');
  });

  it('decodes escaped unreserved characters and upper-cases other escapes', () => {
    expect(ok('/%61%62c').path).toBe('/abc');
    expect(ok('/a%2db').path).toBe('/a-b');
    expect(ok('/a%3ab%3F').path).toBe('/a%3Ab%3F');
    expect(ok('/caf%c3%a9').path).toBe('/caf%C3%A9');
  });

  it.each([
    ['/a/../b', 'dot'],
    ['/a/./b', 'dot'],
    ['/..', 'dot'],
    ['/a/..', 'dot'],
    ['/a/%2e%2e/b', 'dot'],
    ['/a/%2E%2E/b', 'dot'],
    ['/a/.%2e/b', 'dot'],
    ['/a/%2e./b', 'dot'],
    ['/a/%2e/b', 'dot'],
    ['/a%2fb', 'slash'],
    ['/a%2Fb', 'slash'],
    ['/a%5cb', 'slash'],
    ['/a%5Cb', 'slash'],
    ['/a\\b', 'backslash'],
    ['//a', 'empty'],
    ['/a//b', 'empty'],
    ['/a/b//', 'empty'],
    ['/a%00b', 'control'],
    ['/a%0d%0ab', 'control'],
    ['/a%7f', 'control'],
    ['/a\u0000b', 'control'],
    ['/a\tb', 'control'],
    ['/a b', 'control'],
    ['/caf\u00e9', 'non-ASCII'],
    ['/a%zz', 'malformed'],
    ['/a%4', 'truncated'],
    ['/a%', 'truncated'],
    ['/a#frag', 'fragment'],
    ['http://evil/a', 'start'],
    ['*', 'start'],
    ['', 'start'],
  ])('refuses %s (%s)', (raw) => {
    expect(canonicalizeTarget(raw).ok).toBe(false);
  });

  it('refuses control characters in the query', () => {
    expect(canonicalizeTarget('/a?x=\u0001').ok).toBe(false);
    expect(canonicalizeTarget('/a?x=1#y').ok).toBe(false);
  });

  it('does not double-decode: %252e stays an escape, not a dot segment', () => {
    expect(ok('/a/%252e%252e/b').path).toBe('/a/%252e%252e/b');
  });
});
