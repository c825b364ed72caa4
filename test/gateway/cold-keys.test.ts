// Cold keys and refusals, watched with MONITOR (docs/adr/0020): a key not in the cache costs one
// script call that reads its record and decides its limits; a key over its limit is refused
// locally until its reset, so a 429 flood costs Redis almost nothing.
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
/** Every command Redis ran that touches this run's prefix, scripts' own included: [source, name, ...args]. */
const seen: string[][] = [];

async function get(key: IssuedKey | string, p = '/echo/x') {
  const k = typeof key === 'string' ? key : key.key;
  const res = await request(`http://127.0.0.1:${port}${p}`, { headers: { host, authorization: `Bearer ${k}` } });
  await res.body.dump();
  return { status: res.statusCode, headers: res.headers };
}

async function publish(version: number, plans: ReturnType<typeof makePlan>[]) {
  await publishSnapshot(redis, ks, makeSnapshot([api], plans, { tenantId, version, tenantSlug: host.split('.')[0]! }));
  await waitFor(() => gw.store.version >= version, { what: `snapshot v${version}` });
}

/** Waits until MONITOR has shown a command naming `marker`: everything sent before it has been seen too. */
async function fence(marker: string) {
  await redis.get(`${ks.prefix}:fence:${marker}`);
  await waitFor(() => seen.some((a) => a[2]?.includes(`fence:${marker}`)), { what: `fence ${marker} in MONITOR` });
}

