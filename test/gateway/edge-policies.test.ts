// Issue 19's edge policies over real sockets (ADR 0025): CORS answered at the gateway, IP
// allow/deny lists on the real client address, key scopes, the route-wide and per-address
// limits, against a recording upstream (the circuit breaker: circuit-breaker.test.ts).
import http2 from 'node:http2';
import type { Redis } from 'ioredis';
import { request } from 'undici';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace, QUEUES, type ApiPolicy, type Keyspace, type PlanPolicy } from '@tollgate/policy';
import { isBillable, type UsageBatch, type UsageEvent } from '@tollgate/usage';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testRedis, uniquePrefix } from '../harness';
import {
  issueKey,
  makeApi,
  makePlan,
  makeSnapshot,
  publishSnapshot,
  queuedUsageEvents,
  startUpstream,
  testGatewayConfig,
  type IssuedKey,
  type Upstream,
} from './fixtures';

const ORIGIN = 'https://app.example.com';
let redis: Redis;
let ks: Keyspace;
let gw: Gateway;
let port: number;
let host: string;
let up: Upstream;
const apis: Record<string, ApiPolicy> = {};
let plan: PlanPolicy;
let lockedPlan: PlanPolicy;
const keys = {} as Record<'a' | 'b' | 'writer' | 'reader' | 'office' | 'keyDeny', IssuedKey>;

beforeAll(async () => {
  redis = testRedis();
  const prefix = uniquePrefix('edge');
  ks = createKeyspace(prefix);
  up = await startUpstream((req, res) => {
    // An upstream that sets CORS headers of its own: the API's policy must win.
    res.writeHead(200, {
      'content-type': 'application/json',
      'access-control-allow-origin': 'https://evil.example',
      vary: 'Accept-Encoding',
    });
    res.end(JSON.stringify({ url: req.url }));
  });
  const route = (over: Partial<ApiPolicy['routes'][number]>) => ({ ...makeApi(up.url).routes[0]!, ...over });
  apis.cors = makeApi(up.url, {
    basePath: '/cors',
    cors: {
      origins: [ORIGIN, 'http://localhost:3000'],
      methods: ['GET', 'POST', 'PUT'],
      headers: ['Content-Type', 'X-Api-Key'],
      exposedHeaders: ['X-Request-Id', 'RateLimit'],
      credentials: true,
      maxAgeSeconds: 300,
    },
    routes: [route({ methods: ['GET', 'POST'], path: '/*' })],
  });
  apis.anyOrigin = makeApi(up.url, {
    basePath: '/open-cors',
    authMode: 'none',
    cors: { origins: ['*'], methods: [], headers: ['*'], exposedHeaders: [], credentials: false, maxAgeSeconds: 60 },
  });
  apis.denyV6 = makeApi(up.url, { basePath: '/ipv6', ipRules: { allow: [], deny: ['2001:db8:bad::/48', '203.0.113.7'] } });
  apis.allowList = makeApi(up.url, {
    basePath: '/allow',
    ipRules: { allow: ['10.1.0.0/16', '2001:db8:600d::/48'], deny: ['10.1.2.0/24'] },
  });
  apis.scoped = makeApi(up.url, {
    basePath: '/scoped',
    routes: [route({ path: '/orders/*', methods: ['POST'], requiredScopes: ['orders:write'] }), route({ path: '/*', methods: [] })],
  });
  apis.shared = makeApi(up.url, {
    basePath: '/shared',
    routes: [route({ sharedRateLimit: { limit: 3, windowSeconds: 60, algorithm: 'fixed_window' } })],
  });
  apis.perIp = makeApi(up.url, { basePath: '/per-ip', perIpRateLimit: { limit: 2, windowSeconds: 60, algorithm: 'sliding_window' } });
  const all = Object.values(apis);
  plan = makePlan(all.map((a) => a.id));
  lockedPlan = makePlan(
    all.map((a) => a.id),
    { slug: 'office', ipRules: { allow: ['192.0.2.0/24'], deny: [] } },
  );
  const snap = makeSnapshot(all, [plan, lockedPlan]);
  host = `${snap.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snap);
  keys.a = await issueKey(redis, ks, snap.tenantId, plan);
  keys.b = await issueKey(redis, ks, snap.tenantId, plan);
  keys.writer = await issueKey(redis, ks, snap.tenantId, plan, { scopes: ['orders:read', 'orders:write'] });
  keys.reader = await issueKey(redis, ks, snap.tenantId, plan, { scopes: ['orders:read', 'Orders:Write'] });
  keys.office = await issueKey(redis, ks, snap.tenantId, lockedPlan);
  keys.keyDeny = await issueKey(redis, ks, snap.tenantId, plan, { ipRules: { allow: [], deny: ['127.0.0.0/8', '::1'] } });
  // The test client is a trusted proxy, so X-Forwarded-For names the real client.
  gw = await createGateway(
    testGatewayConfig(prefix, { GATEWAY_USAGE_BATCH_WAIT_MS: '10', GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32', GATEWAY_H2C: 'true' }),
  );
  ({ port } = await gw.listen());
});
afterAll(async () => {
  await gw?.shutdown();
  await up?.close();
  await redis?.quit();
});

async function call(method: string, path: string, headers: Record<string, string> = {}) {
  const res = await request(`http://127.0.0.1:${port}${path}`, { method: method as 'GET', headers: { host, ...headers } });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, requestId: res.headers['x-request-id'] as string };
}
/** The same call over HTTP/2 with prior knowledge (h2c) on the same port: the transport changes no decision. */
async function callH2(method: string, path: string, headers: Record<string, string> = {}) {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise<{ status: number; headers: http2.IncomingHttpHeaders; text: string }>((resolve, reject) => {
      session.on('error', reject);
      const req = session.request({ ':method': method, ':path': path, ':authority': host, ...headers });
      let head: http2.IncomingHttpHeaders = {};
      let text = '';
      req.setEncoding('utf8');
      req.on('response', (h) => (head = h));
      req.on('data', (c: string) => (text += c));
      req.on('end', () => resolve({ status: Number(head[':status']), headers: head, text }));
      req.on('error', reject);
      req.end();
    });
  } finally {
    session.close();
  }
}
const withKey = (k: IssuedKey, extra: Record<string, string> = {}) => ({ 'x-api-key': k.key, ...extra });

