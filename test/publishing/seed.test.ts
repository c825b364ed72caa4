import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { hashApiKey, verifyPassword } from '@tollgate/keys';
import { KeyRecord, PolicySnapshot } from '@tollgate/policy';
import { testEnv, testKeyspace, testRedis } from '../harness';
import { createIsolatedDatabase } from './helpers';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let env: Awaited<ReturnType<typeof createIsolatedDatabase>>;
let redis: Redis;
let dir: string;
const ks = () => keyspace;
let keyspace: ReturnType<typeof testKeyspace>;

beforeAll(async () => {
  env = await createIsolatedDatabase();
  redis = testRedis();
  keyspace = testKeyspace('seed');
  dir = mkdtempSync(path.join(tmpdir(), 'tg-seed-'));
});
afterAll(async () => {
  redis?.disconnect();
  rmSync(dir, { recursive: true, force: true });
  await env?.drop();
});

function runSeed(extra: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'prisma/seed.ts')], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      ...process.env,
      DATABASE_URL: env.url,
      REDIS_URL: testEnv().redisUrl,
      REDIS_PREFIX: ks().prefix,
      SEED_TENANT_SLUG: 'demo',
      DEMO_KEY_FILE: path.join(dir, 'demo-api-key'),
      DEMO_UPSTREAM_URL: 'http://127.0.0.1:4000',
      ...extra,
    },
  });
  const key = /curl -H "X-API-Key: (tg_live_[0-9A-Za-z]+)" (\S+)/.exec(r.stdout);
  return { ...r, key: key?.[1], url: key?.[2] };
}

const counts = async () => ({
  tenants: await env.db.tenant.count(),
  users: await env.db.user.count(),
  memberships: await env.db.membership.count(),
  apis: await env.db.api.count(),
  routes: await env.db.route.count(),
  targets: await env.db.upstreamTarget.count(),
  plans: await env.db.plan.count(),
  consumers: await env.db.consumer.count(),
  subscriptions: await env.db.subscription.count(),
  keys: await env.db.apiKey.count(),
});

describe('prisma/seed.ts', { timeout: 90_000 }, () => {
  it('creates the demo, publishes it to Redis and prints the login, key and a curl command', async () => {
    const r = runSeed();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('owner@demo.tollgate.local / tollgate-demo');
    expect(r.url).toBe('http://demo.localhost:8080/echo/get');
    expect(readFileSync(path.join(dir, 'demo-api-key'), 'utf8').trim()).toBe(r.key);
    expect(statSync(path.join(dir, 'demo-api-key')).mode & 0o777).toBe(0o600);

    const tenant = await env.db.tenant.findUniqueOrThrow({ where: { slug: 'demo' } });
    const owner = await env.db.user.findUniqueOrThrow({ where: { email: 'owner@demo.tollgate.local' } });
    expect(owner.passwordHash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifyPassword('tollgate-demo', owner.passwordHash)).toBe(true);
    const pro = await env.db.plan.findUniqueOrThrow({ where: { tenantId_slug: { tenantId: tenant.id, slug: 'pro' } } });
    expect(pro).toMatchObject({
      rateLimit: 100,
      monthlyQuota: 100_000,
      quotaMode: 'OVERAGE',
      flatFeeMinor: 2900,
      includedRequests: 10_000,
      overageUnitPriceMinor: 1,
      overageBlockSize: 10,
    });

    const snap = PolicySnapshot.parse(JSON.parse((await redis.get(ks().policy(tenant.id)))!));
    expect(snap.apis[0]).toMatchObject({ basePath: '/echo', targets: [{ url: 'http://127.0.0.1:4000' }], routes: [{ path: '/*' }] });
    expect(snap.plans.map((p) => p.slug).sort()).toEqual(['free', 'pro']);
    const rec = KeyRecord.parse(JSON.parse((await redis.get(ks().key(hashApiKey(r.key!))))!));
    expect(rec).toMatchObject({ tenantId: tenant.id, status: 'active', subscriptionStatus: 'active' });
    expect(await env.db.outboxEvent.count({ where: { publishedAt: null } })).toBe(0);
  });

  it('reuses everything on a second run: same rows, same key, nothing duplicated', async () => {
    const before = await counts();
    const version = (await env.db.tenant.findUniqueOrThrow({ where: { slug: 'demo' } })).policyVersion;
    const key = readFileSync(path.join(dir, 'demo-api-key'), 'utf8').trim();
    // GATEWAY_PUBLIC_URL in the console's pattern form: the seed fills in the demo tenant.
    const r = runSeed({ GATEWAY_PUBLIC_URL: 'https://{tenant}.gw.example.test' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('reused the existing demo data');
    expect(r.url).toBe('https://demo.gw.example.test/echo/get');
    expect(r.key).toBe(key);
    expect(await counts()).toEqual(before);
    expect((await env.db.tenant.findUniqueOrThrow({ where: { slug: 'demo' } })).policyVersion).toBe(version);
  });

  it('follows a moved upstream, and rolls a fresh key when the saved one is lost', async () => {
    const oldKey = readFileSync(path.join(dir, 'demo-api-key'), 'utf8').trim();
    unlinkSync(path.join(dir, 'demo-api-key'));
    const r = runSeed({ DEMO_UPSTREAM_URL: 'http://127.0.0.1:4555' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.key).toBeTruthy();
    expect(r.key).not.toBe(oldKey);
    const old = await env.db.apiKey.findUniqueOrThrow({ where: { hash: hashApiKey(oldKey) } });
    expect(old.status).toBe('REVOKED');
    const oldRec = KeyRecord.parse(JSON.parse((await redis.get(ks().key(hashApiKey(oldKey))))!));
    expect(oldRec.status).toBe('revoked');
    const tenant = await env.db.tenant.findUniqueOrThrow({ where: { slug: 'demo' } });
    const snap = PolicySnapshot.parse(JSON.parse((await redis.get(ks().policy(tenant.id)))!));
    expect(snap.apis[0]!.targets[0]!.url).toBe('http://127.0.0.1:4555');
    expect(await env.db.apiKey.count({ where: { status: 'ACTIVE' } })).toBe(1);
  });

  it('rejects hostile configuration with exit code 2 and touches nothing', async () => {
    const before = await counts();
    const r = runSeed({ SEED_TENANT_SLUG: '../../etc; DROP', DEMO_UPSTREAM_URL: 'not a url', GATEWAY_PUBLIC_URL: '{tenant} nowhere' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('GATEWAY_PUBLIC_URL');
    expect(r.stderr).toContain('SEED_TENANT_SLUG');
    expect(r.stderr).toContain('DEMO_UPSTREAM_URL');
    expect(await counts()).toEqual(before);
  });
});
