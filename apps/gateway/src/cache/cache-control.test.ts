import { describe, expect, it } from 'vitest';
import { bypassReason, decideStore, etagMatches, parseCacheControl, parseVary } from './cache-control';

const NOW = Date.parse('2026-01-01T00:00:00Z');

describe('parseCacheControl', () => {
  it('reads directives, values, quoted values with commas, first occurrence wins', () => {
    const d = parseCacheControl('Public, MAX-AGE=60, private="set-cookie, x-a", max-age=5,, s-maxage = 10');
    expect(d.get('public')).toBe(true);
    expect(d.get('max-age')).toBe('60');
    expect(d.get('private')).toBe('set-cookie, x-a');
    expect(d.get('s-maxage')).toBe('10');
  });

  it('survives hostile input', () => {
    expect(parseCacheControl(',,,="",=,"unterminated').size).toBeLessThan(5);
    const long = 'a,'.repeat(50_000);
    expect(parseCacheControl(long).size).toBe(1);
  });
});

describe('decideStore', () => {
  it('stores a cacheable status for the route TTL', () => {
    expect(decideStore(200, {}, 60, NOW)).toEqual({ store: true, ttlMs: 60_000, vary: [], initialAgeSeconds: 0 });
    expect(decideStore(404, {}, 5, NOW).store).toBe(true);
  });

  it.each([201, 206, 302, 304, 400, 401, 403, 429, 500, 502, 503])('never stores status %i', (status) => {
    expect(decideStore(status, {}, 60, NOW)).toMatchObject({ store: false, reason: 'status' });
  });

  it.each([
    ['no-store', 'no-store'],
    ['private', 'private'],
    ['private="x-user"', 'private'],
    ['no-cache', 'no-cache'],
    ['max-age=0', 'stale'],
    ['max-age=abc', 'max-age'],
  ])('refuses Cache-Control: %s', (cc, reason) => {
    expect(decideStore(200, { 'cache-control': cc }, 60, NOW)).toMatchObject({ store: false, reason });
  });

  it('never stores a response that sets a cookie', () => {
    expect(decideStore(200, { 'set-cookie': ['a=b'], 'cache-control': 'public, max-age=60' }, 60, NOW)).toMatchObject({
      store: false,
      reason: 'set-cookie',
    });
  });

  it('lets the upstream shorten but never lengthen the route TTL; s-maxage wins over max-age', () => {
    expect(decideStore(200, { 'cache-control': 'max-age=10' }, 60, NOW)).toMatchObject({ ttlMs: 10_000 });
    expect(decideStore(200, { 'cache-control': 'max-age=3600' }, 60, NOW)).toMatchObject({ ttlMs: 60_000 });
    expect(decideStore(200, { 'cache-control': 'max-age=30, s-maxage=5' }, 60, NOW)).toMatchObject({ ttlMs: 5_000 });
    expect(decideStore(200, { 'cache-control': 'max-age=30', age: '25' }, 60, NOW)).toMatchObject({ ttlMs: 5_000, initialAgeSeconds: 25 });
    expect(decideStore(200, { 'cache-control': 's-maxage=99999999999999999999' }, 60, NOW)).toMatchObject({ ttlMs: 60_000 });
  });

  it('uses Expires when there is no max-age, and an invalid Expires means expired', () => {
    const date = new Date(NOW).toUTCString();
    expect(decideStore(200, { expires: new Date(NOW + 20_000).toUTCString(), date }, 60, NOW)).toMatchObject({ ttlMs: 20_000 });
    expect(decideStore(200, { expires: '0' }, 60, NOW)).toMatchObject({ store: false });
    expect(decideStore(200, { pragma: 'no-cache' }, 60, NOW)).toMatchObject({ store: false });
  });

  it('refuses Vary: * and adds Accept-Encoding for encoded bodies', () => {
    expect(decideStore(200, { vary: 'Accept, *' }, 60, NOW)).toMatchObject({ store: false, reason: 'vary-star' });
    expect(decideStore(200, { vary: 'X-B, accept-language', 'content-encoding': 'gzip' }, 60, NOW)).toMatchObject({
      vary: ['accept-encoding', 'accept-language', 'x-b'],
    });
  });
});

describe('request rules', () => {
  it('bypasses forwarded credentials, cookies, ranges and bodies', () => {
    expect(bypassReason({}, false, false)).toBeNull();
    expect(bypassReason({}, true, false)).toBe('authorization');
    expect(bypassReason({}, false, true)).toBe('cookie');
    expect(bypassReason({ range: 'bytes=0-1' }, false, false)).toBe('range');
    expect(bypassReason({ 'content-length': '3' }, false, false)).toBe('body');
    expect(bypassReason({ 'transfer-encoding': 'chunked' }, false, false)).toBe('body');
  });

  it('parses Vary and compares ETags weakly', () => {
    expect(parseVary('Accept, ACCEPT ,x-a')).toEqual(['accept', 'x-a']);
    expect(etagMatches('W/"a", "b"', '"b"')).toBe(true);
    expect(etagMatches('"a"', 'W/"a"')).toBe(true);
    expect(etagMatches('"c"', '"a"')).toBe(false);
    expect(etagMatches('*', '"a"')).toBe(true);
  });
});
