import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { Redis } from 'ioredis';
import { createKeyspace, encodeEvent, type Keyspace } from '@tollgate/policy';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testRedis, uniquePrefix, waitFor } from '../harness';
import {
  issueKey,
  makeApi,
  makePlan,
  makeSnapshot,
  publishSnapshot,
  rawRequest,
  revokeKey,
  startUpstream,
  statusOf,
  type IssuedKey,
  type Upstream,
  testGatewayConfig,
  queuedUsageEvents,
} from './fixtures';

let redis: Redis;
let ks: Keyspace;
let gw: Gateway;
let port: number;
let upstream: Upstream;
let slow: Upstream;
let host: string;
let key: IssuedKey;
let tenantId: string;
const apis = {} as Record<'echo' | 'slow' | 'closed' | 'open' | 'limited' | 'dead', ReturnType<typeof makeApi>>;

async function call(method: string, url: string, opts: { headers?: Record<string, string>; body?: string; hostHeader?: string } = {}) {
  const res = await request(`http://127.0.0.1:${port}${url}`, {
    method: method as 'GET',
    headers: { host: opts.hostHeader ?? host, ...opts.headers },
    body: opts.body,
  });
  const text = await res.body.text();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON body of any shape, asserted field by field
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

beforeAll(async () => {
  redis = testRedis();
  const prefix = uniquePrefix('gw');
  ks = createKeyspace(prefix);
  upstream = await startUpstream();
  slow = await startUpstream((_req, res) => {
    setTimeout(() => {
      if (!res.destroyed) res.end('late');
    }, 3000);
  });
  apis.echo = makeApi(upstream.url, { basePath: '/echo', allowQueryKey: true });
  apis.slow = makeApi(slow.url, { basePath: '/slow', timeouts: { connectMs: 500, headersMs: 300, requestMs: 300 }, retries: 0 });
  apis.dead = makeApi('http://127.0.0.1:9', { basePath: '/dead', retries: 0 });
  apis.limited = makeApi(upstream.url, { basePath: '/limited' });
  apis.closed = makeApi(upstream.url, { basePath: '/closed', failMode: 'closed' });
  apis.open = makeApi(upstream.url, { basePath: '/open', authMode: 'none' });
  const plan = makePlan(
    Object.values(apis).map((a) => a.id),
    { rateLimit: { limit: 1000, windowSeconds: 60, algorithm: 'sliding_window' } },
  );
  const snapshot = makeSnapshot(Object.values(apis), [plan]);
  tenantId = snapshot.tenantId;
  host = `${snapshot.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snapshot);
  key = await issueKey(redis, ks, tenantId, plan);

  const config = testGatewayConfig(prefix, {
    GATEWAY_MAX_HEADER_BYTES: '4096',
    GATEWAY_MAX_BODY_BYTES: '1024',
    GATEWAY_REDIS_TIMEOUT_MS: '200',
  });
  gw = await createGateway(config);
  ({ port } = await gw.listen());
});

afterAll(async () => {
  await gw?.shutdown();
  await upstream?.close();
  await slow?.close();
  await redis?.quit();
});

const auth = () => ({ authorization: `Bearer ${key.key}` });

describe('forwarding', () => {
  it('proxies an authenticated request with identity headers and rate limit headers', async () => {
    const res = await call('GET', '/echo/users/1?x=1', { headers: auth() });
    expect(res.status).toBe(200);
    expect(res.json.url).toBe('/users/1?x=1');
    const h = res.json.headers;
    expect(h['x-tollgate-consumer']).toBe(key.record.consumerId);
    expect(h['x-tollgate-key-id']).toBe(key.record.keyId);
    expect(h['x-tollgate-tenant']).toBe(tenantId);
    expect(h['x-tollgate-plan']).toBe('free');
    expect(h['x-tollgate-request-id']).toBe(res.headers['x-request-id']);
    expect(h.authorization).toBeUndefined();
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-forwarded-host']).toBe(host);
    expect(h['x-forwarded-proto']).toBe('http');
    expect(res.headers['ratelimit-policy']).toContain('"plan";q=1000;w=60');
    expect(res.headers['x-ratelimit-limit']).toBe('1000');
  });

  it('streams a POST body to the upstream', async () => {
    const res = await call('POST', '/echo/items', { headers: { ...auth(), 'content-type': 'text/plain' }, body: 'hello body' });
    expect(res.status).toBe(200);
    expect(res.json.bodyLength).toBe(10);
  });

  it('answers 404 JSON for unknown hosts and paths', async () => {
    const a = await call('GET', '/echo/x', { hostHeader: 'nobody.localhost' });
    expect(a.status).toBe(404);
    expect(a.json.error.code).toBe('not_found');
    const b = await call('GET', '/nothing-here', { headers: auth() });
    expect(b.status).toBe(404);
    expect(b.json.error.requestId).toBeTruthy();
  });

  it('answers 504 when the upstream is slower than the route timeout', async () => {
    const t0 = Date.now();
    const res = await call('GET', '/slow/x', { headers: auth() });
    expect(res.status).toBe(504);
    expect(res.json.error.code).toBe('gateway_timeout');
    expect(Date.now() - t0).toBeLessThan(2500);
  });

  it('answers 502 when the upstream refuses connections', async () => {
    const res = await call('GET', '/dead/x', { headers: auth() });
    expect(res.status).toBe(502);
    expect(res.json.error.code).toBe('bad_gateway');
    expect(res.text).not.toContain('ECONNREFUSED');
  });
});

describe('identity headers cannot be forged', () => {
  it('drops client-sent X-Tollgate-* and sets its own', async () => {
    const res = await call('GET', '/echo/me', {
      headers: { ...auth(), 'x-tollgate-consumer': 'admin', 'X-Tollgate-Key-Id': 'key_evil', 'x-tollgate-claim-role': 'root' },
    });
    expect(res.json.headers['x-tollgate-consumer']).toBe(key.record.consumerId);
    expect(res.json.headers['x-tollgate-key-id']).toBe(key.record.keyId);
    expect(res.json.headers['x-tollgate-claim-role']).toBeUndefined();
  });

  it('a Connection header naming identity headers strips nothing the gateway sets', async () => {
    const raw = await rawRequest(
      port,
      `GET /echo/conn HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${key.key}\r\nConnection: close, x-tollgate-consumer, X-Tollgate-Tenant, x-forwarded-for, x-custom\r\nX-Custom: secret\r\nX-Tollgate-Consumer: admin\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(200);
    const seen = upstream.requests.at(-1)!;
    expect(seen.url).toBe('/conn');
    expect(seen.headers['x-tollgate-consumer']).toBe(key.record.consumerId);
    expect(seen.headers['x-tollgate-tenant']).toBe(tenantId);
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-custom']).toBeUndefined();
    expect(seen.headers.connection).not.toContain('x-tollgate');
  });

  it('ignores X-Forwarded-For from an untrusted peer', async () => {
    const res = await call('GET', '/echo/xff', { headers: { ...auth(), 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https' } });
    expect(res.json.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(res.json.headers['x-forwarded-proto']).toBe('http');
  });
});

describe('hostile framing and paths', () => {
  it('refuses Content-Length together with Transfer-Encoding with 400', async () => {
    const before = upstream.requests.length;
    const raw = await rawRequest(
      port,
      `POST /echo/smuggle HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${key.key}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /echo/admin HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(400);
    expect(upstream.requests.length).toBe(before);
  });

  it('refuses two Host headers with 400', async () => {
    const raw = await rawRequest(
      port,
      `GET /echo/x HTTP/1.1\r\nHost: ${host}\r\nHost: other.localhost\r\nAuthorization: Bearer ${key.key}\r\nConnection: close\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(400);
  });

  it.each([
    '/echo/a/../b',
    '/echo/a/%2e%2e/b',
    '/echo/a/%2E%2e/b',
    '/echo/a/.%2E/b',
    '/echo/./b',
    '/echo/a/%2f/b',
    '/echo/a%2Fb',
    '/echo/a%5cb',
    '/echo/a\\b',
    '/echo//b',
    '/echo/a%00b',
    '/echo/a%0ab',
    '/echo/%zz',
    '/echo/..',
  ])('refuses %s with 400 before any upstream sees it', async (p) => {
    const before = upstream.requests.length;
    const raw = await rawRequest(
      port,
      `GET ${p} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${key.key}\r\nConnection: close\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(400);
    expect(upstream.requests.length).toBe(before);
  });

  it('answers 431 to oversized headers and 413 to an oversized body', async () => {
    const big = await rawRequest(port, `GET /echo/x HTTP/1.1\r\nHost: ${host}\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`);
    expect(statusOf(big)).toBe(431);
    expect(big).toContain('headers_too_large');
    const declared = await call('POST', '/echo/x', { headers: { ...auth(), 'content-type': 'text/plain' }, body: 'x'.repeat(2000) });
    expect(declared.status).toBe(413);
    const chunked = await rawRequest(
      port,
      `POST /echo/x HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${key.key}\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n${(800).toString(16)}\r\n${'y'.repeat(800)}\r\n${(800).toString(16)}\r\n${'y'.repeat(800)}\r\n0\r\n\r\n`,
    );
    expect(statusOf(chunked)).toBe(413);
  });
});

describe('API keys', () => {
  it('answers 401 with WWW-Authenticate when the key is missing, malformed or unknown', async () => {
    const missing = await call('GET', '/echo/x');
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toContain('Bearer');
    const malformed = await call('GET', '/echo/x', { headers: { 'x-api-key': 'tg_live_nope' } });
    expect(malformed.status).toBe(401);
    expect(malformed.json.error.code).toBe('invalid_key');
    const typo = key.key.slice(0, -1) + (key.key.endsWith('a') ? 'b' : 'a');
    const badChecksum = await call('GET', '/echo/x', { headers: { 'x-api-key': typo } });
    expect(badChecksum.status).toBe(401);
  });

  it('accepts X-API-Key and a query key where the API allows it, and strips the key', async () => {
    const viaHeader = await call('GET', '/echo/h', { headers: { 'x-api-key': key.key } });
    expect(viaHeader.status).toBe(200);
    expect(viaHeader.json.headers['x-api-key']).toBeUndefined();
    const viaQuery = await call('GET', `/echo/q?a=1&api_key=${key.key}&b=2`);
    expect(viaQuery.status).toBe(200);
    expect(viaQuery.json.url).toBe('/q?a=1&b=2');
    const notAllowed = await call('GET', `/limited/q?api_key=${key.key}`);
    expect(notAllowed.status).toBe(401);
  });

  it('answers 403 for an API outside the key and for an inactive subscription', async () => {
    const narrow = await issueKey(redis, ks, tenantId, null, { apiIds: [apis.limited.id] });
    expect((await call('GET', '/echo/x', { headers: { 'x-api-key': narrow.key } })).status).toBe(403);
    expect((await call('GET', '/limited/x', { headers: { 'x-api-key': narrow.key } })).status).toBe(200);
    const plan = makePlan([apis.echo.id]);
    const canceled = await issueKey(redis, ks, tenantId, plan, { subscriptionStatus: 'canceled' });
    const res = await call('GET', '/echo/x', { headers: { 'x-api-key': canceled.key } });
    expect(res.status).toBe(403);
    expect(res.json.error.code).toBe('forbidden');
  });

  it('refuses a key of another tenant as invalid', async () => {
    const other = await issueKey(redis, ks, 'ten_other', null);
    expect((await call('GET', '/echo/x', { headers: { 'x-api-key': other.key } })).status).toBe(401);
  });

  it('refuses a revoked key as soon as the event arrives, even though it was cached', async () => {
    const k = await issueKey(redis, ks, tenantId, null);
    expect((await call('GET', '/echo/x', { headers: { 'x-api-key': k.key } })).status).toBe(200);
    await revokeKey(redis, ks, k);
    await waitFor(async () => (await call('GET', '/echo/x', { headers: { 'x-api-key': k.key } })).status === 401, {
      timeoutMs: 1000,
      what: 'revocation',
    });
  });

  it('drops a cached key on key.updated', async () => {
    const k = await issueKey(redis, ks, tenantId, null);
    expect((await call('GET', '/echo/x', { headers: { 'x-api-key': k.key } })).status).toBe(200);
    await redis.set(ks.key(k.hash), JSON.stringify({ ...k.record, apiIds: [apis.limited.id] }));
    await redis.publish(ks.eventsChannel, encodeEvent({ type: 'key.updated', hash: k.hash }));
    await waitFor(async () => (await call('GET', '/echo/x', { headers: { 'x-api-key': k.key } })).status === 403, {
      timeoutMs: 1000,
      what: 'update',
    });
  });
});

describe('limits', () => {
  it('answers 429 with headers and a body naming the limit once the plan rate is used up', async () => {
    const plan = makePlan([apis.limited.id], { rateLimit: { limit: 3, windowSeconds: 60, algorithm: 'fixed_window' } });
    const snap = makeSnapshot([apis.limited], [plan], { tenantId: `${tenantId}`, version: 2, tenantSlug: host.split('.')[0]! });
    // Keep every API of the tenant: re-publish the full set with the new plan added.
    const full = {
      ...snap,
      apis: Object.values(apis),
      plans: [
        ...snap.plans,
        makePlan(
          Object.values(apis).map((a) => a.id),
          { id: key.record.planId!, rateLimit: { limit: 1000, windowSeconds: 60, algorithm: 'sliding_window' } },
        ),
      ],
    };
    await publishSnapshot(redis, ks, full);
    await waitFor(() => gw.store.version >= 2, { what: 'snapshot v2' });
    const k = await issueKey(redis, ks, tenantId, plan);
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 5; i++) {
      last = await call('GET', '/limited/x', { headers: { 'x-api-key': k.key } });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(last!.headers['retry-after']).toBeTruthy();
    expect(last!.headers['ratelimit']).toContain('"plan";r=0');
    expect(last!.json.error.code).toBe('rate_limited');
    expect(last!.json.error.limit).toBe('plan');
    expect(last!.json.error.resetsAt).toBeTruthy();
  });
});

describe('usage', () => {
  it('puts one event per request in the usage queue, rejections flagged', async () => {
    const ok = await call('GET', '/echo/usage-ok', { headers: auth() });
    const denied = await call('GET', '/echo/usage-denied');
    expect(ok.status).toBe(200);
    expect(denied.status).toBe(401);
    const okId = ok.headers['x-request-id'] as string;
    const deniedId = denied.json.error.requestId as string;
    const [a, b] = await queuedUsageEvents(redis, ks, [okId, deniedId]);
    expect(a).toMatchObject({
      tenantId,
      apiId: apis.echo.id,
      keyId: key.record.keyId,
      status: 200,
      rejected: null,
      method: 'GET',
      answeredBy: 'upstream',
    });
    expect(a!.upstreamLatencyMs).not.toBeNull();
    expect(b).toMatchObject({ tenantId, apiId: apis.echo.id, keyId: null, status: 401, rejected: 'auth', answeredBy: 'gateway' });
  });
});
