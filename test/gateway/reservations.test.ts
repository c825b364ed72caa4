// Limit reservations switched on (GATEWAY_LIMIT_RESERVATIONS, docs/adr/0013): a hot key's calls
// are mostly decided without a round trip, every response still carries its limit headers, no
// more than the limit gets through, and Redis counts exactly the calls made once the gateway stops.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { Redis } from 'ioredis';
import { createKeyspace, type Keyspace } from '@tollgate/policy';
import { createLimitKeys } from '@tollgate/ratelimit';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { monthPeriod } from '../../apps/gateway/src/limits/enforce-limits';
import { testEnv, testRedis, uniquePrefix, waitFor } from '../harness';
import { startRedisMonitor, type RedisMonitor } from '../harness/redis-monitor';
import {
  issueKey,
  makeApi,
  makePlan,
  makeSnapshot,
  publishSnapshot,
  startUpstream,
  testGatewayConfig,
  type IssuedKey,
  type Upstream,
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
let stopped = false;
let prefix: string;
/** Limiter script calls (EVALSHA/EVAL of the decision script) clients sent, and decisions they carried. */
const limiterDecisions: number[] = [];

async function get(key: IssuedKey) {
  const res = await request(`http://127.0.0.1:${port}/echo/x`, { headers: { host, authorization: `Bearer ${key.key}` } });
  await res.body.dump();
  return { status: res.statusCode, headers: res.headers };
}

/** `total` requests from `clients` concurrent clients, each waiting for its answer before the next. */
async function load(key: IssuedKey, total: number, clients = 16) {
  const out: Awaited<ReturnType<typeof get>>[] = [];
  let left = total;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (left > 0) {
        left--;
        out.push(await get(key));
      }
    }),
  );
  return out;
}

const quotaKey = (key: IssuedKey) =>
  createLimitKeys(ks, { keyId: key.record.keyId, subscriptionId: key.record.subscriptionId }).quota(monthPeriod(Date.now()).start);

