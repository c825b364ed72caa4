import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { compileKeyRecord, createPrismaClient, enqueueKeyPublish, enqueuePolicyPublish, startOutboxRelay } from '@tollgate/db';
import { KeyRecord, type Keyspace } from '@tollgate/policy';
import { testKeyspace, testRedis, waitFor } from '../harness';
import { createFixture, createIsolatedDatabase } from './helpers';

let env: Awaited<ReturnType<typeof createIsolatedDatabase>>;
let redis: Redis;
let watcher: Redis;
let ks: Keyspace;

beforeAll(async () => {
  env = await createIsolatedDatabase();
  redis = testRedis();
  watcher = testRedis();
  ks = testKeyspace('conc');
});
afterAll(async () => {
  watcher?.disconnect();
  redis?.disconnect();
  await env?.drop();
});

describe('two relays at once', () => {
  it('publish every row without failures, and published versions never go backwards', async () => {
    const tenants = await Promise.all([createFixture(env.db), createFixture(env.db), createFixture(env.db)]);
    const dbA = createPrismaClient(env.url, { max: 3 });
    const dbB = createPrismaClient(env.url, { max: 3 });
    const relays = [
      startOutboxRelay({ db: dbA, databaseUrl: env.url, redis, keyspace: ks, pollMs: 100, batchSize: 5 }),
      startOutboxRelay({ db: dbB, databaseUrl: env.url, redis, keyspace: ks, pollMs: 100, batchSize: 5 }),
    ];
    // Watch every tenant's published version while the storm runs; any decrease is a failure.
    const seen = new Map<string, number[]>();
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const all = await watcher.hgetall(ks.policyVersions);
        for (const t of tenants) {
          const v = all[t.tenantId];
          if (v !== undefined) seen.set(t.tenantId, [...(seen.get(t.tenantId) ?? []), Number(v)]);
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    try {
      // Writers in parallel (one per tenant), each committing 20 changes while both relays run.
      await Promise.all(
        tenants.map(async (t) => {
          for (let i = 0; i < 20; i++) {
            await env.db.$transaction(
              async (tx) => {
                await tx.plan.update({ where: { id: t.freeId }, data: { rateLimit: 10 + i } });
                await tx.apiKey.update({ where: { id: t.keyId }, data: { quotaOverride: i } });
                await enqueueKeyPublish(tx, t.keyId);
                await enqueuePolicyPublish(tx, t.tenantId);
              },
              { maxWait: 20_000, timeout: 20_000 },
            );
          }
        }),
      );
      await waitFor(async () => (await env.db.outboxEvent.count({ where: { publishedAt: null } })) === 0, {
        timeoutMs: 30_000,
        what: 'outbox drained',
      });
      for (const t of tenants) {
        const row = await env.db.tenant.findUnique({ where: { id: t.tenantId } });
        expect(await redis.hget(ks.policyVersions, t.tenantId)).toBe(String(row!.policyVersion));
        expect(row!.publishedPolicyVersion).toBe(row!.policyVersion);
        const record = KeyRecord.parse(JSON.parse((await redis.get(ks.key(t.hash)))!));
        expect(record).toEqual(await compileKeyRecord(env.db, t.keyId));
        expect(record.quotaOverride).toBe(19);
      }
      expect(await env.db.outboxEvent.count({ where: { attempts: { gt: 0 } } })).toBe(0);
    } finally {
      watching = false;
      await watch;
      await Promise.all(relays.map((r) => r.stop()));
      await Promise.all([dbA.$disconnect(), dbB.$disconnect()]);
    }
    for (const [, versions] of seen) {
      expect(versions.length).toBeGreaterThan(0);
      for (let i = 1; i < versions.length; i++) expect(versions[i]!).toBeGreaterThanOrEqual(versions[i - 1]!);
    }
  });
});