/** Every usage event queued so far under this run's prefix. */
async function allEvents(): Promise<UsageEvent[]> {
  const queue = new Queue(QUEUES.usage, { connection: redis, prefix: ks.bullPrefix });
  try {
    const jobs = await queue.getJobs(['waiting', 'prioritized', 'delayed', 'active', 'completed']);
    return jobs.flatMap((j) => (j.data as UsageBatch).events);
  } finally {
    await queue.close();
  }
}

describe('CORS', () => {
  it('answers a preflight at the gateway without a key: never at the upstream, never metered', async () => {
    const before = up.requests.length;
    const pre = await call('OPTIONS', '/cors/items', {
      origin: ORIGIN,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type, x-api-key',
    });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(pre.headers['access-control-allow-methods']).toBe('POST');
    expect(pre.headers['access-control-allow-headers']).toBe('content-type, x-api-key');
    expect(pre.headers['access-control-allow-credentials']).toBe('true');
    expect(pre.headers['access-control-max-age']).toBe('300');
    expect(String(pre.headers.vary)).toMatch(/Origin/);
    expect(up.requests.length).toBe(before);

    // A metered call after it: once its event is queued, the preflight's would be too.
    const after = await call('GET', '/cors/items', withKey(keys.a));
    await queuedUsageEvents(redis, ks, [after.requestId]);
    expect((await allEvents()).some((e) => e.id === pre.requestId)).toBe(false);
  });

  it('refuses preflights for origins, methods and headers the policy does not list, and malformed ones', async () => {
    const refused: Record<string, string>[] = [
      { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
      { origin: 'null', 'access-control-request-method': 'GET' },
      { origin: `${ORIGIN}/path`, 'access-control-request-method': 'GET' },
      { origin: ORIGIN.toUpperCase(), 'access-control-request-method': 'GET' },
      { origin: `https://${'a'.repeat(400)}.example`, 'access-control-request-method': 'GET' },
      { origin: ORIGIN, 'access-control-request-method': 'DELETE' },
      { origin: ORIGIN, 'access-control-request-method': 'PUT' }, // listed by CORS, but no route serves it
      { origin: ORIGIN, 'access-control-request-method': 'get' },
      { origin: ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-secret' },
      { origin: ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'bad header(' },
      { origin: ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'a,'.repeat(2000) },
    ];
    const before = up.requests.length;
    for (const h of refused) {
      const r = await call('OPTIONS', '/cors/items', h);
      expect(r.status, JSON.stringify(h).slice(0, 120)).toBe(403);
      expect(r.headers['access-control-allow-origin']).toBeUndefined();
      expect(JSON.parse(r.text).error.code).toBe('forbidden');
    }
    expect(up.requests.length).toBe(before);
  });

  it("puts the API's CORS headers on actual responses, replacing the upstream's, with Vary: Origin", async () => {
    const ok = await call('GET', '/cors/items', withKey(keys.a, { origin: ORIGIN }));
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(ok.headers['access-control-allow-credentials']).toBe('true');
    expect(ok.headers['access-control-expose-headers']).toBe('X-Request-Id, RateLimit');
    expect(ok.headers.vary).toBe('Accept-Encoding, Origin');

    const other = await call('GET', '/cors/items', withKey(keys.a, { origin: 'https://evil.example' }));
    expect(other.status).toBe(200);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    expect(other.headers.vary).toBe('Accept-Encoding, Origin');

    // The gateway's own refusals carry them too, so a browser script can read the error.
    const noKey = await call('GET', '/cors/items', { origin: ORIGIN });
    expect(noKey.status).toBe(401);
    expect(noKey.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(noKey.headers.vary).toBe('Origin');
  });

  it('answers "*" without Vary and with any requested header when credentials are off', async () => {
    const pre = await call('OPTIONS', '/open-cors/x', {
      origin: 'https://anyone.example',
      'access-control-request-method': 'DELETE',
      'access-control-request-headers': 'x-whatever',
    });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('*');
    expect(pre.headers['access-control-allow-headers']).toBe('x-whatever');
    const res = await call('GET', '/open-cors/x', { origin: 'https://anyone.example' });
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers.vary).toBe('Accept-Encoding');
  });

  it('leaves OPTIONS that is not a preflight to the route (authenticated like any call)', async () => {
    const r = await call('OPTIONS', '/open-cors/x', { origin: ORIGIN });
    expect(r.status).toBe(200);
  });
});

describe('IP allow/deny lists', () => {
  it('refuses an address in a denied IPv6 CIDR with 403 before asking for a key', async () => {
    const before = up.requests.length;
    const denied = await call('GET', '/ipv6/x', { 'x-forwarded-for': '2001:db8:bad:1::42' });
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.text).error.code).toBe('forbidden');
    // The same with a valid key, and an IPv4 single-address rule, and the mapped spelling of it.
    expect((await call('GET', '/ipv6/x', withKey(keys.a, { 'x-forwarded-for': '2001:DB8:BAD::1' }))).status).toBe(403);
    expect((await call('GET', '/ipv6/x', withKey(keys.a, { 'x-forwarded-for': '203.0.113.7' }))).status).toBe(403);
    expect((await call('GET', '/ipv6/x', withKey(keys.a, { 'x-forwarded-for': '::ffff:203.0.113.7' }))).status).toBe(403);
    expect(up.requests.length).toBe(before);
    // Next door is fine; without a key that is then a 401, i.e. the rule ran first.
    expect((await call('GET', '/ipv6/x', withKey(keys.a, { 'x-forwarded-for': '2001:db8:bae::1' }))).status).toBe(200);
    expect((await call('GET', '/ipv6/x', { 'x-forwarded-for': '2001:db8:bae::1' })).status).toBe(401);
  });

  it('reads the real client behind trusted proxies only: a spoofed hop before an untrusted one does not help', async () => {
    // The nearest untrusted hop (203.0.113.7) is the client, whatever it claims before it.
    const r = await call('GET', '/ipv6/x', withKey(keys.a, { 'x-forwarded-for': '198.51.100.1, 203.0.113.7' }));
    expect(r.status).toBe(403);
    const garbage = await call('GET', '/ipv6/x', withKey(keys.a, { 'x-forwarded-for': 'not-an-ip, :::::' }));
    expect(garbage.status).toBe(200); // neither rule matches garbage; nothing crashes
  });

  it('with an allow list, passes only what it lists, and deny wins inside it', async () => {
    expect((await call('GET', '/allow/x', withKey(keys.a, { 'x-forwarded-for': '10.1.9.9' }))).status).toBe(200);
    expect((await call('GET', '/allow/x', withKey(keys.a, { 'x-forwarded-for': '2001:db8:600d::7' }))).status).toBe(200);
    expect((await call('GET', '/allow/x', withKey(keys.a, { 'x-forwarded-for': '10.1.2.3' }))).status).toBe(403);
    expect((await call('GET', '/allow/x', withKey(keys.a, { 'x-forwarded-for': '10.2.0.1' }))).status).toBe(403);
    expect((await call('GET', '/allow/x', withKey(keys.a))).status).toBe(403); // 127.0.0.1 itself
    expect((await call('GET', '/allow/x', withKey(keys.a, { 'x-forwarded-for': 'garbage' }))).status).toBe(403);
  });

  it("applies a plan's and a key's lists once the key is known", async () => {
    expect((await call('GET', '/ipv6/x', withKey(keys.office))).status).toBe(403);
    expect((await call('GET', '/ipv6/x', withKey(keys.office, { 'x-forwarded-for': '192.0.2.10' }))).status).toBe(200);
    const k = await call('GET', '/ipv6/x', withKey(keys.keyDeny));
    expect(k.status).toBe(403);
    expect((await call('GET', '/ipv6/x', withKey(keys.keyDeny, { 'x-forwarded-for': '192.0.2.10' }))).status).toBe(200);
    const [ev] = await queuedUsageEvents(redis, ks, [k.requestId]);
    expect(ev).toMatchObject({ status: 403, rejected: 'forbidden', answeredBy: 'gateway' });
    expect(isBillable(ev!)).toBe(false);
  });
});

