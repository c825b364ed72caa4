import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import {
  enqueueKeyPublish,
  enqueuePolicyPublish,
  enqueueSubscriptionKeysPublish,
  enqueueTenantDeletion,
  RelayPausedError,
  startOutboxRelay,
  writePolicySnapshot,
  type OutboxRelay,
} from '@tollgate/db';
import { KeyRecord, PolicySnapshot, type Keyspace } from '@tollgate/policy';
import { testKeyspace, testRedis, waitFor } from '../harness';
import { createFixture, createIsolatedDatabase, nextMessage } from './helpers';

let env: Awaited<ReturnType<typeof createIsolatedDatabase>>;
let redis: Redis;
let sub: Redis;
let ks: Keyspace;
let relay: OutboxRelay;

beforeAll(async () => {
  env = await createIsolatedDatabase();
  redis = testRedis();
  sub = testRedis();
  ks = testKeyspace('relay');
  await sub.subscribe(ks.eventsChannel);
  relay = startOutboxRelay({
    db: env.db,
    databaseUrl: env.url,
    redis,
    keyspace: ks,
    pollMs: 5000,
    retryBaseMs: 50,
    retryMaxMs: 200,
    onDrain: (r) => drains.push(r),
  });
});
const drains: { published: number; durationMs: number }[] = [];

// The 1 s contract is about a running relay: let it publish once so its first queries are
// compiled and its connections open before anything is timed.
beforeAll(async () => {
  const warm = await createFixture(env.db);
  await env.db.$transaction(async (tx) => {
    await enqueuePolicyPublish(tx, warm.tenantId);
    await enqueueKeyPublish(tx, warm.keyId);
  });
  await waitFor(async () => (await env.db.outboxEvent.count({ where: { publishedAt: null } })) === 0, {
    timeoutMs: 20_000,
    what: 'warm-up publish',
  });
});
afterAll(async () => {
  await relay?.stop();
  sub?.disconnect();
  redis?.disconnect();
  await env?.drop();
});

const readSnapshot = async (tenantId: string) => {
  const raw = await redis.get(ks.policy(tenantId));
  return raw ? PolicySnapshot.parse(JSON.parse(raw)) : null;
};
const readKey = async (hash: string) => {
  const raw = await redis.get(ks.key(hash));
  return raw ? KeyRecord.parse(JSON.parse(raw)) : null;
};