beforeAll(async () => {
  redis = testRedis();
  prefix = uniquePrefix('gwrsv');
  ks = createKeyspace(prefix);
  monitor = await startRedisMonitor(testEnv().redisUrl);
  monitor.on(({ args, source }) => {
    if (source === 'lua' || !/^(evalsha|eval)$/i.test(args[0] ?? '')) return;
    if (args.some((a) => a.includes(`${prefix}:rl:`))) limiterDecisions.push(args.filter((a) => a.startsWith('[')).length);
  });
  upstream = await startUpstream();
  api = makeApi(upstream.url, { basePath: '/echo' });
  const snapshot = makeSnapshot([api], [makePlan([api.id])]);
  tenantId = snapshot.tenantId;
  host = `${snapshot.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snapshot);
  gw = await createGateway(testGatewayConfig(prefix, { GATEWAY_REDIS_TIMEOUT_MS: '2000', GATEWAY_LIMIT_RESERVATIONS: 'true' }));
  ({ port } = await gw.listen());
});

afterAll(async () => {
  monitor?.close();
  if (!stopped) await gw?.shutdown();
  await upstream?.close();
  await redis?.quit();
});

describe('limit reservations in the gateway', () => {
  let version = 1;
  async function publishPlan(plan: ReturnType<typeof makePlan>) {
    version++;
    await publishSnapshot(redis, ks, makeSnapshot([api], [plan], { tenantId, version, tenantSlug: host.split('.')[0]! }));
    await waitFor(() => gw.store.version >= version, { what: `snapshot v${version}` });
  }

  it('a hot key is mostly decided without a round trip, and every response carries its limit headers', async () => {
    const plan = makePlan([api.id], {
      rateLimit: { limit: 1_000_000, windowSeconds: 3600, algorithm: 'sliding_window' },
      quota: { limit: 1_000_000, mode: 'hard_cap' },
    });
    await publishPlan(plan);
    const key = await issueKey(redis, ks, tenantId, plan);
    await get(key); // reads the key record
    const marker = limiterDecisions.length;
    const out = await load(key, 1500);
    expect(out.every((r) => r.status === 200)).toBe(true);
    for (const r of out) {
      expect(r.headers['ratelimit-policy']).toMatch(/^"plan";q=1000000;w=3600, "quota";q=1000000;w=\d+$/);
      expect(r.headers['ratelimit']).toMatch(/^"plan";r=\d+;t=\d+, "quota";r=\d+;t=\d+$/);
      expect(Number(r.headers['x-ratelimit-remaining'])).toBeLessThan(1_000_000);
    }
    const decisions = limiterDecisions.slice(marker).reduce((n, d) => n + d, 0);
    expect(decisions).toBeGreaterThan(0);
    expect(decisions).toBeLessThan(750); // one per call without reservations: 1,500
    const metrics = await gw.metrics.registry.metrics();
    expect(metrics).toMatch(/tollgate_gateway_limit_reservations_total\{result="granted"\} [1-9]/);
    expect(metrics).toMatch(/tollgate_gateway_limit_reserved_calls_total\{use="decided"\} [1-9]/);
  });

  it('callers limited by IP (no API key) get reservations too, and the route limit still holds', async () => {
    const open = makeApi(upstream.url, {
      slug: 'open',
      basePath: '/open',
      authMode: 'none',
      routes: [
        {
          id: `rte_open_${Date.now()}`,
          methods: [],
          path: '/*',
          timeoutMs: null,
          cacheTtlSeconds: 0,
          transform: null,
          rateLimit: { limit: 1000, windowSeconds: 3600, algorithm: 'sliding_window' },
        },
      ],
    });
    version++;
    await publishSnapshot(
      redis,
      ks,
      makeSnapshot([api, open], [makePlan([api.id])], { tenantId, version, tenantSlug: host.split('.')[0]! }),
    );
    await waitFor(() => gw.store.version >= version, { what: `snapshot v${version}` });
    const marker = limiterDecisions.length;
    const statuses: number[] = [];
    let left = 1300;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (left-- > 0) {
          const res = await request(`http://127.0.0.1:${port}/open/x`, { headers: { host } });
          await res.body.dump();
          statuses.push(res.statusCode);
        }
      }),
    );
    // One process: exactly the limit, even with part of it decided from reservations.
    expect(statuses.filter((s) => s === 200)).toHaveLength(1000);
    expect(statuses.filter((s) => s === 429)).toHaveLength(300);
    const decisions = limiterDecisions.slice(marker).reduce((n, d) => n + d, 0);
    // One per call (1,300) without reservations; ~510 with them (blocks of 8 up to the limit, then
    // the 300 refusals, each decided in Redis).
    expect(decisions).toBeLessThan(800);
    expect(decisions).toBeGreaterThan(0);
  });

  it('a quota is never overrun, and its 429s say so', async () => {
    const plan = makePlan([api.id], {
      rateLimit: { limit: 1_000_000, windowSeconds: 3600, algorithm: 'sliding_window' },
      quota: { limit: 800, mode: 'hard_cap' },
    });
    await publishPlan(plan);
    const key = await issueKey(redis, ks, tenantId, plan);
    const out = await load(key, 1100);
    expect(out.filter((r) => r.status === 200)).toHaveLength(800);
    const refused = out.filter((r) => r.status === 429);
    expect(refused).toHaveLength(300);
    for (const r of refused) {
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(r.headers['x-ratelimit-limit']).toBe('800');
    }
  });

  it('a lowered quota takes effect at once: blocks reserved under the old plan are never used', async () => {
    const plan = makePlan([api.id], {
      rateLimit: { limit: 1_000_000, windowSeconds: 3600, algorithm: 'sliding_window' },
      quota: { limit: 1_000_000, mode: 'hard_cap' },
    });
    await publishPlan(plan);
    const key = await issueKey(redis, ks, tenantId, plan);
    expect((await load(key, 500)).every((r) => r.status === 200)).toBe(true);
    // The same plan, its quota now 20 above what was used. Whatever the old blocks still held
    // goes back once they idle; until then the counter only leads.
    await publishPlan({ ...plan, quota: { limit: 520, mode: 'hard_cap' } });
    await waitFor(async () => Number(await redis.get(quotaKey(key))) === 500, { what: 'the old blocks given back' });
    const after = await load(key, 100, 4);
    expect(after.filter((r) => r.status === 200)).toHaveLength(20);
    const refused = after.filter((r) => r.status === 429);
    expect(refused).toHaveLength(80);
    expect(refused.every((r) => r.headers['x-ratelimit-limit'] === '520')).toBe(true);
  });

  it('on shutdown the unused calls go back: Redis counts exactly the calls that were made', async () => {
    const plan = makePlan([api.id], {
      rateLimit: { limit: 1_000_000, windowSeconds: 3600, algorithm: 'sliding_window' },
      quota: { limit: 1_000_000, mode: 'hard_cap' },
    });
    await publishPlan(plan);
    const key = await issueKey(redis, ks, tenantId, plan);
    const out = await load(key, 700);
    expect(out.every((r) => r.status === 200)).toBe(true);
    // Reserved ahead of the calls: the count leads them until the gateway gives the rest back.
    expect(Number(await redis.get(quotaKey(key)))).toBeGreaterThanOrEqual(700);
    stopped = true;
    await gw.shutdown();
    expect(Number(await redis.get(quotaKey(key)))).toBe(700);
  });
});
