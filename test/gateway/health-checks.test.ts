import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace, type ApiPolicy, type Keyspace, type PolicySnapshot } from '@tollgate/policy';
import { HealthChecks, probeUrl } from '../../apps/gateway/src/proxy/health-checks';
import { compileTargets, Upstreams } from '../../apps/gateway/src/proxy/upstreams';
import { buildRouteTable, compileTenant } from '../../apps/gateway/src/routing/route-table';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testEnv, testRedis, uniquePrefix, waitFor } from '../harness';
import {
  makeApi,
  makeSnapshot,
  publishSnapshot,
  spawnGateway,
  startUpstream,
  type Upstream,
  testGatewayConfig,
  listenAdmin,
} from './fixtures';

const INTERVAL = 100;
let redis: Redis;
let ks: Keyspace;
let gw: Gateway;
let port: number;
let host: string;
let a: Upstream;
let b: Upstream;
let aHealth = 200;
let api: ApiPolicy;
let snapshot: PolicySnapshot;
let admin: Awaited<ReturnType<typeof listenAdmin>>;

/** An upstream whose /health answers `status()`; everything else says who it is. */
function upstream(name: string, status: () => number) {
  return startUpstream((req, res) => {
    if (req.url === '/health') {
      res.writeHead(status()).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ served: name }));
  });
}

const probes = (u: Upstream, url = '/health') => u.requests.filter((r) => r.url === url).length;
const served = (u: Upstream) => u.requests.filter((r) => r.url !== '/health' && r.url !== '/sentinel').length;
const healthCheck = { path: '/health', intervalMs: INTERVAL, unhealthyThreshold: 2, healthyThreshold: 2 };

async function call(p: string) {
  const res = await request(`http://127.0.0.1:${port}${p}`, { headers: { host } });
  return { status: res.statusCode, json: (await res.body.json()) as { served?: string } };
}

const metrics = (): Promise<string> => admin.metrics();

