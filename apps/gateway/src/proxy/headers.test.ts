import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { buildForwardHeaders, filterResponseHeaders, forwardedFor, headerRecord, setHeaderInList } from './headers';

function fakeReq(raw: string[]): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) headers[raw[i]!.toLowerCase()] = raw[i + 1]!;
  return { rawHeaders: raw, headers } as unknown as IncomingMessage;
}

describe('buildForwardHeaders', () => {
  it('removes hop-by-hop headers, every header named in Connection, and the x-tollgate namespace', () => {
    const out = buildForwardHeaders(
      fakeReq([
        'Host',
        'a.localhost',
        'Connection',
        'keep-alive, X-Secret, x-tollgate-consumer',
        'X-Secret',
        's',
        'Keep-Alive',
        'timeout=5',
        'Transfer-Encoding',
        'chunked',
        'TE',
        'trailers',
        'Upgrade',
        'h2c',
        'Proxy-Authorization',
        'Basic x',
        'X-Tollgate-Consumer',
        'admin',
        'x-tollgate-anything',
        '1',
        'X-Forwarded-For',
        '6.6.6.6',
        'Forwarded',
        'for=6.6.6.6',
        'Accept',
        'a',
        'Accept',
        'b',
        'Authorization',
        'Bearer k',
      ]),
      { credentialHeader: 'authorization', remove: null },
    );
    expect(out).toEqual(['accept', 'a', 'accept', 'b']);
  });

  it('applies route removals', () => {
    expect(buildForwardHeaders(fakeReq(['Cookie', 'c', 'Accept', 'a']), { credentialHeader: null, remove: ['cookie'] })).toEqual([
      'accept',
      'a',
    ]);
  });
});

describe('filterResponseHeaders', () => {
  const raw = (list: string[]) => list.map((v) => Buffer.from(v, 'latin1'));

  it('drops hop-by-hop and Connection-named headers from upstream responses, keeping repeats in order', () => {
    const out = filterResponseHeaders(
      raw([
        'Connection',
        'close, X-Internal',
        'X-Internal',
        '1',
        'Keep-Alive',
        'x',
        'Transfer-Encoding',
        'chunked',
        'Content-Type',
        'a',
        'Set-Cookie',
        'a',
        'set-cookie',
        'b',
      ]),
      null,
      false,
    );
    expect(out).toEqual(['content-type', 'a', 'set-cookie', 'a', 'set-cookie', 'b']);
  });

  it("drops the upstream's X-Request-Id always and its rate-limit headers when the gateway sets its own", () => {
    const list = raw(['X-Request-Id', 'up', 'RateLimit', 'r', 'X-RateLimit-Remaining', '3', 'ETag', '"e"']);
    expect(filterResponseHeaders(list, null, true)).toEqual(['etag', '"e"']);
    expect(filterResponseHeaders(list, null, false)).toEqual(['ratelimit', 'r', 'x-ratelimit-remaining', '3', 'etag', '"e"']);
  });

  it('removes what a route transform names, and decodes values as latin1', () => {
    expect(
      filterResponseHeaders([Buffer.from('Server'), Buffer.from('x'), Buffer.from('X-Name'), Buffer.from([0x63, 0xe9])], ['server'], false),
    ).toEqual(['x-name', 'c\u00e9']);
  });
});

describe('setHeaderInList / headerRecord', () => {
  it('replaces every earlier value of a name and groups repeats for the cache rules', () => {
    const list = ['a', '1', 'b', '2', 'a', '3'];
    setHeaderInList(list, 'a', '4');
    expect(list).toEqual(['b', '2', 'a', '4']);
    expect(headerRecord(['set-cookie', 'x', 'vary', 'accept', 'set-cookie', 'y'])).toEqual({ 'set-cookie': ['x', 'y'], vary: 'accept' });
  });
});

describe('forwardedFor', () => {
  it('appends to a trusted chain and replaces an untrusted one', () => {
    expect(forwardedFor('1.1.1.1', '10.0.0.1', true)).toBe('1.1.1.1, 10.0.0.1');
    expect(forwardedFor('1.1.1.1', '10.0.0.1', false)).toBe('10.0.0.1');
    expect(forwardedFor(undefined, '10.0.0.1', true)).toBe('10.0.0.1');
  });
});
