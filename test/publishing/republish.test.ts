import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { compileKeyRecord, compileTenantPolicy, enqueuePolicyPublish, newId, publishedMarker, republishAll } from '@tollgate/db';
import { KeyRecord, PolicySnapshot } from '@tollgate/policy';
import { generateApiKey, hashApiKey } from '@tollgate/keys';
import { testEnv, testKeyspace, testRedis } from '../harness';
import { createFixture, createIsolatedDatabase, type Fixture } from './helpers';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let env: Awaited<ReturnType<typeof createIsolatedDatabase>>;
let redis: Redis;
let fixtures: Fixture[];

beforeAll(async () => {
  env = await createIsolatedDatabase();
  redis = testRedis();
  fixtures = [await createFixture(env.db), await createFixture(env.db)];
  // A few extra keys so paging crosses several pages with batchSize 2.
  for (const f of fixtures) {
    for (let i = 0; i < 2; i++) {
      await env.db.apiKey.create({
        data: { id: newId('key'), tenantId: f.tenantId, consumerId: f.consumerId, hash: hashApiKey(generateApiKey()), prefix: 'tg_test_x' },
      });
    }
    await env.db.$transaction((tx) => enqueuePolicyPublish(tx, f.tenantId));
  }
});
afterAll(async () => {
  redis?.disconnect();
  await env?.drop();
});

async function expectRestored(ks: ReturnType<typeof testKeyspace>, tenants: Fixture[]) {
  for (const f of tenants) {
    const snap = PolicySnapshot.parse(JSON.parse((await redis.get(ks.policy(f.tenantId)))!));
    const expected = (await compileTenantPolicy(env.db, f.tenantId))!;
    expect({ ...snap, publishedAt: '' }).toEqual({ ...expected, publishedAt: '' });
    expect(await redis.hget(ks.policyVersions, f.tenantId)).toBe(String(expected.version));
    for (const k of await env.db.apiKey.findMany({ where: { tenantId: f.tenantId } })) {
      const rec = KeyRecord.parse(JSON.parse((await redis.get(ks.key(k.hash)))!));
      expect(rec).toEqual(await compileKeyRecord(env.db, k.id));
    }
  }
}

describe('republishAll', () => {
  it('restores every snapshot and key record into an empty Redis, paging through keys', async () => {
    const ks = testKeyspace('rep');
    const sub = testRedis();
    await sub.subscribe(ks.eventsChannel);
    const announced: string[] = [];
    sub.on('message', (_c, m) => announced.push(m));
    const res = await republishAll({ db: env.db, redis, keyspace: ks, batchSize: 2 });
    expect(res).toMatchObject({ tenants: 2, keys: 6, failedTenants: [], failedKeys: [] });
    await expectRestored(ks, fixtures);
    // Running again changes nothing and fails nothing.
    expect(await republishAll({ db: env.db, redis, keyspace: ks, batchSize: 2 })).toMatchObject({ tenants: 2, keys: 6 });
    expect(announced.some((m) => m.includes('policy.updated'))).toBe(true);
    sub.disconnect();
  });

  it('republishes only one tenant with tenantId, and forgets tenants PostgreSQL no longer has', async () => {
    const ks = testKeyspace('rep1');
    const res = await republishAll({ db: env.db, redis, keyspace: ks, tenantId: fixtures[0]!.tenantId });
    expect(res).toMatchObject({ tenants: 1, keys: 3 });
    await expectRestored(ks, [fixtures[0]!]);
    expect(await redis.exists(ks.policy(fixtures[1]!.tenantId))).toBe(0);

    await redis.hset(ks.policyVersions, 'ten_ghost', '9');
    await redis.set(ks.policy('ten_ghost'), '{"version":9}');
    const all = await republishAll({ db: env.db, redis, keyspace: ks });
    expect(all.removedTenants).toBe(1);
    // An unknown tenant id is not an error: there is simply nothing to publish, and nothing stays behind.
    await redis.set(ks.policy('ten_unknown'), '{"version":1}');
    expect(await republishAll({ db: env.db, redis, keyspace: ks, tenantId: 'ten_unknown' })).toMatchObject({
      tenants: 0,
      keys: 0,
      removedTenants: 1,
    });
    expect(await redis.exists(ks.policy('ten_unknown'))).toBe(0);
    expect(await redis.exists(ks.policy('ten_ghost'))).toBe(0);
    expect(await redis.hget(ks.policyVersions, 'ten_ghost')).toBeNull();
  });

  it('keeps going past a tenant whose data cannot be compiled, and reports it', async () => {
    const bad = await createFixture(env.db);
    await env.db.route.create({ data: { id: newId('route'), apiId: bad.apiId, path: '/bad', transform: { requestHeaders: 'nope' } } });
    const ks = testKeyspace('rep2');
    const res = await republishAll({ db: env.db, redis, keyspace: ks });
    expect(res.failedTenants).toEqual([bad.tenantId]);
    await expectRestored(ks, fixtures);
    await env.db.tenant.delete({ where: { id: bad.tenantId } });
  });
});

describe('cli republish', { timeout: 90_000 }, () => {
  const cli = (args: string[], extraEnv: Record<string, string | undefined>) =>
    spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'apps/worker/src/cli.ts'), ...args], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, LOG_LEVEL: 'info', ...extraEnv },
      timeout: 60_000,
    });

  it('republishes into the configured prefix and exits 0, marking the state complete for the restore watch', async () => {
    const ks = testKeyspace('cli');
    const r = cli(['republish'], { DATABASE_URL: env.url, REDIS_URL: testEnv().redisUrl, REDIS_PREFIX: ks.prefix });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain('republish done');
    await expectRestored(ks, fixtures);
    expect(JSON.parse((await redis.get(publishedMarker(ks)))!)).toMatchObject({ tenants: 2, keys: 6 });
  });

  it('rejects bad usage and bad configuration with exit code 2 and a clear message', () => {
    const noDb = cli(['republish'], { DATABASE_URL: undefined, REDIS_PREFIX: 'tg_x' });
    expect(noDb.status).toBe(2);
    expect(noDb.stderr).toContain('DATABASE_URL');
    const unknown = cli(['frobnicate'], { DATABASE_URL: env.url });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown command');
    const hostileTenant = cli(['republish', '--tenant', 'a b}{*'], { DATABASE_URL: env.url });
    expect(hostileTenant.status).toBe(2);
    expect(hostileTenant.stderr).toContain('--tenant');
    const badFlag = cli(['republish', '--nope'], { DATABASE_URL: env.url });
    expect(badFlag.status).toBe(2);
  });

  it('exits 1 with a clear log line when Redis is unreachable', () => {
    const r = cli(['republish'], { DATABASE_URL: env.url, REDIS_URL: 'redis://127.0.0.1:1', REDIS_PREFIX: 'tg_x' });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('cannot reach Redis');
  });
});
