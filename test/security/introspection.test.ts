import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createKeyspace, subjectBindingHash, type IntrospectionPolicy, type Keyspace, type PlanPolicy } from '@tollgate/policy';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testRedis, uniquePrefix } from '../harness';
import {
  makeApi,
  makeKeyRecord,
  makePlan,
  makeSnapshot,
  publishSnapshot,
  queuedUsageEvents,
  startUpstream,
  testGatewayConfig,
  type Upstream,
} from '../gateway/fixtures';
import { exchange, rawGet } from './fixtures';

// OAuth 2.0 token introspection (RFC 7662, ADR 0028) against a real local authorization server:
// cached and single-flight, inactive → 401, down or garbage → 503, hostile tokens never sent,
// and `client_id` bound to consumers so plans limit and usage bills as for keys.

let redis: Redis;
let ks: Keyspace;
let gw: Gateway;
let port: number;
let host: string;
let upstream: Upstream;
let as: Server;
let tenantId: string;
let plan: PlanPolicy;
const calls = new Map<string, number>();
const seenAuth = new Set<string>();

/** What the authorization server answers, by token. */
function answerFor(token: string): { status: number; body: string } {
  const now = Math.floor(Date.now() / 1000);
  if (token.startsWith('good'))
    return { status: 200, body: JSON.stringify({ active: true, exp: now + 60, sub: 'u-1', client_id: 'client-x', scope: 'read write' }) };
  if (token.startsWith('bound-'))
    return { status: 200, body: JSON.stringify({ active: true, exp: now + 60, client_id: token.slice(6), scope: 'read' }) };
  if (token === 'readonly')
    return { status: 200, body: JSON.stringify({ active: true, exp: now + 60, client_id: 'client-x', scope: 'read' }) };
  if (token === 'garbage') return { status: 200, body: '<html>not json' };
  if (token === 'huge') return { status: 200, body: JSON.stringify({ active: true, pad: 'x'.repeat(2_000_000) }) };
  if (token === 'weird') return { status: 200, body: JSON.stringify({ active: 'yes' }) };
  if (token === 'expired') return { status: 200, body: JSON.stringify({ active: true, exp: now - 10 }) };
  if (token === 'error') return { status: 500, body: '{}' };
  return { status: 200, body: JSON.stringify({ active: false }) };
}

const introspection = (endpoint: string, over: Partial<IntrospectionPolicy> = {}): IntrospectionPolicy => ({
  endpoint,
  clientId: 'gateway client',
  clientSecret: 's3cr3t:&',
  cacheMaxTtlSeconds: 30,
  requiredScopes: [],
  consumerClaim: null,
  ...over,
});

