// What the hot path asks of Redis, watched with MONITOR: a cached key costs exactly one limiter
// call per request and nothing else synchronous; concurrent requests share limiter calls without
// mixing up whose limit is whose.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { Redis } from 'ioredis';
import { createKeyspace, type Keyspace } from '@tollgate/policy';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testEnv, testRedis, uniquePrefix, waitFor } from '../harness';
import { startRedisMonitor, type RedisMonitor } from '../harness/redis-monitor';
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

let redis: Redis;
let monitor: RedisMonitor;
let ks: Keyspace;
let gw: Gateway;
let port: number;
let upstream: Upstream;
let host: string;
let tenantId: string;
let api: ReturnType<typeof makeApi>;
/** Every command Redis ran that touches this run's prefix, as [name, ...args]. */
const seen: string[][] = [];

async function get(key: IssuedKey, p = '/echo/x') {
  const res = await request(`http://127.0.0.1:${port}${p}`, { headers: { host, authorization: `Bearer ${key.key}` } });
  await res.body.dump();
  return { status: res.statusCode, headers: res.headers };
}

beforeAll(async () => {
  redis = testRedis();
  const prefix = uniquePrefix('gwcalls');
  ks = createKeyspace(prefix);
  monitor = await startRedisMonitor(testEnv().redisUrl);
  // Commands a script runs show up with source "lua": only what clients sent counts here.
  monitor.on(({ args, source }) => {
    if (source !== 'lua' && args.some((a) => a.includes(prefix))) seen.push(args);
  });
  upstream = await startUpstream();
  api = makeApi(upstream.url, { basePath: '/echo' });
  const snapshot = makeSnapshot([api], [makePlan([api.id])]);
  tenantId = snapshot.tenantId;
  host = `${snapshot.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snapshot);
  // No deny cache here: this file counts what reaches Redis per call (cold-keys.test.ts covers it).
  gw = await createGateway(testGatewayConfig(prefix, { GATEWAY_REDIS_TIMEOUT_MS: '2000', GATEWAY_DENY_CACHE_MAX_MS: '0' }));
  ({ port } = await gw.listen());
});

afterAll(async () => {
  monitor?.close();
  await gw?.shutdown();
  await upstream?.close();
  await redis?.quit();
});

const isLimiterCall = (args: string[]) => /^(evalsha|eval)$/i.test(args[0]!) && args.some((a) => a.includes(':rl:'));

describe('Redis calls on the hot path', () => {
  it('a cached key costs one limiter call per request and no other Redis command', async () => {
    const plan = makePlan([api.id], {
      rateLimit: { limit: 1000, windowSeconds: 60, algorithm: 'gcra' },
      quota: { limit: 100_000, mode: 'hard_cap' },
    });
    await publishSnapshot(redis, ks, makeSnapshot([api], [plan], { tenantId, version: 2, tenantSlug: host.split('.')[0]! }));
    await waitFor(() => gw.store.version >= 2, { what: 'snapshot v2' });
    const key = await issueKey(redis, ks, tenantId, plan);
    expect((await get(key)).status).toBe(200); // the first request reads the key record (and decides, ADR 0020)
    expect((await get(key)).status).toBe(200); // the first limiter call (a first EVALSHA may meet NOSCRIPT)
    await waitFor(() => seen.some((a) => a.some((x) => x.includes(key.hash))), { what: 'the key record read in MONITOR' });
    const marker = seen.length;
    const N = 20;
    for (let i = 0; i < N; i++) expect((await get(key)).status).toBe(200);
    // The last limiter call is seen once its request has been answered, so this is complete.
    await waitFor(() => seen.slice(marker).filter(isLimiterCall).length >= N, { what: `${N} limiter calls in MONITOR` });
    const during = seen.slice(marker).filter((a) => !/^(evalsha|eval)$/i.test(a[0]!) || isLimiterCall(a));
    const limiterCalls = during.filter(isLimiterCall);
    expect(limiterCalls).toHaveLength(N);
    // No key-record read, no other command carrying this key's or subscription's keys.
    const tag = key.record.subscriptionId!;
    const others = during.filter((a) => !isLimiterCall(a) && a.some((x) => x.includes(key.hash) || x.includes(tag)));
    expect(others.map((a) => a.join(' ').slice(0, 160))).toEqual([]);
  });

  it('concurrent requests of two keys go through the batching limiter, and each key gets its own limit', async () => {
    const small = makePlan([api.id], { rateLimit: { limit: 3, windowSeconds: 60, algorithm: 'fixed_window' } });
    const large = makePlan([api.id], { rateLimit: { limit: 5, windowSeconds: 60, algorithm: 'sliding_window' } });
    await publishSnapshot(redis, ks, makeSnapshot([api], [small, large], { tenantId, version: 3, tenantSlug: host.split('.')[0]! }));
    await waitFor(() => gw.store.version >= 3, { what: 'snapshot v3' });
    const a = await issueKey(redis, ks, tenantId, small);
    const b = await issueKey(redis, ks, tenantId, large);
    // Warm both key records so the burst below is decided by the limiter alone.
    await get(a);
    await get(b);
    const marker = seen.length;
    const burst = await Promise.all(Array.from({ length: 16 }, (_, i) => get(i % 2 ? b : a)));
    const ofA = burst.filter((_, i) => i % 2 === 0);
    const ofB = burst.filter((_, i) => i % 2 === 1);
    expect(ofA.filter((r) => r.status === 200)).toHaveLength(2); // 3 minus the warm-up call
    expect(ofB.filter((r) => r.status === 200)).toHaveLength(4); // 5 minus the warm-up call
    expect([...ofA, ...ofB].every((r) => r.status === 200 || r.status === 429)).toBe(true);
    for (const r of ofA) expect(r.headers['ratelimit-policy']).toBe('"plan";q=3;w=60');
    for (const r of ofB) expect(r.headers['ratelimit-policy']).toBe('"plan";q=5;w=60');
    // Every decision reached Redis once, whichever calls carried them (the limiter's own tests
    // pin down that one turn's decisions share one call; arrival over sockets isn't that exact).
    const decisionsIn = (calls: string[][]) => calls.reduce((n, c) => n + c.filter((x) => x.startsWith('[')).length, 0);
    await waitFor(() => decisionsIn(seen.slice(marker).filter(isLimiterCall)) >= 16, { what: '16 decisions in MONITOR' });
    expect(decisionsIn(seen.slice(marker).filter(isLimiterCall))).toBe(16);
  });
});
