// Key records of expiring keys carry a Redis expiry (expiresAt + a week), so long-expired keys
// don't stay in Redis forever; keys without an expiry are kept.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { EXPIRED_KEY_RECORD_GRACE_MS, writeKeyRecord } from '@tollgate/db';
import { KeyRecord, type Keyspace } from '@tollgate/policy';
import { testKeyspace, testRedis } from '../harness';
import { makeKeyRecord } from '../gateway/fixtures';

let redis: Redis;
let ks: Keyspace;
let n = 0;

function record(expiresAt: number | null): KeyRecord {
  n++;
  return makeKeyRecord({ keyId: `key_exp${n}`, tenantId: 'ten_exp', consumerId: 'con_exp', expiresAt });
}

beforeAll(() => {
  redis = testRedis();
  ks = testKeyspace('keyexp');
});
afterAll(async () => {
  const keys = await redis.keys(`${ks.prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

describe('key record expiry in Redis', () => {
  it('a key without an expiry is stored without a TTL', async () => {
    await writeKeyRecord(redis, ks, 'h_forever', record(null), { announce: false });
    expect(await redis.pttl(ks.key('h_forever'))).toBe(-1);
  });

  it('an expiring key is dropped a week after it expires, and re-publishing moves the deadline', async () => {
    const expiresAt = Date.now() + 3_600_000;
    await writeKeyRecord(redis, ks, 'h_soon', record(expiresAt), { announce: false });
    const ttl = await redis.pttl(ks.key('h_soon'));
    expect(ttl).toBeGreaterThan(3_600_000 + EXPIRED_KEY_RECORD_GRACE_MS - 60_000);
    expect(ttl).toBeLessThanOrEqual(3_600_000 + EXPIRED_KEY_RECORD_GRACE_MS);
    // The owner clears the expiry: the record loses its TTL too.
    await writeKeyRecord(redis, ks, 'h_soon', record(null), { announce: false });
    expect(await redis.pttl(ks.key('h_soon'))).toBe(-1);
  });

  it('a key that expired more than a week ago is removed rather than written', async () => {
    await redis.set(ks.key('h_old'), 'stale');
    await writeKeyRecord(redis, ks, 'h_old', record(Date.now() - EXPIRED_KEY_RECORD_GRACE_MS - 1000), { announce: false });
    expect(await redis.exists(ks.key('h_old'))).toBe(0);
  });

  it('a key that expired recently is still stored, so the gateway can say "expired"', async () => {
    await writeKeyRecord(redis, ks, 'h_recent', record(Date.now() - 60_000), { announce: false });
    const stored = KeyRecord.parse(JSON.parse((await redis.get(ks.key('h_recent')))!));
    expect(stored.expiresAt).toBeLessThan(Date.now());
    expect(await redis.pttl(ks.key('h_recent'))).toBeGreaterThan(EXPIRED_KEY_RECORD_GRACE_MS - 120_000);
  });
});
