import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createKeyspace, type Keyspace } from '@tollgate/policy';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testRedis, uniquePrefix } from '../harness';
import { makeApi, makeSnapshot, publishSnapshot, startUpstream, testGatewayConfig, type Upstream } from '../gateway/fixtures';
import { exchange, rawGet } from './fixtures';

// DNS rebinding / SSRF at connect time: a target is checked when it is saved, but the name may
// resolve to a private address later. The gateway checks the address it actually dials, on every
// new connection, against the tenant's private-targets setting; metadata is never dialled.

let redis: Redis;
let ks: Keyspace;
let gw: Gateway;
let port: number;
let upstream: Upstream;
const hosts = { strict: '', relaxed: '' };

beforeAll(async () => {
  redis = testRedis();
  const prefix = uniquePrefix('rebind');
  ks = createKeyspace(prefix);
  upstream = await startUpstream();
  const upstreamPort = new URL(upstream.url).port;
  const apis = () => [
    // "localhost" stands for a public name that now resolves to a loopback address.
    makeApi(`http://localhost:${upstreamPort}`, { basePath: '/name', authMode: 'none', retries: 0 }),
    makeApi(`http://127.0.0.1:${upstreamPort}`, { basePath: '/literal', authMode: 'none', retries: 0 }),
    makeApi(`http://[::ffff:169.254.169.254]:${upstreamPort}`, { basePath: '/metadata-mapped', authMode: 'none', retries: 0 }),
    makeApi(`http://[64:ff9b::a9fe:a9fe]:${upstreamPort}`, { basePath: '/metadata-nat64', authMode: 'none', retries: 0 }),
    makeApi(`http://169.254.169.254:${upstreamPort}`, { basePath: '/metadata', authMode: 'none', retries: 0 }),
  ];
  const strict = makeSnapshot(apis(), [], { allowPrivateTargets: false });
  const relaxed = makeSnapshot(apis(), [], { allowPrivateTargets: true });
  await publishSnapshot(redis, ks, strict);
  await publishSnapshot(redis, ks, relaxed);
  hosts.strict = `${strict.tenantSlug}.localhost`;
  hosts.relaxed = `${relaxed.tenantSlug}.localhost`;
  gw = await createGateway(testGatewayConfig(prefix));
  ({ port } = await gw.listen());
});

afterAll(async () => {
  await gw?.shutdown();
  await upstream?.close();
  await redis?.quit();
});

describe('DNS rebinding and SSRF at connect time', () => {
  it('refuses to dial a name that resolves to a private address for a tenant without private targets', async () => {
    for (const path of ['/name/x', '/literal/x']) {
      const before = upstream.requests.length;
      const res = await exchange(port, rawGet(path, hosts.strict));
      expect(res.status, path).toBe(502);
      expect(upstream.requests.length, path).toBe(before);
    }
  });

  it('dials the same names for a tenant that allows private targets (one pool per setting)', async () => {
    for (const path of ['/name/x', '/literal/x']) {
      const before = upstream.requests.length;
      const res = await exchange(port, rawGet(path, hosts.relaxed));
      expect(res.status, path).toBe(200);
      expect(upstream.requests.length, path).toBe(before + 1);
    }
    // And the strict tenant still can't, though a pool to that origin now exists.
    expect((await exchange(port, rawGet('/literal/x', hosts.strict))).status).toBe(502);
  });

  it('never dials cloud metadata, in any IPv6 embedding, even with private targets allowed', async () => {
    for (const path of ['/metadata/latest', '/metadata-mapped/latest', '/metadata-nat64/latest']) {
      const res = await exchange(port, rawGet(path, hosts.relaxed), 15_000);
      expect(res.status, path).toBe(502);
    }
  });
});
