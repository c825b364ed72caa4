import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Redis } from 'ioredis';
import { createKeyspace, PolicySnapshot } from '@tollgate/policy';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { createMemoryLimiter, type Limiter } from '@tollgate/ratelimit';
import { startUpstream, type Upstream } from '../../../test/gateway/fixtures';
import { waitFor } from '../../../test/harness';
import { createMetrics } from './admin/metrics';
import { buildApp, clientAddress } from './app';
import { KeyCache } from './auth/key-cache';
import { createTrustedProxyCheck, loadGatewayConfig } from './env';
import { createLimitEnforcer } from './limits/enforce-limits';
import { Upstreams } from './proxy/upstreams';
import { buildRouteTable, compileTenant, EMPTY_TABLE, type RouteTable } from './routing/route-table';
import { createMemoryUsageSink } from './usage/usage-sink';

let upstream: Upstream;
const store: { table: RouteTable; loaded: boolean } = { table: EMPTY_TABLE, loaded: false };
const usage = createMemoryUsageSink();
const upstreams = new Upstreams({ connections: 4, unhealthyThreshold: 3, cooldownMs: 1000 });
// Never connected: these tests use APIs without keys, so the key cache must not be asked.
const idleRedis = new Redis({ lazyConnect: true, enableOfflineQueue: false });
let app: ReturnType<typeof buildApp>;
let config: ReturnType<typeof loadGatewayConfig>;
const ks = createKeyspace('tgapptest');

