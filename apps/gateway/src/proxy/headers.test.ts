import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { buildForwardHeaders, filterResponseHeaders, forwardedFor } from './headers';

function fakeReq(raw: string[]): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) headers[raw[i]!.toLowerCase()] = raw[i + 1]!;
  return { rawHeaders: raw, headers } as unknown as IncomingMessage;
}

describe('buildForwardHeaders', () => {
  it('removes hop-by-hop headers, every header named in Connection, and the x-tollgate namespace', () => {
    const out = buildForwardHeaders(
      fakeReq([
        'Host', 'a.localhost',
        'Connection', 'keep-alive, X-Secret, x-tollgate-consumer',
        'X-Secret', 's',
        'Keep-Alive', 'timeout=5',
        'Transfer-Encoding', 'chunked',
        'TE', 'trailers',
        'Upgrade', 'h2c',
        'Proxy-Authorization', 'Basic x',
        'X-Tollgate-Consumer', 'admin',
        'x-tollgate-anything', '1',
        'X-Forwarded-For', '6.6.6.6',
        'Forwarded', 'for=6.6.6.6',
        'Accept', 'a', 'Accept', 'b',
        'Authorization', 'Bearer k',
      ]),
      { credentialHeader: 'authorization', remove: null },
    );
    expect(out).toEqual(['accept', 'a', 'accept', 'b']);
  });

  it('applies route removals', () => {
    expect(buildForwardHeaders(fakeReq(['Cookie', 'c', 'Accept', 'a']), { credentialHeader: null, remove: ['cookie'] })).toEqual(['accept', 'a']);
  });
});

describe('filterResponseHeaders', () => {
  it('drops hop-by-hop and Connection-named headers from upstream responses', () => {
    const out = filterResponseHeaders({ connection: 'close, x-internal', 'x-internal': '1', 'keep-alive': 'x', 'transfer-encoding': 'chunked', 'content-type': 'a', 'set-cookie': ['a', 'b'] }, null);
    expect(out).toEqual({ 'content-type': 'a', 'set-cookie': ['a', 'b'] });
  });
});

describe('forwardedFor', () => {
  it('appends to a trusted chain and replaces an untrusted one', () => {
    expect(forwardedFor('1.1.1.1', '10.0.0.1', true)).toBe('1.1.1.1, 10.0.0.1');
    expect(forwardedFor('1.1.1.1', '10.0.0.1', false)).toBe('10.0.0.1');
    expect(forwardedFor(undefined, '10.0.0.1', true)).toBe('10.0.0.1');
  });
});
