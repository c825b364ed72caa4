import { SignJWT } from 'jose';
import type { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace, type Keyspace } from '@tollgate/policy';
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
} from './fixtures';

const SECRET = 'a-shared-secret-of-at-least-32-bytes!!';
let redis: Redis;
let ks: Keyspace;
let prefix: string;
let gw: Gateway;
let port: number;
let host: string;
let key: IssuedKey;
let quotaKey: IssuedKey;
const ups: Upstream[] = [];
let release: () => void = () => undefined;

function config(extra: Record<string, string> = {}) {
  return testGatewayConfig(prefix, { GATEWAY_REDIS_TIMEOUT_MS: '1000', GATEWAY_UNHEALTHY_THRESHOLD: '2', ...extra });
}

beforeAll(async () => {
  redis = testRedis();
  prefix = uniquePrefix('fwd');
  ks = createKeyspace(prefix);
  const healthy = await startUpstream();
  const dead = await startUpstream();
  const deadUrl = dead.url;
  await dead.close(); // a port that now refuses connections
  const streaming = await startUpstream((req, res) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 120);
      for (let i = 0; i < 80; i++) res.write(chunk); // 5 MiB
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first;');
    release = () => res.end('second');
  });
  const slow = await startUpstream((_req, res) => setTimeout(() => res.end('done'), 400));
  ups.push(healthy, streaming, slow);

  const pair = makeApi([deadUrl, healthy.url], { basePath: '/pair', retries: 1 });
  const stream = makeApi(streaming.url, { basePath: '/stream' });
  const slowApi = makeApi(slow.url, { basePath: '/slow' });
  const jwtApi = makeApi(healthy.url, {
    basePath: '/jwt',
    authMode: 'jwt',
    jwt: {
      issuer: 'https://issuer.test',
      audience: 'tollgate',
      jwksUrl: null,
      key: SECRET,
      algorithms: ['HS256'],
      forwardClaims: ['role'],
      requireExp: true,
      maxLifetimeSeconds: 86_400,
    },
  });
  const transformed = makeApi(healthy.url, {
    basePath: '/tx',
    routes: [
      {
        id: 'rte_tx',
        methods: ['GET'],
        path: '/*',
        timeoutMs: null,
        cacheTtlSeconds: 0,
        rateLimit: null,
        transform: {
          requestHeaders: { set: { 'x-added': 'yes', 'x-tollgate-consumer': 'forged' }, remove: ['x-drop'] },
          responseHeaders: { set: { 'x-resp': '1' } },
        },
      },
    ],
  });
  const plan = makePlan([pair.id, stream.id, slowApi.id, transformed.id]);
  const quotaPlan = makePlan([pair.id], { slug: 'tiny', quota: { limit: 2, mode: 'hard_cap' } });
  const snap = makeSnapshot([pair, stream, slowApi, jwtApi, transformed], [plan, quotaPlan]);
  host = `${snap.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snap);
  key = await issueKey(redis, ks, snap.tenantId, plan);
  quotaKey = await issueKey(redis, ks, snap.tenantId, quotaPlan);
  gw = await createGateway(config());
  ({ port } = await gw.listen());
});

afterAll(async () => {
  await gw?.shutdown();
  await Promise.all(ups.map((u) => u.close()));
  await redis?.quit();
});

async function call(p: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}) {
  const res = await request(`http://127.0.0.1:${port}${p}`, {
    method: (opts.method ?? 'GET') as 'GET',
    headers: { host, 'x-api-key': key.key, ...opts.headers },
    body: opts.body,
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

describe('targets', () => {
  it('retries idempotent requests on another target and takes the dead one out of rotation', async () => {
    const gets = await Promise.all(Array.from({ length: 6 }, () => call('/pair/x')));
    expect(gets.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    // Now the dead target sits out: bodies (never retried) all reach the healthy one.
    const posts = [];
    for (let i = 0; i < 6; i++) posts.push(await call('/pair/x', { method: 'POST', body: 'b', headers: { 'content-type': 'text/plain' } }));
    expect(posts.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
  });
});

describe('streaming', () => {
  it('streams a large response and a large request body', async () => {
    const big = await request(`http://127.0.0.1:${port}/stream/big`, { headers: { host, 'x-api-key': key.key } });
    let bytes = 0;
    for await (const c of big.body) bytes += (c as Buffer).length;
    expect(bytes).toBe(80 * 64 * 1024);
    const body = Buffer.alloc(1024 * 1024, 97);
    const up = await call('/pair/upload', { method: 'PUT', body, headers: { 'content-type': 'application/octet-stream' } });
    expect(up.status).toBe(200);
    expect(JSON.parse(up.text).bodyLength).toBe(body.length);
  });

  it('forwards response bytes before the upstream has finished', async () => {
    const res = await request(`http://127.0.0.1:${port}/stream/partial`, { headers: { host, 'x-api-key': key.key } });
    const it = res.body[Symbol.asyncIterator]();
    const first = await it.next();
    expect(Buffer.from(first.value as Buffer).toString()).toBe('first;');
    release();
    let rest = '';
    for (let r = await it.next(); !r.done; r = await it.next()) rest += Buffer.from(r.value as Buffer).toString();
    expect(rest).toBe('second');
  });
});

describe('JWT', () => {
  const sign = (claims: Record<string, unknown>, secret = SECRET) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://issuer.test')
      .setAudience('tollgate')
      .setSubject('user-42')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(secret));

  it('accepts a valid token and forwards the subject and configured claims', async () => {
    const res = await call('/jwt/me', {
      headers: { authorization: `Bearer ${await sign({ role: 'reader', other: 'x' })}`, 'x-api-key': '' },
    });
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.text).headers;
    expect(seen['x-tollgate-consumer']).toBe('user-42');
    expect(seen['x-tollgate-claim-role']).toBe('reader');
    expect(seen['x-tollgate-claim-other']).toBeUndefined();
  });

  it('refuses a bad signature, an unsigned token and no token with 401', async () => {
    const forged = await sign({ role: 'admin' }, 'another-secret-of-at-least-32-bytes!!');
    expect((await call('/jwt/me', { headers: { authorization: `Bearer ${forged}` } })).status).toBe(401);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"x","iss":"https://issuer.test","aud":"tollgate"}').toString('base64url')}.`;
    expect((await call('/jwt/me', { headers: { authorization: `Bearer ${none}` } })).status).toBe(401);
    const missing = await call('/jwt/me');
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toContain('Bearer');
  });
});

