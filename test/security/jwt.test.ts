import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, SignJWT } from 'jose';
import type { Redis } from 'ioredis';
import { createKeyspace, type JwtPolicy } from '@tollgate/policy';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testRedis, uniquePrefix } from '../harness';
import { makeApi, makeSnapshot, publishSnapshot, startUpstream, testGatewayConfig, type Upstream } from '../gateway/fixtures';
import { exchange, rawGet } from './fixtures';

// JWT attacks: tokens that never expire, tokens valid for years, and a failing JWKS endpoint
// used to make the gateway fetch it on every request.

const SECRET = 'an-hs256-secret-of-at-least-32-bytes!!';
const enc = new TextEncoder().encode(SECRET);
let redis: Redis;
let gw: Gateway;
let port: number;
let host: string;
let upstream: Upstream;
let jwks: Server;
let jwksHits = 0;

const jwt = (over: Partial<JwtPolicy> = {}): JwtPolicy => ({
  issuer: null,
  audience: null,
  jwksUrl: null,
  key: SECRET,
  algorithms: ['HS256'],
  forwardClaims: [],
  requireExp: true,
  maxLifetimeSeconds: 86_400,
  ...over,
});

beforeAll(async () => {
  redis = testRedis();
  const prefix = uniquePrefix('jwt');
  const ks = createKeyspace(prefix);
  upstream = await startUpstream();
  // A JWKS endpoint that redirects (jose refuses redirects) or fails, alternately.
  jwks = createServer((_req, res) => {
    jwksHits++;
    if (jwksHits % 2) res.writeHead(302, { location: 'http://127.0.0.1:1/jwks' }).end();
    else res.writeHead(500).end('down');
  });
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`;
  const snap = makeSnapshot(
    [
      makeApi(upstream.url, { basePath: '/jwt', authMode: 'jwt', jwt: jwt() }),
      makeApi(upstream.url, { basePath: '/noexp', authMode: 'jwt', jwt: jwt({ requireExp: false }) }),
      makeApi(upstream.url, { basePath: '/long', authMode: 'jwt', jwt: jwt({ maxLifetimeSeconds: 365 * 86_400 }) }),
      makeApi(upstream.url, { basePath: '/jwks', authMode: 'jwt', jwt: jwt({ key: null, jwksUrl, algorithms: ['RS256'] }) }),
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
  jwks?.close();
  await redis?.quit();
});

const now = () => Math.floor(Date.now() / 1000);
const status = async (path: string, token: string) =>
  (await exchange(port, rawGet(path, host, { authorization: `Bearer ${token}` }))).status;

describe('JWT attacks', () => {
  it('refuses a token without exp by default, accepts it where the API allows', async () => {
    const token = await new SignJWT({ sub: 'u1' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().sign(enc);
    expect(await status('/jwt/x', token)).toBe(401);
    expect(await status('/noexp/x', token)).toBe(200);
  });

  it("refuses a token living longer than the API's cap, also when a future iat disguises it", async () => {
    const long = await new SignJWT({ sub: 'u1' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt()
      .setExpirationTime(now() + 30 * 86_400)
      .sign(enc);
    expect(await status('/jwt/x', long)).toBe(401);
    expect(await status('/long/x', long)).toBe(200);
    const disguised = await new SignJWT({ sub: 'u1' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt(now() + 30 * 86_400 - 60)
      .setExpirationTime(now() + 30 * 86_400)
      .sign(enc);
    expect(await status('/jwt/x', disguised)).toBe(401);
    const fine = await new SignJWT({ sub: 'u1' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('5m').sign(enc);
    expect(await status('/jwt/x', fine)).toBe(200);
  });

  it('backs off a failing JWKS endpoint (302, 500) instead of fetching it on every request', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT({ sub: 'u1' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    const started = Date.now();
    const requests = 60;
    for (let i = 0; i < requests; i++) expect(await status('/jwks/x', token)).toBe(401);
    const elapsedMs = Date.now() - started;
    // Backoff from 1 s, doubling: at most one fetch per elapsed second (plus the first).
    expect(jwksHits).toBeGreaterThanOrEqual(1);
    expect(jwksHits).toBeLessThanOrEqual(1 + Math.ceil(elapsedMs / 1000));
    expect(jwksHits).toBeLessThan(requests / 4);
  });
});