beforeAll(async () => {
  redis = testRedis();
  const prefix = uniquePrefix('gwcold');
  ks = createKeyspace(prefix);
  monitor = await startRedisMonitor(testEnv().redisUrl);
  monitor.on(({ args, source }) => {
    if (args.some((a) => a.includes(prefix))) seen.push([source, ...args]);
  });
  upstream = await startUpstream();
  api = makeApi(upstream.url, { basePath: '/echo' });
  const snapshot = makeSnapshot([api], [makePlan([api.id])]);
  tenantId = snapshot.tenantId;
  host = `${snapshot.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snapshot);
  gw = await createGateway(testGatewayConfig(prefix, { GATEWAY_REDIS_TIMEOUT_MS: '2000', GATEWAY_LIMIT_RESERVATIONS: 'false' }));
  ({ port } = await gw.listen());
  // The gateway's connection loads both scripts now (a first EVALSHA can meet NOSCRIPT and be
  // sent again as EVAL): the tests below then see one call per script run.
  const warm = await issueKey(redis, ks, tenantId, snapshot.plans[0]!);
  for (let i = 0; i < 2; i++) expect((await get(warm)).status).toBe(200);
});

afterAll(async () => {
  monitor?.close();
  await gw?.shutdown();
  await upstream?.close();
  await redis?.quit();
});

/** Commands naming `tag`, usage metering (the queue's, under `:bull:`) aside: clients' own, or scripts' too. */
const limiting = (a: string[], tag: string) => a.some((x) => x.includes(tag)) && !a.some((x) => x.includes(':bull:'));
const clientCommands = (from: number, tag: string) => seen.slice(from).filter((a) => a[0] !== 'lua' && limiting(a, tag));
const allCommands = (from: number, tag: string) => seen.slice(from).filter((a) => limiting(a, tag));

describe('a cold key', () => {
  it('costs one script call: the record read and the limit decision together, counted once', async () => {
    const plan = makePlan([api.id], {
      rateLimit: { limit: 50, windowSeconds: 60, algorithm: 'sliding_window' },
      quota: { limit: 1000, mode: 'hard_cap' },
    });
    await publish(2, [plan]);
    const key = await issueKey(redis, ks, tenantId, plan);
    const from = seen.length;
    const first = await get(key);
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit']).toMatch(/^"plan";r=49;t=\d+, "quota";r=999;t=\d+$/);
    await fence('cold1');
    // What the gateway sent naming this key: one script call, carrying the record key.
    const sent = seen.slice(from).filter((a) => a[0] !== 'lua' && a.some((x) => x.includes(key.hash)));
    expect(sent.map((a) => a[1]!.toLowerCase())).toEqual(['evalsha']);
    const tag = key.record.subscriptionId!;
    expect(clientCommands(from, tag)).toHaveLength(0); // no separate limiter call
    // The next call is a cached key's: the ordinary limiter call only, no record read.
    const mid = seen.length;
    expect((await get(key)).status).toBe(200);
    await fence('cold2');
    expect(seen.slice(mid).filter((a) => a[0] !== 'lua' && a.some((x) => x.includes(key.hash)))).toHaveLength(0);
    expect(clientCommands(mid, tag).map((a) => a[1]!.toLowerCase())).toEqual(['evalsha']);
    // Both calls counted once each, in the same counters.
    const quotaKeys = await redis.keys(`${ks.prefix}:quota:{${tag}}:*`);
    expect(quotaKeys).toHaveLength(1);
    expect(await redis.get(quotaKeys[0]!)).toBe('2');
  });

  it('that is unknown, revoked or not allowed here is refused and counts nothing', async () => {
    const plan = makePlan([api.id], { rateLimit: { limit: 5, windowSeconds: 60, algorithm: 'fixed_window' }, quota: null });
    const other = makePlan([], { rateLimit: { limit: 5, windowSeconds: 60, algorithm: 'fixed_window' }, quota: null });
    await publish(3, [plan, other]);
    const revoked = await issueKey(redis, ks, tenantId, plan, { status: 'revoked' });
    const elsewhere = await issueKey(redis, ks, tenantId, other);
    const foreign = await issueKey(redis, ks, 'ten_someone_else', plan);
    expect((await get(revoked)).status).toBe(401);
    expect((await get(elsewhere)).status).toBe(403);
    expect((await get(foreign)).status).toBe(401);
    expect((await get('tg_test_' + 'A'.repeat(40))).status).toBe(401); // malformed: no Redis at all
    for (const k of [revoked, elsewhere, foreign]) expect(await redis.keys(`${ks.prefix}:rl:{${k.record.subscriptionId}}:*`)).toEqual([]);
  });
});

describe('a key over its limit', () => {
  it('is refused locally until its reset: a 429 flood costs < 1 Redis command per 100 refusals', async () => {
    const plan = makePlan([api.id], { rateLimit: { limit: 3, windowSeconds: 60, algorithm: 'fixed_window' }, quota: null });
    await publish(4, [plan]);
    const key = await issueKey(redis, ks, tenantId, plan);
    const tag = key.record.subscriptionId!;
    for (let i = 0; i < 3; i++) expect((await get(key)).status).toBe(200);
    const refusal = await get(key); // Redis refuses this one and names the reset
    expect(refusal.status).toBe(429);
    await fence('flood-start');
    const from = seen.length;
    const N = 400;
    const statuses: number[] = [];
    for (let c = 0; c < N / 20; c++) statuses.push(...(await Promise.all(Array.from({ length: 20 }, () => get(key)))).map((r) => r.status));
    expect(statuses.filter((s) => s === 429)).toHaveLength(N);
    await fence('flood-end');
    // Every command touching this key's record or counters, the scripts' own included. (Usage
    // metering of the refused calls is apart: one queue job per batch of events, not per call.)
    const during = allCommands(from, tag);
    expect(during.map((a) => a.join(' ').slice(0, 160))).toEqual([]);
    expect(during.length).toBeLessThan(N / 100);
    // The local refusal says what Redis said: the same limit, a shorter wait.
    const last = await get(key);
    expect(last.status).toBe(429);
    expect(last.headers['ratelimit-policy']).toBe('"plan";q=3;w=60');
    expect(Number(last.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(last.headers['retry-after'])).toBeLessThanOrEqual(Number(refusal.headers['retry-after']));
  });

  it('a new plan is decided afresh, not refused from the old one', async () => {
    const small = makePlan([api.id], { rateLimit: { limit: 1, windowSeconds: 60, algorithm: 'fixed_window' }, quota: null });
    await publish(5, [small]);
    const key = await issueKey(redis, ks, tenantId, small);
    expect((await get(key)).status).toBe(200);
    expect((await get(key)).status).toBe(429);
    // The same plan id with a larger limit (an upgrade): its new request is not in the deny cache.
    await publish(6, [{ ...small, rateLimit: { limit: 100, windowSeconds: 60, algorithm: 'fixed_window' } }]);
    expect((await get(key)).status).toBe(200);
  });
});
