import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace, type ApiPolicy, type Keyspace, type PlanPolicy, type PolicySnapshot } from '@tollgate/policy';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testRedis, uniquePrefix, waitFor } from '../harness';
import {
  issueKey,
  makeApi,
  makePlan,
  makeSnapshot,
  publishSnapshot,
  startUpstream,
  type IssuedKey,
  type Upstream,
  testGatewayConfig,
  queuedUsageEvents,
  listenAdmin,
} from './fixtures';

const MAX_ENTRY = 4096;
let redis: Redis;
let ks: Keyspace;
let gw: Gateway;
let port: number;
let upstream: Upstream;
let snapshot: PolicySnapshot;
let other: PolicySnapshot;
let host: string;
let keyA: IssuedKey;
let keyB: IssuedKey;
let quotaKey: IssuedKey;
let otherKey: IssuedKey;
let cached: ApiPolicy;
let plan: PlanPolicy;
let admin: Awaited<ReturnType<typeof listenAdmin>>;

/** Upstream steered by the query: cc=, cookie=1, vary=, size=, chunked=1, status=, etag=, delay= (ms). Counts calls per path+query. */
function upstreamHandler() {
  let n = 0;
  return startUpstream((req, res) => {
    n++;
    const u = new URL(req.url!, 'http://x');
    const q = u.searchParams;
    const delay = Number(q.get('delay') ?? 0);
    // A slow upstream: the answer leaves `delay` ms later (the coalescing tests overlap requests in it).
    if (delay > 0) setTimeout(() => respond(req, res, q), delay);
    else respond(req, res, q);
  });
  function respond(req: IncomingMessage, res: ServerResponse, q: URLSearchParams) {
    const headers: Record<string, string | string[]> = { 'content-type': 'application/json' };
    if (q.get('cc')) headers['cache-control'] = q.get('cc')!;
    if (q.get('cookie')) headers['set-cookie'] = ['session=abc; HttpOnly'];
    if (q.get('vary')) headers.vary = q.get('vary')!;
    if (q.get('etag')) headers.etag = `"${q.get('etag')}"`;
    const status = Number(q.get('status') ?? 200);
    const size = Number(q.get('size') ?? 0);
    if (size > 0) {
      headers['content-type'] = 'application/octet-stream';
      if (!q.get('chunked')) headers['content-length'] = String(size);
      res.writeHead(status, headers);
      const chunk = Buffer.alloc(1024, 97);
      let left = size;
      while (left > 0) {
        res.write(chunk.subarray(0, Math.min(1024, left)));
        left -= 1024;
      }
      res.end();
      return;
    }
    res.writeHead(status, headers);
    res.end(
      JSON.stringify({
        n,
        // The tail of long URLs only, so a response to a huge query still fits the entry limit.
        url: req.url!.length > 200 ? req.url!.slice(-20) : req.url,
        consumer: req.headers['x-tollgate-consumer'] ?? null,
        tenant: req.headers['x-tollgate-tenant'] ?? null,
        lang: req.headers['accept-language'] ?? null,
      }),
    );
  }
}

async function call(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; key?: IssuedKey | null; host?: string; body?: string } = {},
) {
  const key = opts.key === undefined ? keyA : opts.key;
  const res = await request(`http://127.0.0.1:${port}${url}`, {
    method: (opts.method ?? 'GET') as 'GET',
    headers: { host: opts.host ?? host, ...(key ? { 'x-api-key': key.key } : {}), ...opts.headers },
    body: opts.body,
  });
  const buf = Buffer.from(await res.body.arrayBuffer());
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON body of any shape, asserted field by field
  let json: any = null;
  try {
    json = JSON.parse(buf.toString('utf8'));
  } catch {
    json = null;
  }
  return { status: res.statusCode, headers: res.headers, body: buf, json };
}

const hits = (path: string) => upstream.requests.filter((r) => r.url === path).length;