describe('outbox relay', () => {
  it('puts a plan change in Redis and announces it within 1 s of the commit', async () => {
    const f = await createFixture(env.db);
    const announced = nextMessage(sub, ks.eventsChannel, (m) => m.type === 'policy.updated' && m.tenantId === f.tenantId);
    let t0 = 0;
    const { version } = await env.db.$transaction(async (tx) => {
      await tx.plan.update({ where: { id: f.freeId }, data: { rateLimit: 7 } });
      const res = await enqueuePolicyPublish(tx, f.tenantId);
      t0 = performance.now(); // the callback's end is the COMMIT
      return res;
    });
    const { msg, at } = await announced;
    const elapsedMs = at - t0;
    console.info(`commit of a plan change → in Redis and announced: ${elapsedMs.toFixed(1)} ms`);
    expect(msg).toEqual({ type: 'policy.updated', tenantId: f.tenantId, version });
    expect(elapsedMs).toBeLessThan(1000);
    const snap = await readSnapshot(f.tenantId);
    expect(snap!.version).toBe(version);
    expect(snap!.plans.find((p) => p.id === f.freeId)!.rateLimit!.limit).toBe(7);
    expect(await redis.hget(ks.policyVersions, f.tenantId)).toBe(String(version));
    await waitFor(async () => (await env.db.tenant.findUnique({ where: { id: f.tenantId } }))!.publishedPolicyVersion === version, {
      what: 'publishedPolicyVersion',
    });
    expect(drains.some((d) => d.published >= 1 && d.durationMs >= 0)).toBe(true);
  });

  it('puts a revoked key in Redis and announces key.revoked within 1 s of the commit', async () => {
    const f = await createFixture(env.db);
    await env.db.$transaction((tx) => enqueueKeyPublish(tx, f.keyId));
    await waitFor(() => readKey(f.hash), { what: 'initial key record' });
    const announced = nextMessage(sub, ks.eventsChannel, (m) => m.type === 'key.revoked' && m.hash === f.hash);
    let t0 = 0;
    await env.db.$transaction(async (tx) => {
      await tx.apiKey.update({ where: { id: f.keyId }, data: { status: 'REVOKED', revokedAt: new Date() } });
      await enqueueKeyPublish(tx, f.keyId);
      t0 = performance.now();
    });
    const { at } = await announced;
    console.info(`commit of a key revoke → in Redis and announced: ${(at - t0).toFixed(1)} ms`);
    expect(at - t0).toBeLessThan(1000);
    expect((await readKey(f.hash))!.status).toBe('revoked');
  });

  it('republishes every key of a subscription after its state changes', async () => {
    const f = await createFixture(env.db);
    const announced = nextMessage(sub, ks.eventsChannel, (m) => m.type === 'key.updated' && m.hash === f.hash);
    const n = await env.db.$transaction(async (tx) => {
      await tx.subscription.update({ where: { id: f.subscriptionId }, data: { status: 'PAST_DUE', planId: f.proId } });
      return enqueueSubscriptionKeysPublish(tx, f.subscriptionId);
    });
    expect(n).toBe(1);
    await announced;
    expect(await readKey(f.hash)).toMatchObject({ subscriptionStatus: 'past_due', planId: f.proId });
  });

  it('removes a deleted key from Redis and announces key.revoked', async () => {
    const f = await createFixture(env.db);
    await env.db.$transaction((tx) => enqueueKeyPublish(tx, f.keyId));
    await waitFor(() => readKey(f.hash), { what: 'key record' });
    const announced = nextMessage(sub, ks.eventsChannel, (m) => m.type === 'key.revoked' && m.hash === f.hash);
    await env.db.$transaction(async (tx) => {
      await enqueueKeyPublish(tx, f.keyId);
      await tx.apiKey.delete({ where: { id: f.keyId } });
    });
    await announced;
    expect(await redis.exists(ks.key(f.hash))).toBe(0);
  });

  it('removes a deleted tenant, its snapshot, version and key records', async () => {
    const f = await createFixture(env.db);
    await env.db.$transaction(async (tx) => {
      await enqueuePolicyPublish(tx, f.tenantId);
      await enqueueKeyPublish(tx, f.keyId);
    });
    await waitFor(async () => (await readSnapshot(f.tenantId)) && (await readKey(f.hash)), { what: 'tenant published' });
    const announced = nextMessage(sub, ks.eventsChannel, (m) => m.type === 'tenant.deleted' && m.tenantId === f.tenantId);
    await env.db.$transaction(async (tx) => {
      await enqueueTenantDeletion(tx, f.tenantId);
      await tx.tenant.delete({ where: { id: f.tenantId } });
    });
    await announced;
    await waitFor(async () => (await redis.exists(ks.key(f.hash))) === 0, { what: 'key record removed' });
    expect(await redis.exists(ks.policy(f.tenantId))).toBe(0);
    expect(await redis.hget(ks.policyVersions, f.tenantId)).toBeNull();
  });

  it('never lets an older snapshot replace a newer one', async () => {
    const f = await createFixture(env.db);
    const { version } = await env.db.$transaction((tx) => enqueuePolicyPublish(tx, f.tenantId));
    await waitFor(async () => (await readSnapshot(f.tenantId))?.version === version, { what: 'snapshot' });
    const newer = { ...(await readSnapshot(f.tenantId))!, version: version + 5, tenantSlug: 'newer' };
    expect(await writePolicySnapshot(redis, ks, newer, { announce: false })).toBe('written');
    const older = { ...newer, version: version + 1, tenantSlug: 'older' };
    expect(await writePolicySnapshot(redis, ks, older, { announce: false })).toBe('stale');
    expect(await writePolicySnapshot(redis, ks, newer, { announce: false })).toBe('current');
    expect((await readSnapshot(f.tenantId))!.tenantSlug).toBe('newer');
    expect(await redis.hget(ks.policyVersions, f.tenantId)).toBe(String(version + 5));
  });

  it('keeps an unreadable outbox row, records the error and retries it with backoff instead of dropping it', async () => {
    const row = await env.db.outboxEvent.create({ data: { kind: 'mystery', payload: { hello: 'world' } } });
    const bad = await env.db.outboxEvent.create({ data: { kind: 'key', payload: { keyId: 'key_x', hash: '../../etc/passwd' } } });
    await relay.drainOnce();
    const after = await waitFor(
      async () => {
        await relay.drainOnce();
        const r = await env.db.outboxEvent.findUnique({ where: { id: row.id } });
        return r && r.attempts >= 2 ? r : null;
      },
      { what: 'two failed attempts' },
    );
    expect(after.publishedAt).toBeNull();
    expect(after.lastError).toMatch(/unreadable/);
    expect(after.availableAt.getTime()).toBeGreaterThan(after.createdAt.getTime());
    expect((await env.db.outboxEvent.findUnique({ where: { id: bad.id } }))!.publishedAt).toBeNull();
    // Fixed by hand (or by a newer relay that knows the kind), it goes out.
    await env.db.outboxEvent.update({ where: { id: row.id }, data: { kind: 'policy', payload: { tenantId: 'ten_gone' } } });
    await waitFor(
      async () => {
        await relay.drainOnce();
        return (await env.db.outboxEvent.findUnique({ where: { id: row.id } }))!.publishedAt;
      },
      { what: 'repaired row published' },
    );
    await env.db.outboxEvent.delete({ where: { id: bad.id } });
  });

  it('claims nothing while Redis is unreachable and publishes the rows once it is back', async () => {
    const f = await createFixture(env.db);
    const { Redis: RedisClient } = await import('ioredis');
    // Nothing listens on port 1: every command fails fast, like a Redis outage.
    const down = new RedisClient('redis://127.0.0.1:1', {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    down.on('error', () => undefined);
    const broken = startOutboxRelay({
      db: env.db,
      redis: down,
      keyspace: ks,
      pollMs: 60_000,
      retryBaseMs: 10,
      retryMaxMs: 20,
      redisTimeoutMs: 500,
    });
    await relay.stop();
    try {
      const { version } = await env.db.$transaction((tx) => enqueuePolicyPublish(tx, f.tenantId));
      await expect(broken.drainOnce()).rejects.toBeInstanceOf(RelayPausedError);
      // An outage is the relay's failure, not the row's: nothing is claimed, the row stays due.
      const row = await env.db.outboxEvent.findFirst({ where: { tenantId: f.tenantId, kind: 'policy' }, orderBy: { id: 'desc' } });
      expect(row).toMatchObject({ publishedAt: null, attempts: 0 });
      expect(row!.availableAt.getTime()).toBeLessThanOrEqual(Date.now());
      relay = startOutboxRelay({ db: env.db, databaseUrl: env.url, redis, keyspace: ks, pollMs: 100, retryBaseMs: 50, retryMaxMs: 200 });
      await waitFor(async () => (await readSnapshot(f.tenantId))?.version === version, { what: 'published after recovery' });
    } finally {
      await broken.stop();
      down.disconnect();
    }
  });
});
