import type { ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace } from '@tollgate/policy';
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

// A request queued behind a pool whose connections are all busy waits at most the API's read
// timeout, and is never sent once the gateway has answered it.

let redis: Redis;
let gw: Gateway;
let up: Upstream;
let port: number;
let host: string;
let key: IssuedKey;
let prefix: string;
/** Responses the upstream holds until the test lets them go. */
const held: ServerResponse[] = [];
let heldArrived: () => void = () => undefined;

beforeAll(async () => {
  redis = testRedis();
  prefix = uniquePrefix('queue');
  const ks = createKeyspace(prefix);
  up = await startUpstream((req, res) => {
    if (req.url === '/hold') {
      held.push(res);
      heldArrived();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  // Two APIs on one upstream share its pool (same origin and connect timeout): /a waits for its
  // upstream as long as it takes, /q only 300 ms.
  const patient = makeApi(up.url, {
    slug: 'patient',
    basePath: '/a',
    retries: 0,
    timeouts: { connectMs: 1000, headersMs: 10_000, requestMs: 10_000 },
  });
  const quick = makeApi(up.url, {
    slug: 'quick',
    basePath: '/q',
    retries: 0,
    timeouts: { connectMs: 1000, headersMs: 300, requestMs: 10_000 },
  });
  const plan = makePlan([patient.id, quick.id]);
  const snap = makeSnapshot([patient, quick], [plan]);
  host = `${snap.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snap);
  key = await issueKey(redis, ks, snap.tenantId, plan);
  // One connection per upstream target: a second request has to queue for it.
  gw = await createGateway(testGatewayConfig(prefix, { GATEWAY_UPSTREAM_CONNECTIONS: '1' }));
  ({ port } = await gw.listen());
});

afterAll(async () => {
  for (const res of held) if (!res.writableEnded) res.end();
  await gw?.shutdown();
  await up?.close();
  await redis?.quit();
});

const get = (p: string) => request(`http://127.0.0.1:${port}${p}`, { headers: { host, 'x-api-key': key.key } });

describe('waiting for an upstream connection', () => {
  it('answers 504 after the read timeout instead of waiting for a busy pool, and never sends the request later', async () => {
    // The first call takes the only connection and keeps it: the upstream holds its response.
    const arrived = new Promise<void>((resolve) => (heldArrived = resolve));
    const first = get('/a/hold');
    await arrived;
    // The second queues behind it; its API's read timeout (300 ms) bounds the wait, far below
    // its 10 s route timeout and however long the first call takes.
    const started = Date.now();
    const second = await get('/q/queued');
    expect(second.statusCode).toBe(504);
    const body = (await second.body.json()) as { error: { code: string; requestId: string } };
    expect(body.error.code).toBe('gateway_timeout');
    expect(second.headers['x-request-id']).toBe(body.error.requestId);
    expect(Date.now() - started).toBeLessThan(5000);
    // The first call completes once the upstream answers; the timed-out one was never sent.
    held[0]!.writeHead(200, { 'content-type': 'text/plain' });
    held[0]!.end('done');
    const firstRes = await first;
    expect(firstRes.statusCode).toBe(200);
    expect(await firstRes.body.text()).toBe('done');
    // A third call goes through on the same connection, after the queued one would have gone.
    const third = await get('/q/after');
    expect(third.statusCode).toBe(200);
    await third.body.dump();
    expect(up.requests.map((r) => r.url)).toEqual(['/hold', '/after']);
    const [event] = await queuedUsageEvents(redis, createKeyspace(prefix), [body.error.requestId]);
    expect(event).toMatchObject({ status: 504, upstreamLatencyMs: expect.any(Number) });
  });

  it("queue timeouts are the gateway's own limit: they take no target out of rotation", async () => {
    const arrived = new Promise<void>((resolve) => (heldArrived = resolve));
    const first = get('/a/hold');
    await arrived;
    // More queue timeouts in a row than the unhealthy threshold (3).
    for (let i = 0; i < 4; i++) {
      const res = await get(`/q/queued-${i}`);
      expect(res.statusCode).toBe(504);
      await res.body.dump();
    }
    const metrics = await gw.metrics.registry.metrics();
    const passive = metrics
      .split('\n')
      .filter((l) => l.startsWith('tollgate_gateway_upstream_target_healthy{') && l.includes('check="passive"'));
    expect(passive.length).toBeGreaterThan(0);
    expect(passive.every((l) => l.endsWith(' 1'))).toBe(true);
    held.at(-1)!.writeHead(200, { 'content-type': 'text/plain' });
    held.at(-1)!.end('done');
    expect((await first).statusCode).toBe(200);
    expect(up.requests.filter((r) => r.url.startsWith('/queued-'))).toEqual([]);
  });
});