beforeAll(async () => {
  redis = testRedis();
  const prefix = uniquePrefix('cache');
  ks = createKeyspace(prefix);
  upstream = await upstreamHandler();
  const route = (id: string, path: string, ttl: number, over: Partial<ApiPolicy['routes'][number]> = {}) => ({
    id,
    methods: [],
    path,
    timeoutMs: null,
    cacheTtlSeconds: ttl,
    transform: null,
    rateLimit: null,
    ...over,
  });
  cached = makeApi(upstream.url, {
    basePath: '/c',
    routes: [
      route('rte_short', '/short/*', 2),
      route('rte_nocache', '/live/*', 0),
      route('rte_limited', '/limited/*', 60, { rateLimit: { limit: 2, windowSeconds: 60, algorithm: 'fixed_window' } }),
      route('rte_tx', '/tx/*', 60, {
        transform: { responseHeaders: { remove: ['cache-control', 'set-cookie'], set: { 'x-added': 'yes' } } },
      }),
      route('rte_all', '/*', 60),
    ],
  });
  const anon = makeApi(upstream.url, { basePath: '/pub', authMode: 'none', routes: [route('rte_pub', '/*', 60)] });
  plan = makePlan([cached.id], { rateLimit: { limit: 10_000, windowSeconds: 60, algorithm: 'sliding_window' } });
  const quotaPlan = makePlan([cached.id], { slug: 'tiny', quota: { limit: 3, mode: 'hard_cap' } });
  snapshot = makeSnapshot([cached, anon], [plan, quotaPlan]);
  host = `${snapshot.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snapshot);
  keyA = await issueKey(redis, ks, snapshot.tenantId, plan);
  keyB = await issueKey(redis, ks, snapshot.tenantId, plan);
  quotaKey = await issueKey(redis, ks, snapshot.tenantId, quotaPlan);
  // A second tenant whose API has the same base path and upstream.
  const otherApi = makeApi(upstream.url, { basePath: '/c', routes: [route('rte_other', '/*', 60)] });
  const otherPlan = makePlan([otherApi.id]);
  other = makeSnapshot([otherApi], [otherPlan]);
  await publishSnapshot(redis, ks, other);
  otherKey = await issueKey(redis, ks, other.tenantId, otherPlan);

  gw = await createGateway(
    testGatewayConfig(prefix, { GATEWAY_REDIS_TIMEOUT_MS: '1000', GATEWAY_CACHE_MAX_ENTRY_BYTES: String(MAX_ENTRY) }),
  );
  ({ port } = await gw.listen());
  admin = await listenAdmin(gw);
});

afterAll(async () => {
  admin?.server.close();
  await gw?.shutdown();
  await upstream?.close();
  await redis?.quit();
});

describe('response cache: hits and misses', () => {
  it('serves the second GET from the cache with X-Cache and Age, without calling the upstream', async () => {
    const a = await call('/c/items/1?x=1');
    const b = await call('/c/items/1?x=1');
    expect(a.status).toBe(200);
    expect(a.headers['x-cache']).toBe('MISS');
    expect(b.status).toBe(200);
    expect(b.headers['x-cache']).toBe('HIT');
    expect(Number(b.headers.age)).toBeLessThanOrEqual(1);
    expect(b.json).toEqual(a.json);
    expect(b.headers['content-type']).toBe('application/json');
    expect(b.headers['x-request-id']).not.toBe(a.headers['x-request-id']);
    // Limit headers belong to this request, not to the stored one.
    expect(b.headers['x-ratelimit-remaining']).not.toBe(a.headers['x-ratelimit-remaining']);
    expect(hits('/items/1?x=1')).toBe(1);
  });

  it('answers HEAD from a stored GET (headers, no body) and never stores a HEAD response', async () => {
    await call('/c/head/1');
    const h = await call('/c/head/1', { method: 'HEAD' });
    expect(h.headers['x-cache']).toBe('HIT');
    expect(h.body.length).toBe(0);
    expect(Number(h.headers['content-length'])).toBeGreaterThan(0);
    const h1 = await call('/c/head/2', { method: 'HEAD' });
    const g1 = await call('/c/head/2');
    expect(h1.headers['x-cache']).toBe('MISS');
    expect(g1.headers['x-cache']).toBe('MISS');
    expect(hits('/head/2')).toBe(2);
  });

  it('treats a different query as a different resource', async () => {
    await call('/c/q?a=1&b=2');
    const swapped = await call('/c/q?b=2&a=1');
    expect(swapped.headers['x-cache']).toBe('MISS');
  });

  it('never caches POST (or other unsafe methods) and leaves cacheTtlSeconds=0 routes alone', async () => {
    const p1 = await call('/c/post', { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } });
    const p2 = await call('/c/post', { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } });
    expect(p1.headers['x-cache']).toBe('BYPASS');
    expect(p2.headers['x-cache']).toBe('BYPASS');
    expect(hits('/post')).toBe(2);
    await call('/c/live/1');
    const l = await call('/c/live/1');
    expect(l.headers['x-cache']).toBeUndefined();
    expect(hits('/live/1')).toBe(2);
  });

  it('expires an entry after the route TTL', async () => {
    const first = await call('/c/short/ttl');
    expect(first.headers['x-cache']).toBe('MISS');
    expect((await call('/c/short/ttl')).headers['x-cache']).toBe('HIT');
    const t0 = Date.now();
    await waitFor(async () => (await call('/c/short/ttl')).headers['x-cache'] === 'MISS', {
      timeoutMs: 5000,
      intervalMs: 100,
      what: 'the entry to expire',
    });
    expect(Date.now() - t0).toBeGreaterThan(1000);
    expect(hits('/short/ttl')).toBe(2);
  });

  it('lets the upstream shorten the TTL with max-age, never lengthen it', async () => {
    await call('/c/maxage?cc=max-age%3D2');
    expect((await call('/c/maxage?cc=max-age%3D2')).headers['x-cache']).toBe('HIT');
    await waitFor(async () => (await call('/c/maxage?cc=max-age%3D2')).headers['x-cache'] === 'MISS', {
      timeoutMs: 5000,
      intervalMs: 100,
      what: 'max-age to run out',
    });
    await call('/c/short/long?cc=max-age%3D3600');
    await waitFor(async () => (await call('/c/short/long?cc=max-age%3D3600')).headers['x-cache'] === 'MISS', {
      timeoutMs: 5000,
      intervalMs: 100,
      what: 'the route TTL to win',
    });
  });

  it('answers 304 to a matching If-None-Match on a hit', async () => {
    await call('/c/etag?etag=v1');
    const res = await call('/c/etag?etag=v1', { headers: { 'if-none-match': '"v1"' } });
    expect(res.status).toBe(304);
    expect(res.headers['x-cache']).toBe('HIT');
    expect(res.headers.etag).toBe('"v1"');
    const other = await call('/c/etag?etag=v1', { headers: { 'if-none-match': '"v0"' } });
    expect(other.status).toBe(200);
  });

  it('caches 204 and 404 but not 500 or 201', async () => {
    await call('/c/gone?status=404');
    expect((await call('/c/gone?status=404')).headers['x-cache']).toBe('HIT');
    await call('/c/empty?status=204');
    const empty = await call('/c/empty?status=204');
    expect(empty.status).toBe(204);
    expect(empty.headers['x-cache']).toBe('HIT');
    expect(empty.body.length).toBe(0);
    await call('/c/err?status=500');
    const e = await call('/c/err?status=500');
    expect(e.status).toBe(500);
    expect(e.headers['x-cache']).toBe('MISS');
    await call('/c/created?status=201');
    expect((await call('/c/created?status=201')).headers['x-cache']).toBe('MISS');
  });
});

describe('response cache: what is never stored', () => {
  it.each([
    ['no-store', '/c/ns?cc=no-store'],
    ['private', '/c/pv?cc=private%2C%20max-age%3D60'],
    ['no-cache', '/c/nc?cc=no-cache'],
    ['max-age=0', '/c/ma0?cc=max-age%3D0'],
    ['Set-Cookie', '/c/ck?cookie=1'],
    ['Vary: *', '/c/vs?vary=*'],
  ])('a response with %s', async (_label, url) => {
    const a = await call(url);
    const b = await call(url);
    expect(a.headers['x-cache']).toBe('MISS');
    expect(b.headers['x-cache']).toBe('MISS');
    expect(hits(url.slice(2))).toBe(2);
  });

  it('a personal response whose Cache-Control and Set-Cookie a route transform strips', async () => {
    for (const url of ['/c/tx/p?cc=private', '/c/tx/k?cookie=1']) {
      const a = await call(url);
      const b = await call(url);
      expect(a.headers['cache-control']).toBeUndefined();
      expect(a.headers['set-cookie']).toBeUndefined();
      expect(b.headers['x-cache']).toBe('MISS');
    }
    // The transform's own headers are part of what is stored.
    await call('/c/tx/ok');
    const hit = await call('/c/tx/ok');
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.headers['x-added']).toBe('yes');
  });

  it('a body larger than the entry limit streams through whole and is not kept (declared and chunked)', async () => {
    for (const url of [`/c/big?size=${MAX_ENTRY * 4}`, `/c/big?size=${MAX_ENTRY * 4}&chunked=1`]) {
      const a = await call(url);
      const b = await call(url);
      expect(a.body.length).toBe(MAX_ENTRY * 4);
      expect(b.body.length).toBe(MAX_ENTRY * 4);
      expect(b.headers['x-cache']).toBe('MISS');
    }
    const small = `/c/big?size=${MAX_ENTRY / 2}&chunked=1`;
    await call(small);
    const hit = await call(small);
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.body.length).toBe(MAX_ENTRY / 2);
  });

  it('requests that forward a cookie or credentials to the upstream bypass the cache', async () => {
    await call('/c/cookie', { headers: { cookie: 'a=1' } });
    const b = await call('/c/cookie', { headers: { cookie: 'a=1' } });
    expect(b.headers['x-cache']).toBe('BYPASS');
    await call('/pub/auth', { key: null, headers: { authorization: 'Basic dTpw' } });
    const c = await call('/pub/auth', { key: null, headers: { authorization: 'Basic dTpw' } });
    expect(c.headers['x-cache']).toBe('BYPASS');
    expect(hits('/cookie')).toBe(2);
    expect(hits('/auth')).toBe(2);
  });
});

describe('response cache: Vary', () => {
  it('keeps one variant per value of a Vary’d request header', async () => {
    const url = '/c/lang?vary=Accept-Language';
    const en = await call(url, { headers: { 'accept-language': 'en' } });
    const fr = await call(url, { headers: { 'accept-language': 'fr' } });
    const en2 = await call(url, { headers: { 'accept-language': 'en' } });
    const fr2 = await call(url, { headers: { 'accept-language': 'fr' } });
    expect(en.headers['x-cache']).toBe('MISS');
    expect(fr.headers['x-cache']).toBe('MISS');
    expect(en2.headers['x-cache']).toBe('HIT');
    expect(en2.json.lang).toBe('en');
    expect(fr2.headers['x-cache']).toBe('HIT');
    expect(fr2.json.lang).toBe('fr');
    expect((await call(url)).headers['x-cache']).toBe('MISS');
  });
});

describe('response cache: identity', () => {
  it('never serves one consumer a response cached for another', async () => {
    const a = await call('/c/me', { key: keyA });
    const b = await call('/c/me', { key: keyB });
    expect(a.json.consumer).toBe(keyA.record.consumerId);
    expect(b.headers['x-cache']).toBe('MISS');
    expect(b.json.consumer).toBe(keyB.record.consumerId);
    const a2 = await call('/c/me', { key: keyA });
    expect(a2.headers['x-cache']).toBe('HIT');
    expect(a2.json.consumer).toBe(keyA.record.consumerId);
  });

  it('never serves one tenant a response cached for another on the same path and upstream', async () => {
    await call('/c/shared', { key: keyA });
    const o = await call('/c/shared', { key: otherKey, host: `${other.tenantSlug}.localhost` });
    expect(o.headers['x-cache']).toBe('MISS');
    expect(o.json.tenant).toBe(other.tenantId);
  });

  it('authenticates before the cache: no key or a bad key never reaches a cached response', async () => {
    await call('/c/secret');
    const none = await call('/c/secret', { key: null });
    expect(none.status).toBe(401);
    expect(none.headers['x-cache']).toBeUndefined();
    const bad = await call('/c/secret', { key: null, headers: { 'x-api-key': 'tg_test_notavalidkey' } });
    expect(bad.status).toBe(401);
  });

  it('shares anonymous APIs’ responses between callers', async () => {
    await call('/pub/doc', { key: null });
    const again = await call('/pub/doc', { key: null, headers: { 'x-forwarded-for': '6.6.6.6' } });
    expect(again.headers['x-cache']).toBe('HIT');
  });
});

describe('response cache: limits and metering', () => {
  it('a hit still consumes quota, and its usage event says cacheHit', async () => {
    const r1 = await call('/c/quota', { key: quotaKey });
    const r2 = await call('/c/quota', { key: quotaKey });
    const r3 = await call('/c/quota', { key: quotaKey });
    const r4 = await call('/c/quota', { key: quotaKey });
    expect([r1, r2, r3].map((r) => r.headers['x-cache'])).toEqual(['MISS', 'HIT', 'HIT']);
    expect(r4.status).toBe(429);
    expect(r4.json.error.code).toBe('quota_exceeded');
    expect(hits('/quota')).toBe(1);
    const ids = [r1, r2].map((r) => r.headers['x-request-id'] as string);
    const events = await queuedUsageEvents(redis, ks, ids);
    expect(events[0]).toMatchObject({ cacheHit: false, status: 200, keyId: quotaKey.record.keyId, rejected: null });
    expect(events[0]!.upstreamLatencyMs).not.toBeNull();
    expect(events[1]).toMatchObject({
      cacheHit: true,
      status: 200,
      keyId: quotaKey.record.keyId,
      rejected: null,
      upstreamLatencyMs: null,
      answeredBy: 'upstream',
    });
    expect(events[1]!.bytesOut).toBeGreaterThan(0);
  });

  it('a route rate limit applies to hits', async () => {
    const a = await call('/c/limited/x');
    const b = await call('/c/limited/x');
    const c = await call('/c/limited/x');
    expect(a.headers['x-cache']).toBe('MISS');
    expect(b.headers['x-cache']).toBe('HIT');
    expect(c.status).toBe(429);
  });

  it('exposes hit/miss counters and size on /metrics', async () => {
    const text = await admin.metrics();
    expect(text).toMatch(/tollgate_gateway_cache_requests_total\{result="hit"\} [1-9]/);
    expect(text).toMatch(/tollgate_gateway_cache_requests_total\{result="miss"\} [1-9]/);
    expect(text).toMatch(/tollgate_gateway_cache_entries [1-9]/);
  });
});

describe('response cache: request coalescing', () => {
  it('concurrent misses for one URL reach the upstream once; the others are answered from that response', async () => {
    const url = '/c/coalesce/one?delay=150';
    const results = await Promise.all(Array.from({ length: 5 }, () => call(url)));
    expect(hits(url.slice(2))).toBe(1);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(new Set(results.map((r) => r.json.n)).size).toBe(1);
    expect(results.filter((r) => r.headers['x-cache'] === 'MISS')).toHaveLength(1);
    expect(results.filter((r) => r.headers['x-cache'] === 'HIT')).toHaveLength(4);
    const text = await admin.metrics();
    expect(text).toMatch(/tollgate_gateway_cache_requests_total\{result="coalesced"\} [4-9]/);
  });

  it('when the first response may not be stored, the waiters go to the upstream themselves', async () => {
    const url = '/c/coalesce/private?delay=100&cc=private';
    const results = await Promise.all(Array.from({ length: 3 }, () => call(url)));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(hits(url.slice(2))).toBe(3);
    expect(results.every((r) => r.headers['x-cache'] === 'MISS')).toBe(true);
  });

  it('different consumers never share a fill', async () => {
    const url = '/c/coalesce/mine?delay=100';
    const [a, b] = await Promise.all([call(url, { key: keyA }), call(url, { key: keyB })]);
    expect(a.json.consumer).toBe(keyA.record.consumerId);
    expect(b.json.consumer).toBe(keyB.record.consumerId);
    expect(hits(url.slice(2))).toBe(2);
  });
});

describe('response cache: invalidation and hostile input', () => {
  it('drops an API’s entries when a new policy version changes it', async () => {
    await call('/c/inv');
    expect((await call('/c/inv')).headers['x-cache']).toBe('HIT');
    const changed = { ...cached, timeouts: { ...cached.timeouts, requestMs: 9_000 } };
    const next = { ...snapshot, version: snapshot.version + 1, apis: [changed, ...snapshot.apis.slice(1)] };
    await publishSnapshot(redis, ks, next);
    await waitFor(() => gw.store.table.tenants.get(snapshot.tenantId)?.version === next.version, { what: 'the new version to load' });
    expect((await call('/c/inv')).headers['x-cache']).toBe('MISS');
    expect(hits('/inv')).toBe(2);
  });

  it('handles huge query strings: cached under their own key, no collision with a near twin', async () => {
    const long = 'q=' + 'a'.repeat(8000);
    const twin = 'q=' + 'a'.repeat(7999) + 'b';
    const a1 = await call(`/c/long?${long}`);
    const a2 = await call(`/c/long?${long}`);
    const b1 = await call(`/c/long?${twin}`);
    expect(a1.status).toBe(200);
    expect(a2.headers['x-cache']).toBe('HIT');
    expect(b1.headers['x-cache']).toBe('MISS');
    expect(b1.json.url).toContain('b');
    const tooLong = await call(`/c/long?q=${'a'.repeat(20_000)}`);
    expect(tooLong.status).toBe(431);
  });

  it('ignores garbage in request and response cache headers without failing the request', async () => {
    // An absurdly large s-maxage is clamped (RFC 9111 §1.2.2), and then the route TTL wins.
    await call('/c/garbage?cc=s-maxage%3D999999999999999999999');
    expect((await call('/c/garbage?cc=s-maxage%3D999999999999999999999')).headers['x-cache']).toBe('HIT');
    for (const cc of ['max-age%3D-5', '%2C%2C%3D%2Cmax-age%3Dabc', 'max-age%3D1.5']) {
      const res = await call(`/c/garbage?cc=${cc}`, { headers: { 'cache-control': ',,="no-store', 'if-none-match': '"' } });
      expect(res.status).toBe(200);
      const again = await call(`/c/garbage?cc=${cc}`);
      expect(again.headers['x-cache']).toBe('MISS');
    }
    const range = await call('/c/garbage', { headers: { range: 'bytes=0-1' } });
    expect(range.headers['x-cache']).toBe('BYPASS');
  });
});