beforeAll(async () => {
  redis = testRedis();
  const prefix = uniquePrefix('introspect');
  ks = createKeyspace(prefix);
  upstream = await startUpstream();
  as = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seenAuth.add(req.headers.authorization ?? '');
      const token = new URLSearchParams(body).get('token') ?? '';
      calls.set(token, (calls.get(token) ?? 0) + 1);
      const a = answerFor(token);
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
    });
  });
  await new Promise<void>((r) => as.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(as.address() as AddressInfo).port}/introspect`;
  const bound = makeApi(upstream.url, {
    basePath: '/bound',
    authMode: 'introspection',
    introspection: introspection(endpoint, { consumerClaim: 'client_id' }),
  });
  plan = makePlan([bound.id], { rateLimit: { limit: 2, windowSeconds: 60, algorithm: 'fixed_window' } });
  const snap = makeSnapshot(
    [
      makeApi(upstream.url, { basePath: '/oauth', authMode: 'introspection', introspection: introspection(endpoint) }),
      makeApi(upstream.url, {
        basePath: '/scoped',
        authMode: 'introspection',
        introspection: introspection(endpoint, { requiredScopes: ['write'] }),
      }),
      makeApi(upstream.url, {
        basePath: '/down',
        authMode: 'introspection',
        introspection: introspection('http://127.0.0.1:1/introspect'),
      }),
      makeApi(upstream.url, {
        basePath: '/metadata',
        authMode: 'introspection',
        introspection: introspection('http://169.254.169.254/introspect'),
      }),
      bound,
    ],
    [plan],
  );
  tenantId = snap.tenantId;
  await publishSnapshot(redis, ks, snap);
  host = `${snap.tenantSlug}.localhost`;
  gw = await createGateway(testGatewayConfig(prefix));
  ({ port } = await gw.listen());
});

afterAll(async () => {
  await gw?.shutdown();
  await upstream?.close();
  as?.close();
  await redis?.quit();
});

const call = (path: string, token: string | Buffer) =>
  exchange(
    port,
    Buffer.isBuffer(token)
      ? Buffer.concat([
          Buffer.from(`GET ${path} HTTP/1.1\r\nhost: ${host}\r\nauthorization: Bearer `),
          token,
          Buffer.from('\r\nconnection: close\r\n\r\n'),
        ])
      : rawGet(path, host, { authorization: `Bearer ${token}` }),
  );

describe('OAuth token introspection', () => {
  it('accepts an active token and asks the endpoint with client_secret_basic', async () => {
    const r = await call('/oauth/x', 'good-1');
    expect(r.status).toBe(200);
    expect(calls.get('good-1')).toBe(1);
    expect(seenAuth).toContain(`Basic ${Buffer.from('gateway+client:s3cr3t%3A%26').toString('base64')}`);
  });

  it('makes one introspection call for 20 concurrent requests and for the repeats that follow', async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, () => call('/oauth/x', 'good-burst')));
    expect(rs.map((r) => r.status)).toEqual(Array(20).fill(200));
    for (let i = 0; i < 5; i++) expect((await call('/oauth/x', 'good-burst')).status).toBe(200);
    expect(calls.get('good-burst')).toBe(1);
  });

  it('answers 401 for an inactive token, caching the negative answer too', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await call('/oauth/x', 'revoked-token');
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toContain('invalid_token');
    }
    expect(calls.get('revoked-token')).toBe(1);
    expect((await call('/oauth/x', 'expired')).status).toBe(401);
  });

  it('answers 401 without a token', async () => {
    expect((await exchange(port, rawGet('/oauth/x', host))).status).toBe(401);
  });

  it('refuses overlong and binary tokens without calling the endpoint', async () => {
    const before = [...calls.values()].reduce((a, b) => a + b, 0);
    expect((await call('/oauth/x', 'a'.repeat(5000))).status).toBe(401);
    expect((await call('/oauth/x', Buffer.from([0x61, 0x80, 0xff, 0x62]))).status).toBeGreaterThanOrEqual(400);
    expect((await call('/oauth/x', 'tok"en,with;junk')).status).toBe(401);
    expect([...calls.values()].reduce((a, b) => a + b, 0)).toBe(before);
  });

  it('answers 503 (not 401) when the endpoint is down, errs, or answers garbage or a huge body', async () => {
    const down = await call('/down/x', 'good-2');
    expect(down.status).toBe(503);
    expect(down.body).not.toMatch(/ECONNREFUSED|stack/);
    for (const token of ['garbage', 'huge', 'weird', 'error']) {
      const r = await call('/oauth/x', token);
      expect(r.status, token).toBe(503);
    }
    // Unusable answers are not cached as answers: asked again next time (after any backoff).
    expect(calls.get('garbage')).toBe(1);
  });

  it('never asks an endpoint on a cloud metadata address', async () => {
    expect((await call('/metadata/x', 'good-3')).status).toBe(503);
  });

  it('answers 403 insufficient_scope when a required scope is missing', async () => {
    expect((await call('/scoped/x', 'good-4')).status).toBe(200);
    const r = await call('/scoped/x', 'readonly');
    expect(r.status).toBe(403);
    expect(r.headers['www-authenticate']).toContain('insufficient_scope');
  });
});

describe('introspected clients bound to consumers', () => {
  it('limits each bound client_id by its own plan, bills its subscription, and refuses an unbound one', async () => {
    const a = makeKeyRecord({ tenantId, planId: plan.id, subscriptionId: 'sub_a', subscriptionStatus: 'active' });
    const b = makeKeyRecord({ tenantId, planId: plan.id, subscriptionId: 'sub_b', subscriptionStatus: 'active' });
    await redis.set(ks.key(subjectBindingHash(tenantId, 'client-a')), JSON.stringify(a));
    await redis.set(ks.key(subjectBindingHash(tenantId, 'client-b')), JSON.stringify(b));
    const statuses = async (token: string) => {
      const out: number[] = [];
      for (let i = 0; i < 3; i++) out.push((await call('/bound/x', token)).status);
      return out;
    };
    expect(await statuses('bound-client-a')).toEqual([200, 200, 429]);
    expect(await statuses('bound-client-b')).toEqual([200, 200, 429]);
    const ok = await call('/bound/x', 'bound-client-b');
    expect(ok.status).toBe(429);
    const unbound = await call('/bound/x', 'bound-client-c');
    expect(unbound.status).toBe(403);
    const first = await call('/bound/x', 'bound-client-a');
    const [ev, evUnbound] = await queuedUsageEvents(redis, ks, [first.headers['x-request-id']!, unbound.headers['x-request-id']!]);
    expect(ev!.subscriptionId).toBe('sub_a');
    expect(ev!.consumerId).toBe(a.consumerId);
    expect(ev!.keyId).toBe(a.keyId);
    expect(evUnbound!.rejected).toBe('forbidden');
    expect(evUnbound!.subscriptionId).toBeNull();
  });
});
