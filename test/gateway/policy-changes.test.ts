import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { request } from 'undici';
import { writePolicySnapshot } from '@tollgate/db';
import { createKeyspace, type Keyspace, type PolicySnapshot } from '@tollgate/policy';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testRedis, uniquePrefix, waitFor } from '../harness';
import { issueKey, makeApi, makePlan, makeSnapshot, startUpstream, testGatewayConfig, type IssuedKey, type Upstream } from './fixtures';

let redis: Redis;
let ks: Keyspace;
let gw: Gateway;
let port: number;
let upstream: Upstream;
const tenants: { snapshot: PolicySnapshot; key: IssuedKey; host: string }[] = [];

async function call(i: number): Promise<number> {
  const t = tenants[i]!;
  const res = await request(`http://127.0.0.1:${port}/echo/x`, { headers: { host: t.host, 'x-api-key': t.key.key } });
  await res.body.dump();
  return res.statusCode;
}

beforeAll(async () => {
  redis = testRedis();
  const prefix = uniquePrefix('pchg');
  ks = createKeyspace(prefix);
  upstream = await startUpstream();
  for (let i = 0; i < 3; i++) {
    const api = makeApi(upstream.url);
    const plan = makePlan([api.id]);
    const snapshot = makeSnapshot([api], [plan]);
    // The control plane's own write: snapshot, versions hash, change stream, announcement.
    await writePolicySnapshot(redis, ks, snapshot);
    tenants.push({ snapshot, key: await issueKey(redis, ks, snapshot.tenantId, plan), host: `${snapshot.tenantSlug}.localhost` });
  }
  gw = await createGateway(testGatewayConfig(prefix, { GATEWAY_RESYNC_INTERVAL_MS: '200' }));
  ({ port } = await gw.listen());
});

afterAll(async () => {
  await gw?.shutdown();
  await upstream?.close();
  await redis?.quit();
});

/** Publishes tenant i's snapshot with its plan's rate limit changed. */
async function changePlan(i: number, limit: number, opts: { announce?: boolean } = {}): Promise<PolicySnapshot> {
  const t = tenants[i]!;
  const plan = { ...t.snapshot.plans[0]!, rateLimit: { limit, windowSeconds: 3600, algorithm: 'fixed_window' as const } };
  t.snapshot = { ...t.snapshot, version: t.snapshot.version + 1, plans: [plan] };
  expect(await writePolicySnapshot(redis, ks, t.snapshot, opts)).toBe('written');
  return t.snapshot;
}

describe('policy changes reach a running gateway one tenant at a time', () => {
  it('enforces a plan change published for tenant X without reloading tenant Y', async () => {
    for (let i = 0; i < tenants.length; i++) expect(await call(i)).toBe(200);
    const y = gw.store.table.tenants.get(tenants[1]!.snapshot.tenantId);
    const z = gw.store.table.tenants.get(tenants[2]!.snapshot.tenantId);
    const loaded = gw.store.stats.snapshotsLoaded;
    const fullResyncs = gw.store.stats.fullResyncs;

    const next = await changePlan(0, 1);
    await waitFor(() => gw.store.table.tenants.get(next.tenantId)?.version === next.version, { what: 'X v2 in the gateway' });
    await waitFor(async () => (await call(0)) === 429, { what: 'the new limit enforced for X' });

    expect(gw.store.stats.snapshotsLoaded - loaded).toBe(1);
    expect(gw.store.stats.fullResyncs).toBe(fullResyncs);
    // Y and Z: the very same compiled runtimes, still served.
    expect(gw.store.table.tenants.get(tenants[1]!.snapshot.tenantId)).toBe(y);
    expect(gw.store.table.tenants.get(tenants[2]!.snapshot.tenantId)).toBe(z);
    expect(await call(1)).toBe(200);
    expect(await call(2)).toBe(200);
  });

  it('follows a change that was never announced, through the change stream alone', async () => {
    const loaded = gw.store.stats.snapshotsLoaded;
    const next = await changePlan(1, 1, { announce: false });
    await waitFor(() => gw.store.table.tenants.get(next.tenantId)?.version === next.version, { what: 'Y v2 from the stream' });
    await waitFor(async () => (await call(1)) === 429, { what: 'the new limit enforced for Y' });
    expect(gw.store.stats.snapshotsLoaded - loaded).toBe(1);
    expect(await call(2)).toBe(200);
  });
});