beforeAll(async () => {
  upstream = await startUpstream();
  config = loadGatewayConfig({ GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8', LOG_LEVEL: 'silent' });
  const memory = createMemoryLimiter();
  app = buildApp(config, {
    store,
    keys: new KeyCache({ redis: idleRedis, keyspace: ks, size: 10, ttlMs: 1000, negativeTtlMs: 1000 }),
    upstreams,
    limits: createLimitEnforcer({ keyspace: ks, redis: memory, memory }),
    usage,
    metrics: createMetrics(),
    logger: pino({ level: 'silent' }),
  });
  const snapshot = PolicySnapshot.parse({
    schemaVersion: 1,
    tenantId: 'ten_app',
    tenantSlug: 'app',
    version: 1,
    publishedAt: new Date().toISOString(),
    hosts: [],
    // The test upstream listens on 127.0.0.1.
    allowPrivateTargets: true,
    apis: [
      {
        id: 'api_open',
        slug: 'open',
        name: 'Open',
        basePath: '/open',
        version: 'v1',
        authMode: 'none',
        allowQueryKey: false,
        failMode: 'open',
        loadBalancing: 'round_robin',
        timeouts: { connectMs: 500, headersMs: 2000, requestMs: 2000 },
        retries: 0,
        jwt: null,
        targets: [{ id: 'tgt', url: upstream.url, weight: 1, healthCheck: null }],
        routes: [
          {
            id: 'rte_read',
            methods: ['GET'],
            path: '/items/:id',
            timeoutMs: null,
            cacheTtlSeconds: 0,
            transform: null,
            rateLimit: { limit: 2, windowSeconds: 60, algorithm: 'fixed_window' },
          },
        ],
      },
    ],
    plans: [],
  });
  store.table = buildRouteTable([compileTenant(snapshot)], 'localhost');
});

afterAll(async () => {
  await app.close();
  await upstreams.close();
  await upstream.close();
  idleRedis.disconnect();
});

describe('buildApp (inject)', () => {
  it('answers 503 until configuration is loaded', async () => {
    const res = await app.inject({ url: '/open/items/1', headers: { host: 'app.localhost' } });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('unavailable');
    store.loaded = true;
  });

  it('routes, answers 404/405 with the envelope, and meters usage for known APIs', async () => {
    const ok = await app.inject({ url: '/open/items/1', headers: { host: 'app.localhost' }, remoteAddress: '192.0.2.1' });
    expect(ok.statusCode).toBe(200);
    const noRoute = await app.inject({ url: '/open/other', headers: { host: 'app.localhost' } });
    expect(noRoute.statusCode).toBe(404);
    const wrongMethod = await app.inject({ method: 'DELETE', url: '/open/items/1', headers: { host: 'app.localhost' } });
    expect(wrongMethod.statusCode).toBe(405);
    expect(wrongMethod.headers.allow).toBe('GET');
    expect(wrongMethod.json().error).toMatchObject({ code: 'method_not_allowed', requestId: expect.any(String) });
    expect(wrongMethod.headers['x-request-id']).toBe(wrongMethod.json().error.requestId);
    const ids = usage.events.map((e) => e.status);
    expect(ids).toEqual(expect.arrayContaining([200, 404, 405]));
    expect(usage.events.find((e) => e.status === 405)?.rejected).toBe('invalid');
  });

  it('limits anonymous callers by client address, trusting X-Forwarded-For only from configured proxies', async () => {
    const fromProxy = (xff: string) =>
      app.inject({ url: '/open/items/2', headers: { host: 'app.localhost', 'x-forwarded-for': xff }, remoteAddress: '10.1.1.1' });
    expect((await fromProxy('198.51.100.7')).statusCode).toBe(200);
    expect((await fromProxy('198.51.100.7')).statusCode).toBe(200);
    const third = await fromProxy('198.51.100.7');
    expect(third.statusCode).toBe(429);
    expect(third.json().error.limit).toBe('route');
    expect(third.headers['x-request-id']).toBe(third.json().error.requestId);
    // Another client behind the same proxy has its own budget.
    expect((await fromProxy('198.51.100.8')).statusCode).toBe(200);
    // An untrusted peer can't pick its identity through the header.
    const spoof = await app.inject({
      url: '/open/items/2',
      headers: { host: 'app.localhost', 'x-forwarded-for': '198.51.100.9' },
      remoteAddress: '203.0.113.5',
    });
    expect(spoof.statusCode).toBe(200);
    expect(JSON.parse(spoof.body).headers['x-forwarded-for']).toBe('203.0.113.5');
  });
});

describe('a client that leaves while its call waits for the limiter', () => {
  // 'allow': the call would be forwarded; 'reject': the gateway would answer 429 itself (an
  // answer Fastify writes, whose onResponse never fires on a closed socket).
  it.each([
    { verdict: 'allow', rejected: null },
    { verdict: 'reject', rejected: 'rate' },
  ] as const)('is not forwarded, and is metered as 499 ($verdict)', async ({ verdict, rejected }) => {
    // The limiter holds the call until the test lets it go (a slow Redis, in effect).
    let called: () => void = () => undefined;
    const waiting = new Promise<void>((r) => (called = r));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const memory = createMemoryLimiter();
    const held: Limiter = {
      decide: async (req) => {
        called();
        await gate;
        // The route allows 2 calls per window: the third decision is a refusal.
        if (verdict === 'reject') for (let i = 0; i < 2; i++) await memory.decide(req);
        return memory.decide(req);
      },
    };
    const events = createMemoryUsageSink();
    const gated = buildApp(config, {
      store,
      keys: new KeyCache({ redis: idleRedis, keyspace: ks, size: 10, ttlMs: 1000, negativeTtlMs: 1000 }),
      upstreams,
      limits: createLimitEnforcer({ keyspace: ks, redis: held, memory }),
      usage: events,
      metrics: createMetrics(),
      logger: pino({ level: 'silent' }),
    });
    try {
      await gated.listen({ port: 0, host: '127.0.0.1' });
      const { port } = gated.server.address() as { port: number };
      const accepted = once(gated.server, 'connection') as Promise<[Socket]>;
      const socket = connect(port, '127.0.0.1');
      await once(socket, 'connect');
      const [serverSide] = await accepted;
      const forwardedBefore = upstream.requests.length;
      socket.write('GET /open/items/left HTTP/1.1\r\nHost: app.localhost\r\n\r\n');
      await waiting;
      socket.destroy();
      await once(serverSide, 'close');
      release();
      const event = await waitFor(() => events.events.find((e) => e.status === 499), { what: 'the 499 usage event' });
      expect(event).toMatchObject({ apiId: 'api_open', upstreamLatencyMs: null, bytesOut: 0, rejected });
      expect(upstream.requests.length).toBe(forwardedBefore);
      expect(events.events).toHaveLength(1);
    } finally {
      await gated.close();
    }
  });
});

describe('clientAddress', () => {
  const trusted = createTrustedProxyCheck(['10.0.0.0/8']);
  it('walks X-Forwarded-For from the right past trusted hops', () => {
    expect(clientAddress('10.0.0.1', '1.1.1.1, 10.0.0.2', trusted)).toBe('1.1.1.1');
    expect(clientAddress('8.8.8.8', '1.1.1.1', trusted)).toBe('8.8.8.8');
    expect(clientAddress('::ffff:10.0.0.1', ['2.2.2.2', '10.0.0.3'], trusted)).toBe('2.2.2.2');
  });
});
