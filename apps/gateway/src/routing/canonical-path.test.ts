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

  it.each([
    ['/p;x/get', 'path parameter'],
    ['/p/v1;x/x', 'path parameter'],
    ['/p/..;/open/get', 'path parameter'],
    ['/p/a%3bb', 'encoded path parameter'],
    ['/p/a/%252e%252e/get', 'double-encoded dot'],
    ['/p/a%252fb', 'double-encoded slash'],
    ['/p/a%25252e', 'triple-encoded'],
    ['/p/a/%25%32%65%25%32%65/get', 'double encoding assembled from decoded unreserved bytes'],
    ['/p/a/%25%32e', 'half-encoded double encoding'],
    ['/p/%c0%ae%c0%ae/x', 'overlong UTF-8 dot'],
    ['/p/%e0%80%ae/x', 'three-byte overlong dot'],
    ['/p/%c0%af', 'overlong slash'],
    ['/p/%ef%bc%8e%ef%bc%8e/x', 'fullwidth dots'],
    ['/p/%e2%80%a4%e2%80%a4/x', 'one dot leaders'],
    ['/%ef%bd%90/get', 'fullwidth p'],
    ['/p/%c3', 'truncated UTF-8'],
    ['/p/%ed%a0%80', 'UTF-16 surrogate'],
  ])('refuses %s (%s)', (raw) => {
    expect(canonicalizeTarget(raw).ok).toBe(false);
  });

  it('keeps a lone %25 (a literal percent sign) and escaped non-ASCII that stays non-ASCII', () => {
    expect(ok('/a/100%25').path).toBe('/a/100%25');
    expect(ok('/a/100%25-off').path).toBe('/a/100%25-off');
    expect(ok('/a/%25zz').path).toBe('/a/%25zz');
    expect(ok('/a/%e6%97%a5%e6%9c%ac').path).toBe('/a/%E6%97%A5%E6%9C%AC');
    expect(ok('/a?x=%252e;y').query).toBe('x=%252e;y');
  });
});
