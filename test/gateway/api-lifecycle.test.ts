import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createKeyspace, lifecycleHeaders } from '@tollgate/policy';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testRedis, uniquePrefix } from '../harness';
import { makeApi, makeSnapshot, publishSnapshot, startUpstream, testGatewayConfig, type Upstream } from './fixtures';
import { exchange, rawGet } from '../security/fixtures';

// Deprecation (RFC 9745) and Sunset (RFC 8594) announced per API version (ADR 0028).

let redis: Redis;
let gw: Gateway;
let port: number;
let host: string;
let upstream: Upstream;
const deprecatedAt = Date.UTC(2026, 0, 1);
const sunsetAt = Date.UTC(2027, 5, 30, 12);

beforeAll(async () => {
  redis = testRedis();
  const prefix = uniquePrefix('lifecycle');
  const ks = createKeyspace(prefix);
  // The upstream announces its own (wrong) dates: the gateway's policy wins.
  upstream = await startUpstream((_req, res) =>
    res.writeHead(200, { deprecation: '@1', sunset: 'never', link: '<https://up/x>; rel="next"' }).end('ok'),
  );
  const snap = makeSnapshot(
    [
      makeApi(upstream.url, {
        basePath: '/v1',
        authMode: 'none',
        lifecycle: { deprecatedAt, sunsetAt, link: 'https://docs.example.com/migrate-to-v2' },
      }),
      makeApi(upstream.url, { basePath: '/v2', authMode: 'none', lifecycle: null }),
    ],
    [],
  );
  await publishSnapshot(redis, ks, snap);
  host = `${snap.tenantSlug}.localhost`;
  gw = await createGateway(testGatewayConfig(prefix));
  ({ port } = await gw.listen());
});

afterAll(async () => {
  await gw?.shutdown();
  await upstream?.close();
  await redis?.quit();
});

describe('API deprecation and sunset headers', () => {
  it('announces Deprecation, Sunset and the deprecation link on a deprecated version only', async () => {
    const old = await exchange(port, rawGet('/v1/x', host));
    expect(old.status).toBe(200);
    expect(old.headers['deprecation']).toBe(`@${deprecatedAt / 1000}`);
    expect(old.headers['sunset']).toBe('Wed, 30 Jun 2027 12:00:00 GMT');
    expect(old.raw).toContain('link: <https://docs.example.com/migrate-to-v2>; rel="deprecation"; type="text/html"');
    expect(old.raw).toContain('rel="next"');
    expect(old.raw.match(/^deprecation:/gim)).toHaveLength(1);
    const current = await exchange(port, rawGet('/v2/x', host));
    expect(current.status).toBe(200);
    expect(current.headers['deprecation']).toBe('@1');
  });

  it('never puts a link that could break the header into it', () => {
    expect(lifecycleHeaders({ deprecatedAt: null, sunsetAt: null, link: 'https://x/a>b' })).toEqual({});
    expect(lifecycleHeaders({ deprecatedAt: 0, sunsetAt: null, link: null })).toEqual({ deprecation: '@0' });
  });
});
