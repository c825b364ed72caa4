import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import type { Redis } from 'ioredis';
import { createKeyspace, subjectBindingHash, type JwtPolicy, type Keyspace, type PlanPolicy } from '@tollgate/policy';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testRedis, uniquePrefix } from '../harness';
import {
  makeApi,
  makeKeyRecord,
  makePlan,
  makeSnapshot,
  publishSnapshot,
  queuedUsageEvents,
  startUpstream,
  testGatewayConfig,
  type Upstream,
} from '../gateway/fixtures';
import { exchange, rawGet } from './fixtures';

// JWT callers bound to consumers (ADR 0028): a claim's value names a subject binding, and from
// there the caller is limited, metered and billed like a key; an unbound subject is refused.

const SECRET = 'an-hs256-secret-of-at-least-32-bytes!!';
const enc = new TextEncoder().encode(SECRET);
let redis: Redis;
let ks: Keyspace;
let gw: Gateway;
let port: number;
let host: string;
let upstream: Upstream;
let tenantId: string;
let plan: PlanPolicy;

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
  const prefix = uniquePrefix('jwtcon');
  ks = createKeyspace(prefix);
  upstream = await startUpstream();
  const bySub = makeApi(upstream.url, { basePath: '/sub', authMode: 'jwt', jwt: jwt({ consumerClaim: 'sub' }) });
  const byTenant = makeApi(upstream.url, { basePath: '/org', authMode: 'jwt', jwt: jwt({ consumerClaim: 'org_id' }) });
  plan = makePlan([bySub.id, byTenant.id], { rateLimit: { limit: 2, windowSeconds: 60, algorithm: 'fixed_window' } });
  const snap = makeSnapshot([bySub, byTenant, makeApi(upstream.url, { basePath: '/open', authMode: 'jwt', jwt: jwt() })], [plan]);
  tenantId = snap.tenantId;
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

const token = (claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('5m').sign(enc);
const call = async (path: string, claims: Record<string, unknown>) =>
  exchange(port, rawGet(path, host, { authorization: `Bearer ${await token(claims)}` }));

async function bind(value: string, subscriptionId: string) {
  const record = makeKeyRecord({ tenantId, planId: plan.id, subscriptionId, subscriptionStatus: 'active' });
  await redis.set(ks.key(subjectBindingHash(tenantId, value)), JSON.stringify(record));
  return record;
}

describe('JWT callers bound to consumers', () => {
  it('limits two bound subjects separately by their plan and bills each subscription', async () => {
    const alice = await bind('alice', 'sub_alice');
    await bind('bob', 'sub_bob');
    const a = [];
    for (let i = 0; i < 3; i++) a.push(await call('/sub/x', { sub: 'alice' }));
    const b = [];
    for (let i = 0; i < 3; i++) b.push(await call('/sub/x', { sub: 'bob' }));
    expect(a.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(b.map((r) => r.status)).toEqual([200, 200, 429]);
    const [evA, evB, evLimited] = await queuedUsageEvents(
      redis,
      ks,
      [a[0]!, b[1]!, a[2]!].map((r) => r.headers['x-request-id']!),
    );
    expect(evA).toMatchObject({ subscriptionId: 'sub_alice', consumerId: alice.consumerId, keyId: alice.keyId, planId: plan.id });
    expect(evB!.subscriptionId).toBe('sub_bob');
    expect(evLimited!.rejected).not.toBeNull();
  });

  it('refuses an unbound subject, a token without the claim, and a revoked binding with 403', async () => {
    const unbound = await call('/sub/x', { sub: 'mallory' });
    expect(unbound.status).toBe(403);
    expect(unbound.body).toContain('forbidden');
    expect((await call('/org/x', { sub: 'alice' })).status).toBe(403);
    expect((await call('/org/x', { sub: 'alice', org_id: { nested: true } })).status).toBe(403);
    const rec = await bind('acme', 'sub_acme');
    expect((await call('/org/x', { sub: 'anyone', org_id: 'acme' })).status).toBe(200);
    await redis.set(ks.key(subjectBindingHash(tenantId, 'carol')), JSON.stringify({ ...rec, keyId: 'key_carol', status: 'revoked' }));
    expect((await call('/org/x', { org_id: 'carol' })).status).toBe(403);
    const [ev] = await queuedUsageEvents(redis, ks, [unbound.headers['x-request-id']!]);
    expect(ev).toMatchObject({ rejected: 'forbidden', subscriptionId: null });
  });

  it('keeps unbilled subjects on an API without a consumer claim (unchanged behaviour)', async () => {
    expect((await call('/open/x', { sub: 'mallory' })).status).toBe(200);
  });

  it("never lets one tenant's binding serve another tenant (the hash includes the tenant)", () => {
    expect(subjectBindingHash(tenantId, 'alice')).not.toBe(subjectBindingHash('ten_other', 'alice'));
  });
});