describe('key scopes', () => {
  it('refuses a key without every required scope with 403 insufficient_scope', async () => {
    const before = up.requests.length;
    const none = await call('POST', '/scoped/orders/1', withKey(keys.a));
    expect(none.status).toBe(403);
    expect(JSON.parse(none.text).error.code).toBe('insufficient_scope');
    expect(none.headers['www-authenticate']).toBe('Bearer realm="tollgate", error="insufficient_scope", scope="orders:write"');
    // Scopes are exact: `Orders:Write` is not `orders:write`.
    expect((await call('POST', '/scoped/orders/1', withKey(keys.reader))).status).toBe(403);
    expect(up.requests.length).toBe(before);
    expect((await call('POST', '/scoped/orders/1', withKey(keys.writer))).status).toBe(200);
    // Routes without required scopes don't look.
    expect((await call('GET', '/scoped/other', withKey(keys.a))).status).toBe(200);
  });
});

describe('route-wide and per-address limits', () => {
  it('shares one route-wide limit across two keys, with RateLimit headers', async () => {
    const seen = [];
    for (const k of [keys.a, keys.b, keys.a, keys.b]) seen.push(await call('GET', '/shared/x', withKey(k)));
    expect(seen.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    expect(seen[0]!.headers['ratelimit-policy']).toContain('"route-shared";q=3;w=60');
    expect(seen[0]!.headers['ratelimit-policy']).toContain('"plan";q=1000;w=1');
    expect(seen[3]!.headers['retry-after']).toBeDefined();
    expect(JSON.parse(seen[3]!.text).error.code).toBe('rate_limited');
  });

  it('limits each client address on a keyed API, whatever the key', async () => {
    const ip1 = { 'x-forwarded-for': '198.51.100.11' };
    const ip2 = { 'x-forwarded-for': '2001:db8::11' };
    const r = [
      await call('GET', '/per-ip/x', withKey(keys.a, ip1)),
      await call('GET', '/per-ip/x', withKey(keys.b, ip1)),
      await call('GET', '/per-ip/x', withKey(keys.a, ip1)),
      await call('GET', '/per-ip/x', withKey(keys.a, ip2)),
    ];
    expect(r.map((x) => x.status)).toEqual([200, 200, 429, 200]);
    expect(r[2]!.headers['ratelimit-policy']).toBe('"ip";q=2;w=60');
    expect(r[1]!.headers['x-ratelimit-remaining']).toBe('0');
  });
});

describe('over HTTP/2 (h2c)', () => {
  it('answers a preflight at the gateway, refuses a denied IPv6 client and a missing scope, as over HTTP/1.1', async () => {
    const before = up.requests.length;
    const pre = await callH2('OPTIONS', '/cors/items', { origin: ORIGIN, 'access-control-request-method': 'POST' });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(
      (await callH2('OPTIONS', '/cors/items', { origin: 'https://evil.example', 'access-control-request-method': 'POST' })).status,
    ).toBe(403);
    expect((await callH2('GET', '/ipv6/x', { 'x-api-key': keys.a.key, 'x-forwarded-for': '2001:db8:bad::9' })).status).toBe(403);
    const scope = await callH2('POST', '/scoped/orders/1', { 'x-api-key': keys.a.key });
    expect(scope.status).toBe(403);
    expect(JSON.parse(scope.text).error.code).toBe('insufficient_scope');
    expect(up.requests.length).toBe(before);
    const ok = await callH2('GET', '/cors/items', { 'x-api-key': keys.a.key, origin: ORIGIN });
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe(ORIGIN);
  });
});
