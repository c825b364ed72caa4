import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { encodeEvent, PolicySnapshot, type TgEvent } from '@tollgate/policy';
import { testKeyspace, testRedis, waitFor } from '../../../../test/harness';
import { PolicyStore } from './policy-store';

const ks = testKeyspace('store');
let redis: Redis;
let sub: Redis;
let store: PolicyStore;
const keyEvents: TgEvent[] = [];

const snap = (tenantId: string, version: number, slug = tenantId) =>
  PolicySnapshot.parse({
    schemaVersion: 1,
    tenantId,
    tenantSlug: slug,
    version,
    publishedAt: new Date().toISOString(),
    hosts: [],
    apis: [],
    plans: [],
  });

async function publish(s: PolicySnapshot, announce = true) {
  await redis.set(ks.policy(s.tenantId), JSON.stringify(s));
  await redis.hset(ks.policyVersions, s.tenantId, String(s.version));
  if (announce) await redis.publish(ks.eventsChannel, encodeEvent({ type: 'policy.updated', tenantId: s.tenantId, version: s.version }));
}

beforeAll(async () => {
  redis = testRedis();
  sub = testRedis();
  await publish(snap('ten_a', 1));
  store = new PolicyStore({
    redis,
    subscriber: sub,
    keyspace: ks,
    baseDomain: 'localhost',
    resyncIntervalMs: 200,
    logger: pino({ level: 'silent' }),
    onKeyEvent: (e) => keyEvents.push(e),
  });
  await store.start();
});

afterAll(async () => {
  store.stop();
  await Promise.all([redis.quit(), sub.quit()]);
});

describe('PolicyStore', () => {
  it('loads every tenant at boot', () => {
    expect(store.loaded).toBe(true);
    expect(store.table.byHost.get('ten_a.localhost')?.version).toBe(1);
  });

  it('swaps in a new version on policy.updated, as a new table object', async () => {
    const before = store.table;
    await publish(snap('ten_a', 2));
    await waitFor(() => store.table.tenants.get('ten_a')?.version === 2, { what: 'v2' });
    expect(store.table).not.toBe(before);
    expect(before.tenants.get('ten_a')?.version).toBe(1); // the old table is untouched
  });

  it('catches up on a missed announcement through the periodic resync', async () => {
    await publish(snap('ten_b', 1), false);
    await waitFor(() => store.table.byHost.has('ten_b.localhost'), { what: 'resync', timeoutMs: 3000 });
    expect(store.table.tenants.get('ten_b')?.version).toBe(1);
  });

  it('keeps the last good version when a published snapshot is invalid or older', async () => {
    await redis.set(ks.policy('ten_a'), '{"schemaVersion":1,"tenantId":"ten_a","version":9}');
    await redis.hset(ks.policyVersions, 'ten_a', '9');
    await redis.publish(ks.eventsChannel, encodeEvent({ type: 'policy.updated', tenantId: 'ten_a', version: 9 }));
    await new Promise((r) => setTimeout(r, 300)); // one resync period: nothing may change
    expect(store.table.tenants.get('ten_a')?.version).toBe(2);
    await publish(snap('ten_a', 1));
    await redis.hset(ks.policyVersions, 'ten_a', '1');
    await store.resync('test');
    expect(store.table.tenants.get('ten_a')?.version).toBe(2);
  });

  it('drops a tenant on tenant.deleted and forwards key events', async () => {
    await redis.hdel(ks.policyVersions, 'ten_b');
    await redis.publish(ks.eventsChannel, encodeEvent({ type: 'tenant.deleted', tenantId: 'ten_b' }));
    await waitFor(() => !store.table.tenants.has('ten_b'), { what: 'deletion' });
    await redis.publish(ks.eventsChannel, encodeEvent({ type: 'key.revoked', hash: 'a'.repeat(64) }));
    await waitFor(() => keyEvents.some((e) => e.type === 'key.revoked'), { what: 'key event' });
    expect(store.table.byHost.has('ten_b.localhost')).toBe(false);
    expect(keyEvents.find((e) => e.type === 'key.revoked')).toMatchObject({ hash: 'a'.repeat(64) });
  });

  it('ignores garbage on the channel', async () => {
    await redis.publish(ks.eventsChannel, '{"type":"policy.updated","tenantId":');
    await redis.publish(ks.eventsChannel, encodeEvent({ type: 'key.updated', hash: 'b'.repeat(64) }));
    await waitFor(() => keyEvents.some((e) => e.type === 'key.updated'), { what: 'a later event still arrives' });
    expect(store.table.tenants.has('ten_a')).toBe(true);
  });

  it('keeps serving when the versions hash is emptied (Redis lost its data)', async () => {
    await redis.del(ks.policyVersions);
    await store.resync('test');
    expect(store.table.tenants.has('ten_a')).toBe(true);
  });
});