describe('route transforms', () => {
  it('sets and removes headers but can never set identity headers', async () => {
    const res = await call('/tx/x', { headers: { 'x-drop': 'gone' } });
    const seen = JSON.parse(res.text).headers;
    expect(seen['x-added']).toBe('yes');
    expect(seen['x-drop']).toBeUndefined();
    expect(seen['x-tollgate-consumer']).toBe(key.record.consumerId);
    expect(res.headers['x-resp']).toBe('1');
  });
});

describe('quota', () => {
  it('refuses with 429 quota_exceeded once a hard-capped quota is used', async () => {
    const statuses = [];
    let last;
    for (let i = 0; i < 3; i++) {
      last = await call('/pair/q', { headers: { 'x-api-key': quotaKey.key } });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    const body = JSON.parse(last!.text);
    expect(body.error.code).toBe('quota_exceeded');
    expect(body.error.limit).toBe('quota');
    expect(last!.headers['ratelimit']).toContain('"quota";r=0');
  });
});

describe('test mode', () => {
  it('a test key and a live key of one subscription count against separate quotas', async () => {
    const subscriptionId = `sub_shared_${Date.now()}`;
    const live = await issueKey(redis, ks, quotaKey.record.tenantId, null, {
      ...quotaKey.record,
      keyId: 'key_live_q',
      subscriptionId,
      env: 'live',
    });
    const test = await issueKey(redis, ks, quotaKey.record.tenantId, null, {
      ...quotaKey.record,
      keyId: 'key_test_q',
      subscriptionId,
      env: 'test',
    });
    const run = async (k: string) => {
      const out = [];
      for (let i = 0; i < 3; i++) out.push((await call('/pair/q', { headers: { 'x-api-key': k } })).status);
      return out;
    };
    expect(await run(live.key)).toEqual([200, 200, 429]);
    // The live quota is used up; the test key's own is not, and using it leaves the live one as it was.
    expect(await run(test.key)).toEqual([200, 200, 429]);
    const counters = (await redis.keys(`${ks.prefix}:quota:{${subscriptionId}*`)).map((k) => k.split(':quota:')[1]!.split(':')[0]);
    expect(counters.sort()).toEqual([`{${subscriptionId}.test}`, `{${subscriptionId}}`]);
  });
});

describe('shutdown', () => {
  it('drains an in-flight request and flushes usage on shutdown', async () => {
    const g = await createGateway(config());
    const { port: p } = await g.listen();
    const inflight = request(`http://127.0.0.1:${p}/slow/x`, { headers: { host, 'x-api-key': key.key } });
    const seen = ups[2]!.requests.length;
    await waitFor(() => ups[2]!.requests.length > seen, { what: 'the request at the upstream' });
    const closing = g.shutdown();
    const res = await inflight;
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('done');
    const t0 = Date.now();
    await closing;
    expect(Date.now() - t0).toBeLessThan(3000); // drained, not cut off by the grace period
    expect(g.usage.stats().buffered).toBe(0);
    await expect(request(`http://127.0.0.1:${p}/slow/x`, { headers: { host } })).rejects.toThrow();
  });

  it('on shutdown reports not-ready for GATEWAY_SHUTDOWN_NOT_READY_MS while still serving on open connections', async () => {
    const g = await createGateway(config({ GATEWAY_SHUTDOWN_NOT_READY_MS: '1500' }));
    const { port: p } = await g.listen();
    await waitFor(() => g.isReady(), { what: 'ready' });
    const agent = new Agent({ connections: 1, keepAliveTimeout: 30_000 });
    const get = () => request(`http://127.0.0.1:${p}/pair/x`, { headers: { host, 'x-api-key': key.key }, dispatcher: agent });
    const first = await get();
    await first.body.dump();
    expect(first.headers.connection).not.toBe('close');
    const closing = g.shutdown();
    expect(g.isReady()).toBe(false);
    // The not-ready phase: new requests on the open connection are served as usual.
    const during = await get();
    expect(during.statusCode).toBe(200);
    await during.body.dump();
    await closing;
    await agent.close();
  });
});
