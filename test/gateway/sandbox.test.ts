// Test mode (ADR 0017): an API with a sandbox target sends test keys there and live keys never;
// an API without one serves test keys from its live targets. Every call is metered with who
// answered it and, for test keys, as test traffic.
import type { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace, type Keyspace } from '@tollgate/policy';
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

let redis: Redis;
let ks: Keyspace;
let gw: Gateway;
let port: number;
let host: string;
let live: IssuedKey;
let test: IssuedKey;
let liveUp: Upstream;
let sandboxUp: Upstream;
let plainUp: Upstream;

beforeAll(async () => {
  redis = testRedis();
  const prefix = uniquePrefix('sandbox');
  ks = createKeyspace(prefix);
  [liveUp, sandboxUp, plainUp] = await Promise.all([startUpstream(), startUpstream(), startUpstream()]);
  const withSandbox = makeApi([liveUp.url, sandboxUp.url], { basePath: '/sb' });
  withSandbox.targets[1]!.sandbox = true;
  const plain = makeApi(plainUp.url, { basePath: '/plain' });
  const plan = makePlan([withSandbox.id, plain.id]);
  const snap = makeSnapshot([withSandbox, plain], [plan]);
  host = `${snap.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snap);
  live = await issueKey(redis, ks, snap.tenantId, plan, { env: 'live' });
  test = await issueKey(redis, ks, snap.tenantId, plan, { env: 'test' });
  gw = await createGateway(testGatewayConfig(prefix, { GATEWAY_USAGE_BATCH_WAIT_MS: '10' }));
  ({ port } = await gw.listen());
});
afterAll(async () => {
  await gw?.shutdown();
  await Promise.all([liveUp, sandboxUp, plainUp].map((u) => u?.close()));
  await redis?.quit();
});

async function call(path: string, k: IssuedKey) {
  const res = await request(`http://127.0.0.1:${port}${path}`, { headers: { host, 'x-api-key': k.key } });
  await res.body.dump();
  return { status: res.statusCode, requestId: res.headers['x-request-id'] as string };
}

describe('sandbox targets', () => {
  it('send test keys to the sandbox and live keys never there', async () => {
    const calls = [];
    for (let i = 0; i < 6; i++) calls.push(await call('/sb/x', live), await call('/sb/x', test));
    expect(calls.map((c) => c.status)).toEqual(Array(12).fill(200));
    expect(liveUp.requests).toHaveLength(6);
    expect(sandboxUp.requests).toHaveLength(6);
    expect(sandboxUp.requests.every((r) => r.headers['x-tollgate-key-id'] === test.record.keyId)).toBe(true);
    expect(liveUp.requests.every((r) => r.headers['x-tollgate-key-id'] === live.record.keyId)).toBe(true);

    const [liveEvent, testEvent] = await queuedUsageEvents(redis, ks, [calls[0]!.requestId, calls[1]!.requestId]);
    expect(liveEvent).toMatchObject({ answeredBy: 'upstream', keyId: live.record.keyId });
    expect(liveEvent!.test).toBeUndefined();
    expect(testEvent).toMatchObject({ answeredBy: 'upstream', test: true, keyId: test.record.keyId });
  });

  it('without a sandbox target, test keys use the live targets', async () => {
    expect((await call('/plain/x', test)).status).toBe(200);
    expect(plainUp.requests).toHaveLength(1);
  });
});