beforeAll(async () => {
  redis = testRedis();
  const prefix = uniquePrefix('hc');
  ks = createKeyspace(prefix);
  a = await upstream('a', () => aHealth);
  b = await upstream('b', () => 200);
  api = makeApi([a.url, b.url], { authMode: 'none', basePath: '/lb', retries: 0 });
  api.targets = api.targets.map((t) => ({ ...t, healthCheck }));
  snapshot = makeSnapshot([api], []);
  host = `${snapshot.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snapshot);
  gw = await createGateway(testGatewayConfig(prefix, { GATEWAY_REDIS_TIMEOUT_MS: '1000', GATEWAY_HEALTH_CHECK_TIMEOUT_MS: '500' }));
  ({ port } = await gw.listen());
  admin = await listenAdmin(gw);
});

afterAll(async () => {
  admin?.server.close();
  await gw?.shutdown();
  await a?.close();
  await b?.close();
  await redis?.quit();
});

describe('active health checks', () => {
  it('probe every target with a health check, one prober per target', async () => {
    expect(gw.healthChecks.size).toBe(2);
    await waitFor(() => probes(a) >= 2 && probes(b) >= 2, { what: 'probes on both targets' });
    const seen = a.requests.find((r) => r.url === '/health')!;
    expect(seen.headers['user-agent']).toBe('tollgate-gateway-health-check');
    const both = new Set<string>();
    for (let i = 0; i < 4; i++) both.add((await call('/lb/x')).json.served!);
    expect([...both].sort()).toEqual(['a', 'b']);
  });

  it('take a target whose health endpoint fails out of rotation, and bring it back after it recovers', async () => {
    aHealth = 500;
    const aKey = gw.store.table.tenants.get(snapshot.tenantId)!.apis[0]!.balancer.targets[0]!.healthKey!;
    await waitFor(() => gw.healthChecks.state(aKey)?.healthy === false, { what: 'target a to be marked unhealthy' });
    const text = await metrics();
    expect(text).toContain(
      `tollgate_gateway_upstream_target_healthy{tenant="${snapshot.tenantId}",api="${api.id}",target="${api.targets[0]!.id}",check="active"} 0`,
    );
    expect(text).toContain(
      `tollgate_gateway_upstream_target_healthy{tenant="${snapshot.tenantId}",api="${api.id}",target="${api.targets[1]!.id}",check="active"} 1`,
    );
    expect(text).toMatch(/tollgate_gateway_health_probes_total\{result="failure"\} [1-9]/);

    const before = served(a);
    for (let i = 0; i < 10; i++) {
      const res = await call('/lb/y');
      expect(res.status).toBe(200);
      expect(res.json.served).toBe('b');
    }
    expect(served(a)).toBe(before);

    aHealth = 200;
    // Back in rotation after `healthyThreshold` good probes: traffic reaches a again.
    await waitFor(async () => (await call('/lb/z')).json.served === 'a', {
      timeoutMs: 5000,
      intervalMs: 20,
      what: 'target a back in rotation',
    });
    expect(gw.healthChecks.state(aKey)?.healthy).toBe(true);
  });

  it('still serve when every target is unhealthy (the passive rule: try one rather than refuse)', async () => {
    const other = await upstream('c', () => 503);
    try {
      const lone = makeApi(other.url, { authMode: 'none', basePath: '/lone', retries: 0 });
      lone.targets = lone.targets.map((t) => ({ ...t, healthCheck }));
      snapshot = { ...snapshot, version: snapshot.version + 1, apis: [api, lone] };
      await publishSnapshot(redis, ks, snapshot);
      await waitFor(() => gw.healthChecks.size === 3, { what: 'the new target’s prober' });
      const key = gw.store.table.tenants.get(snapshot.tenantId)!.apis.find((x) => x.id === lone.id)!.balancer.targets[0]!.healthKey!;
      await waitFor(() => gw.healthChecks.state(key)?.healthy === false, { what: 'the lone target to be marked unhealthy' });
      const res = await call('/lone/x');
      expect(res.status).toBe(200);
      expect(res.json.served).toBe('c');
    } finally {
      await other.close();
    }
  });

  it('stop probing a target the snapshot drops, and keep probing the rest', async () => {
    const dropped = { ...api, targets: [api.targets[1]!] };
    snapshot = { ...snapshot, version: snapshot.version + 1, apis: [dropped] };
    await publishSnapshot(redis, ks, snapshot);
    await waitFor(() => gw.healthChecks.size === 1, { what: 'probers of dropped targets to stop' });
    // A probe already on the wire when it stopped may still land: count from b's next probe on.
    const bNext = probes(b) + 1;
    await waitFor(() => probes(b) >= bNext, { what: 'another probe on b' });
    const aBaseline = probes(a);
    const bBaseline = probes(b);
    await waitFor(() => probes(b) >= bBaseline + 3, { what: 'three more probes on b' });
    expect(probes(a)).toBe(aBaseline);
    expect(served(a)).toBeGreaterThan(0);
    expect((await call('/lb/after')).json.served).toBe('b');
  });

  it('stop every prober on shutdown', async () => {
    // A prober outside the gateway, on the same interval, is the clock: it keeps ticking while
    // the gateway's probes must not.
    const sentinelUpstreams = new Upstreams({ connections: 1, unhealthyThreshold: 3, cooldownMs: 1000 });
    const sentinel = new HealthChecks({ upstreams: sentinelUpstreams, timeoutMs: 500, logger: pino({ level: 'silent' }) });
    const sApi = makeApi(b.url, { basePath: '/s' });
    sApi.targets = sApi.targets.map((t) => ({ ...t, healthCheck: { ...healthCheck, path: '/sentinel' } }));
    sentinel.sync(buildRouteTable([compileTenant(makeSnapshot([sApi], []))], 'localhost'));
    try {
      await gw.shutdown();
      expect(gw.healthChecks.size).toBe(0);
      const first = probes(b, '/sentinel') + 1;
      await waitFor(() => probes(b, '/sentinel') >= first, { what: 'a sentinel probe' });
      const gatewayProbes = probes(b);
      const s0 = probes(b, '/sentinel');
      await waitFor(() => probes(b, '/sentinel') >= s0 + 3, { what: 'three more sentinel probes' });
      expect(probes(b)).toBe(gatewayProbes);
    } finally {
      await sentinel.stop();
      await sentinelUpstreams.close();
    }
  });
});

describe('active health checks in cluster mode', () => {
  it('report a failing target on the primary’s admin port (minimum over workers) and its recovery', async () => {
    const prefix = uniquePrefix('hccl');
    const cks = createKeyspace(prefix);
    let status = 500;
    const sick = await upstream('sick', () => status);
    const fine = await upstream('fine', () => 200);
    const capi = makeApi([sick.url, fine.url], { authMode: 'none', basePath: '/cl', retries: 0 });
    capi.targets = capi.targets.map((t) => ({ ...t, healthCheck: { ...healthCheck, intervalMs: 200 } }));
    const snap = makeSnapshot([capi], []);
    await publishSnapshot(redis, cks, snap);
    const g = await spawnGateway({
      REDIS_URL: testEnv().redisUrl,
      REDIS_PREFIX: prefix,
      GATEWAY_WORKERS: '2',
      GATEWAY_SPOOL_DIR: mkdtempSync(path.join(tmpdir(), 'tg-hccl-')),
    });
    const series = (target: string) =>
      `tollgate_gateway_upstream_target_healthy{tenant="${snap.tenantId}",api="${capi.id}",target="${target}",check="active"}`;
    try {
      const scrape = async () => (await request(`http://127.0.0.1:${g.adminPort}/metrics`)).body.text();
      await waitFor(async () => (await scrape()).includes(`${series(capi.targets[0]!.id)} 0`), {
        timeoutMs: 10_000,
        what: 'the sick target reported down',
      });
      const text = await scrape();
      expect(text).toContain(`${series(capi.targets[1]!.id)} 1`);
      status = 200;
      await waitFor(async () => (await scrape()).includes(`${series(capi.targets[0]!.id)} 1`), {
        timeoutMs: 10_000,
        what: 'the target reported healthy again',
      });
    } finally {
      expect(await g.stop()).toBe(0);
      await sick.close();
      await fine.close();
    }
  }, 60_000);
});

describe('health check paths', () => {
  it('never leave the target’s origin', () => {
    const target = compileTargets(makeApi('http://10.0.0.5:8080/base'))!.targets[0]!;
    expect(probeUrl(target, '/health')).toBe('http://10.0.0.5:8080/health');
    expect(probeUrl(target, '/health?deep=1')).toBe('http://10.0.0.5:8080/health?deep=1');
    expect(probeUrl(target, '//169.254.169.254/latest')).toBeNull();
    expect(probeUrl(target, '/\\evil.example/')).toBeNull();
    expect(probeUrl(target, 'health')).toBeNull();
    expect(probeUrl(target, '/he alth')).toBeNull();
    expect(probeUrl(target, '/@evil.example')).toBe('http://10.0.0.5:8080/@evil.example');
  });
});
