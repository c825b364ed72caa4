// Redis loses its data (restart without persistence, FLUSHALL, an empty replica): the worker's
// restore watch notices the missing marker and rebuilds every snapshot and key record from
// PostgreSQL, once, without an operator.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { compileKeyRecord, createRestoreWatch, enqueuePolicyPublish, newId } from '@tollgate/db';
import { generateApiKey, hashApiKey } from '@tollgate/keys';
import { KeyRecord, PolicySnapshot } from '@tollgate/policy';
import { testKeyspace, testRedis, waitFor } from '../harness';
import { createFixture, createIsolatedDatabase, type Fixture } from './helpers';

let env: Awaited<ReturnType<typeof createIsolatedDatabase>>;
let redis: Redis;
let f: Fixture;
let hash: string;
let keyId: string;

beforeAll(async () => {
  env = await createIsolatedDatabase();
  redis = testRedis();
  f = await createFixture(env.db);
  keyId = newId('key');
  hash = hashApiKey(generateApiKey());
  await env.db.apiKey.create({ data: { id: keyId, tenantId: f.tenantId, consumerId: f.consumerId, hash, prefix: 'tg_test_x' } });
  await env.db.$transaction((tx) => enqueuePolicyPublish(tx, f.tenantId));
});
afterAll(async () => {
  redis?.disconnect();
  await env?.drop();
});

/** Data loss under one prefix, atomic like a FLUSHALL: nothing can be written between finding and deleting. */
async function wipe(prefix: string) {
  await redis.eval(`for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 0`, 0, `${prefix}:*`);
}

describe('restore watch', () => {
  it('rebuilds an empty Redis once, then leaves it alone until the data is lost again', async () => {
    const ks = testKeyspace('restore');
    const watch = createRestoreWatch({ db: env.db, redis, keyspace: ks });
    const first = await watch.check();
    expect(first.state).toBe('restored');
    expect(PolicySnapshot.parse(JSON.parse((await redis.get(ks.policy(f.tenantId)))!)).tenantId).toBe(f.tenantId);
    expect(KeyRecord.parse(JSON.parse((await redis.get(ks.key(hash)))!))).toEqual(await compileKeyRecord(env.db, keyId));
    expect(await watch.check()).toEqual({ state: 'present' });

    // Data loss: everything under the prefix is gone, marker included.
    await wipe(ks.prefix);
    const again = await watch.check();
    expect(again.state).toBe('restored');
    expect(await redis.exists(ks.key(hash))).toBe(1);
    expect(await redis.hget(ks.policyVersions, f.tenantId)).toBeTruthy();
    await wipe(ks.prefix);
  });

  it('two workers noticing at once rebuild once: the other one backs off', async () => {
    const ks = testKeyspace('restore2');
    const a = createRestoreWatch({ db: env.db, redis, keyspace: ks });
    const other = testRedis();
    const b = createRestoreWatch({ db: env.db, redis: other, keyspace: ks });
    const states = (await Promise.all([a.check(), b.check()])).map((r) => r.state);
    // One rebuilds; the other finds the lock taken (or, if it was slow to ask, the marker set).
    expect(states.filter((s) => s === 'restored')).toHaveLength(1);
    expect(states.filter((s) => s === 'busy' || s === 'present')).toHaveLength(1);
    expect(await redis.exists(a.marker)).toBe(1);
    other.disconnect();
    await wipe(ks.prefix);
  });

  it('a data loss during the rebuild (the lock vanishes with it) leaves the marker unset, so the next check rebuilds again', async () => {
    const ks = testKeyspace('restore4');
    const watch = createRestoreWatch({ db: env.db, redis, keyspace: ks });
    const lockKey = `${ks.prefix}:meta:republish-lock`;
    // Wipe the prefix as soon as the rebuild has taken its lock, while it is still writing.
    const wiper = (async () => {
      await waitFor(async () => (await redis.exists(lockKey)) === 1, { intervalMs: 1, what: 'the rebuild lock' });
      await wipe(ks.prefix);
    })();
    const first = await watch.check();
    await wiper;
    expect(first.state).toBe('restored');
    expect(await redis.exists(watch.marker)).toBe(0);
    expect((await watch.check()).state).toBe('restored');
    expect(await redis.exists(watch.marker)).toBe(1);
    expect(await redis.exists(ks.key(hash))).toBe(1);
    await wipe(ks.prefix);
  });

  it('started, it restores on its own within its interval and stops cleanly', async () => {
    const ks = testKeyspace('restore3');
    const watch = createRestoreWatch({ db: env.db, redis, keyspace: ks, intervalMs: 50 });
    watch.start();
    // The whole first rebuild, marker included (the key record alone is written midway).
    await waitFor(async () => (await redis.exists(watch.marker)) === 1, { what: 'first rebuild done' });
    await wipe(ks.prefix);
    await waitFor(async () => (await redis.exists(ks.key(hash))) === 1, { what: 'key record restored after the wipe' });
    await watch.stop();
    await wipe(ks.prefix);
    expect(await watch.check()).toMatchObject({ state: 'restored' }); // check() still works by hand
    await wipe(ks.prefix);
  });
});
