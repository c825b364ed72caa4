// The per-target circuit breaker over real sockets (ADR 0025): it opens on the failure ratio,
// answers 503 with Retry-After without reaching the upstream and unbilled, half-opens with a probe,
// and closes on success or reopens on failure.
import type { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace, type Keyspace } from '@tollgate/policy';
import { isBillable } from '@tollgate/usage';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testRedis, uniquePrefix, waitFor } from '../harness';
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

let redis: Redis;
let ks: Keyspace;
let gw: Gateway;
let port: number;
let host: string;
let flaky: Upstream;
let failing = false;
const keys = {} as Record<'a', IssuedKey>;

beforeAll(async () => {
  redis = testRedis();
  const prefix = uniquePrefix('breaker');
  ks = createKeyspace(prefix);
  flaky = await startUpstream((_req, res) => {
    res.writeHead(failing ? 500 : 200, { 'content-type': 'application/json' });
    res.end(failing ? '{"error":"boom"}' : '{"ok":true}');
  });
  const api = makeApi(flaky.url, {
    basePath: '/breaker',
    retries: 0,
    circuitBreaker: { failureRatio: 0.5, minRequests: 4, windowSeconds: 30, openSeconds: 1, halfOpenProbes: 1 },
  });
  const plan = makePlan([api.id]);
  const snap = makeSnapshot([api], [plan]);
  host = `${snap.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snap);
  keys.a = await issueKey(redis, ks, snap.tenantId, plan);
  gw = await createGateway(testGatewayConfig(prefix, { GATEWAY_USAGE_BATCH_WAIT_MS: '10' }));
  ({ port } = await gw.listen());
});
afterAll(async () => {
  await gw?.shutdown();
  await flaky?.close();
  await redis?.quit();
});

async function call(method: string, path: string, headers: Record<string, string> = {}) {
  const res = await request(`http://127.0.0.1:${port}${path}`, { method: method as 'GET', headers: { host, ...headers } });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, requestId: res.headers['x-request-id'] as string };
}
const withKey = (k: IssuedKey) => ({ 'x-api-key': k.key });

describe('circuit breaker', () => {
  it('opens on the failure ratio, answers 503 unbilled, half-opens with a probe and closes on success', async () => {
    failing = true;
    const failed = [];
    for (let i = 0; i < 4; i++) failed.push((await call('GET', '/breaker/x', withKey(keys.a))).status);
    expect(failed).toEqual([500, 500, 500, 500]);
    const reached = flaky.requests.length;

    const open = await call('GET', '/breaker/x', withKey(keys.a));
    expect(open.status).toBe(503);
    expect(Number(open.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(open.text).error.code).toBe('unavailable');
    expect(flaky.requests.length).toBe(reached);
    const [ev] = await queuedUsageEvents(redis, ks, [open.requestId]);
    expect(ev).toMatchObject({ status: 503, answeredBy: 'gateway', rejected: 'unavailable' });
    expect(isBillable(ev!)).toBe(false);

    // Half-open after openSeconds: the first call through is the probe; the upstream has recovered.
    failing = false;
    const probe = await waitFor(
      async () => {
        const r = await call('GET', '/breaker/x', withKey(keys.a));
        return r.status === 503 ? null : r;
      },
      { timeoutMs: 5000, intervalMs: 50, what: 'the circuit to half-open' },
    );
    expect(probe.status).toBe(200);
    expect(flaky.requests.length).toBe(reached + 1);
    // One successful probe closes it: calls flow again.
    for (let i = 0; i < 3; i++) expect((await call('GET', '/breaker/x', withKey(keys.a))).status).toBe(200);
  });

  it('reopens when the half-open probe fails', async () => {
    failing = true;
    for (let i = 0; i < 4; i++) await call('GET', '/breaker/x', withKey(keys.a));
    expect((await call('GET', '/breaker/x', withKey(keys.a))).status).toBe(503);
    const probe = await waitFor(
      async () => {
        const r = await call('GET', '/breaker/x', withKey(keys.a));
        return r.status === 503 ? null : r;
      },
      { timeoutMs: 5000, intervalMs: 50, what: 'the circuit to half-open' },
    );
    expect(probe.status).toBe(500);
    const again = await call('GET', '/breaker/x', withKey(keys.a));
    expect(again.status).toBe(503);
    failing = false;
  });
});
