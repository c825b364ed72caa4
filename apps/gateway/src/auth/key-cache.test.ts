import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { hashApiKey } from '@tollgate/keys';
import type { KeyRecord } from '@tollgate/policy';
import { testEnv, testKeyspace } from '../../../../test/harness';
import { makeKeyRecord } from '../../../../test/gateway/fixtures';
import { KeyCache } from './key-cache';

const ks = testKeyspace('keycache');
let redis: Redis;
let now = 1_000_000;

const record = (keyId: string, status: KeyRecord['status'] = 'active'): KeyRecord =>
  makeKeyRecord({ keyId, tenantId: 'ten_1', consumerId: 'con_1', status });

function cache(size = 100) {
  return new KeyCache({ redis, keyspace: ks, size, ttlMs: 1000, negativeTtlMs: 100, now: () => now });
}

beforeAll(() => {
  redis = new Redis(testEnv().redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  return new Promise<void>((r) => redis.once('ready', () => r()));
});
afterAll(() => redis.quit());

describe('KeyCache', () => {
  it('answers from memory after the first lookup, until the TTL passes', async () => {
    const h = hashApiKey('k1');
    await redis.set(ks.key(h), JSON.stringify(record('key_1')));
    const c = cache();
    expect(c.peek(h)).toBeUndefined();
    expect(await c.lookup(h)).toMatchObject({ kind: 'found', record: { keyId: 'key_1' } });
    await redis.del(ks.key(h));
    expect(c.lookup(h)).toMatchObject({ kind: 'found' }); // synchronous: no promise on a hit
    now += 1001;
    expect(await c.lookup(h)).toEqual({ kind: 'missing' });
  });

  it('caches misses for the negative TTL, and treats garbage records as missing', async () => {
    const h = hashApiKey('k2');
    const c = cache();
    expect(await c.lookup(h)).toEqual({ kind: 'missing' });
    await redis.set(ks.key(h), JSON.stringify(record('key_2')));
    expect(c.lookup(h)).toEqual({ kind: 'missing' });
    now += 101;
    expect(await c.lookup(h)).toMatchObject({ kind: 'found' });
    const g = hashApiKey('garbage');
    await redis.set(ks.key(g), '{"schemaVersion":1,"keyId":');
    expect(await c.lookup(g)).toEqual({ kind: 'missing' });
  });

  it('coalesces concurrent lookups of one key into one Redis call', async () => {
    const h = hashApiKey('k3');
    await redis.set(ks.key(h), JSON.stringify(record('key_3')));
    const c = cache();
    const results = await Promise.all(Array.from({ length: 20 }, () => c.lookup(h)));
    expect(results.every((r) => r.kind === 'found')).toBe(true);
    expect(c.misses).toBe(1);
  });

  it('turns a revocation event into a tombstone and an update into a re-read', async () => {
    const h = hashApiKey('k4');
    await redis.set(ks.key(h), JSON.stringify(record('key_4')));
    const c = cache();
    await c.lookup(h);
    c.revoke(h);
    expect(c.lookup(h)).toMatchObject({ kind: 'found', record: { status: 'revoked' } });
    await redis.set(ks.key(h), JSON.stringify({ ...record('key_4'), scopes: ['x'] }));
    c.invalidate(h);
    expect(await c.lookup(h)).toMatchObject({ kind: 'found', record: { scopes: ['x'] } });
  });

  it('evicts the least recently used entry beyond its size', async () => {
    const c = cache(2);
    const hs = ['a', 'b', 'c'].map((k) => hashApiKey(`lru-${k}`));
    for (const h of hs) await c.lookup(h);
    expect(c.size).toBe(2);
    expect(c.peek(hs[0]!)).toBeUndefined();
  });

  it('keeps a key hit now and then while many others pass through (approximate LRU)', async () => {
    const c = cache(8);
    const hot = hashApiKey('lru-hot');
    await redis.set(ks.key(hot), JSON.stringify(record('lru-hot')));
    await c.lookup(hot);
    for (let i = 0; i < 80; i++) {
      await c.lookup(hashApiKey(`lru-cold-${i}`));
      // Hit at least once every half of the cache's size: it must never be the one evicted.
      if (i % 4 === 0) expect(c.peek(hot)).toMatchObject({ kind: 'found' });
    }
    expect(c.size).toBe(8);
    expect(c.peek(hot)).toMatchObject({ kind: 'found', record: { keyId: 'lru-hot' } });
    // The cold ones went oldest first.
    expect(c.peek(hashApiKey('lru-cold-0'))).toBeUndefined();
    expect(c.peek(hashApiKey('lru-cold-79'))).toBeDefined();
  });

  it('serves a stale entry when Redis fails, and says unavailable when it knows nothing', async () => {
    const dead = new Redis('redis://127.0.0.1:1', {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      lazyConnect: true,
      retryStrategy: () => null,
    });
    dead.on('error', () => undefined);
    const h = hashApiKey('k5');
    const c = new KeyCache({ redis: dead, keyspace: ks, size: 10, ttlMs: 1000, negativeTtlMs: 100, now: () => now });
    expect(await c.lookup(h)).toEqual({ kind: 'unavailable' });
    // Seed a now-expired entry through a working cache's path: same class, other client.
    const live = cache();
    await redis.set(ks.key(h), JSON.stringify(record('key_5')));
    await live.lookup(h);
    now += 2000;
    Object.assign(live, { opts: { ...(live as unknown as { opts: object }).opts, redis: dead } });
    expect(await live.lookup(h)).toMatchObject({ kind: 'found', stale: true, record: { keyId: 'key_5' } });
    dead.disconnect();
  });
});
