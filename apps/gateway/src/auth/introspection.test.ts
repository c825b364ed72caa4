import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IntrospectionPolicy } from '@tollgate/policy';
import { CACHE_ENTRIES, createIntrospector, wellFormedToken } from './introspection';

// The cache's time rules, with a clock the test moves, against a real local endpoint.

let server: Server;
let endpoint: string;
let clock = 1_000_000_000_000;
const now = () => clock;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('token') ?? '';
      const nowS = Math.floor(clock / 1000);
      const exp = token.startsWith('short') ? nowS + 5 : nowS + 3600;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify(token.startsWith('no') ? { active: false } : { active: true, exp }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/i`;
});
afterAll(() => void server.close());

const policy = (over: Partial<IntrospectionPolicy> = {}): IntrospectionPolicy => ({
  endpoint,
  clientId: 'c',
  clientSecret: 's',
  cacheMaxTtlSeconds: 60,
  requiredScopes: [],
  consumerClaim: null,
  ...over,
});

describe('introspection cache', () => {
  it('reuses an active answer until the max TTL, then asks again', async () => {
    const it = createIntrospector(policy(), true, now);
    expect((await it.introspect('long-1')).kind).toBe('active');
    clock += 59_000;
    expect(it.introspect('long-1')).toEqual(expect.objectContaining({ kind: 'active' }));
    clock += 2000;
    expect((await it.introspect('long-1')).kind).toBe('active');
    expect(it.calls).toBe(2);
  });

  it("never reuses an active answer past the token's exp, even within the max TTL", async () => {
    const it = createIntrospector(policy(), true, now);
    await it.introspect('short-1');
    clock += 4000;
    expect(it.introspect('short-1')).not.toBeInstanceOf(Promise);
    clock += 2000;
    expect(it.introspect('short-1')).toBeInstanceOf(Promise);
  });

  it('caches negative answers for the max TTL; a TTL of 0 caches nothing', async () => {
    const cached = createIntrospector(policy({ cacheMaxTtlSeconds: 10 }), true, now);
    await cached.introspect('no-1');
    expect(cached.introspect('no-1')).toEqual({ kind: 'inactive' });
    const uncached = createIntrospector(policy({ cacheMaxTtlSeconds: 0 }), true, now);
    await uncached.introspect('no-2');
    await uncached.introspect('no-2');
    expect(uncached.calls).toBe(2);
  });

  it('keeps at most its bound of answers, dropping the oldest', async () => {
    expect(CACHE_ENTRIES).toBe(10_000);
    const it = createIntrospector(policy(), true, now, 2);
    await it.introspect('long-a');
    await it.introspect('long-b');
    await it.introspect('long-c');
    expect(it.introspect('long-c')).not.toBeInstanceOf(Promise);
    expect(it.introspect('long-b')).not.toBeInstanceOf(Promise);
    expect(it.introspect('long-a')).toBeInstanceOf(Promise);
  });

  it('tells well-formed bearer tokens from hostile ones', () => {
    expect(wellFormedToken('abc.DEF-_~+/==')).toBe(true);
    expect(wellFormedToken('a'.repeat(5000))).toBe(false);
    expect(wellFormedToken('a b')).toBe(false);
    expect(wellFormedToken('a\u0000b')).toBe(false);
    expect(wellFormedToken('é')).toBe(false);
  });
});
