import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { encodeEvent, PolicySnapshot, policyChangeFields, type PolicyChange, type TgEvent } from '@tollgate/policy';
import { testKeyspace, testRedis, waitFor } from '../../../../test/harness';
import { PolicyStore, type TenantChange } from './policy-store';

const ks = testKeyspace('store');
let redis: Redis;
let sub: Redis;
let store: PolicyStore;
const keyEvents: TgEvent[] = [];
const changes: TenantChange[] = [];

const snap = (tenantId: string, version: number, slug = tenantId, hosts: string[] = []) =>
  PolicySnapshot.parse({
    schemaVersion: 1,
    tenantId,
    tenantSlug: slug,
    version,
    publishedAt: new Date().toISOString(),
    hosts,
    apis: [],
    plans: [],
  });

const append = (change: PolicyChange) => redis.xadd(ks.policyStream, '*', ...policyChangeFields(change));

/** What the publishing path does: snapshot, versions hash, change stream, then (optionally) the announcement. */
async function publish(s: PolicySnapshot, opts: { announce?: boolean; stream?: boolean } = {}) {
  await redis.set(ks.policy(s.tenantId), JSON.stringify(s));
  await redis.hset(ks.policyVersions, s.tenantId, String(s.version));
  if (opts.stream !== false) await append({ tenantId: s.tenantId, version: s.version });
  if (opts.announce !== false)
    await redis.publish(ks.eventsChannel, encodeEvent({ type: 'policy.updated', tenantId: s.tenantId, version: s.version }));
}

async function remove(tenantId: string, opts: { announce?: boolean } = {}) {
  await redis.del(ks.policy(tenantId));
  await redis.hdel(ks.policyVersions, tenantId);
  await append({ tenantId, deleted: true });
  if (opts.announce !== false) await redis.publish(ks.eventsChannel, encodeEvent({ type: 'tenant.deleted', tenantId }));
}

function newStore(subscriber: Redis, resyncIntervalMs: number) {
  return new PolicyStore({
    redis,
    subscriber,
    keyspace: ks,
    baseDomain: 'localhost',
    resyncIntervalMs,
    logger: pino({ level: 'silent' }),
    onKeyEvent: (e) => keyEvents.push(e),
    onTenantsChanged: (c) => changes.push(...c),
  });
}

beforeAll(async () => {
  redis = testRedis();
  sub = testRedis();
  await publish(snap('ten_a', 1));
  await publish(snap('ten_c', 1));
  store = newStore(sub, 200);
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
    expect(store.tenantCount).toBe(2);
  });

  it('swaps one tenant on policy.updated and reloads only that tenant', async () => {
    const other = store.table.tenants.get('ten_c');
    const old = store.table.tenants.get('ten_a')!;
    const loaded = store.stats.snapshotsLoaded;
    changes.length = 0;
    await publish(snap('ten_a', 2));
    await waitFor(() => store.table.tenants.get('ten_a')?.version === 2, { what: 'v2' });
    expect(store.stats.snapshotsLoaded - loaded).toBe(1);
    expect(store.table.tenants.get('ten_c')).toBe(other); // untouched, not even recompiled
    expect(old.version).toBe(1); // a runtime is immutable: in-flight requests keep their view
    expect(changes).toEqual([{ tenantId: 'ten_a', previous: old, current: store.table.tenants.get('ten_a') }]);
  });

  it('catches up from the change stream without any announcement', async () => {
    await publish(snap('ten_b', 1), { announce: false });
    await waitFor(() => store.table.byHost.has('ten_b.localhost'), { what: 'stream poll', timeoutMs: 3000 });
    expect(store.table.tenants.get('ten_b')?.version).toBe(1);
  });

  it('loads an announced version the stream does not carry (a publisher that only announces)', async () => {
    await publish(snap('ten_b', 2), { stream: false });
    await waitFor(() => store.table.tenants.get('ten_b')?.version === 2, { what: 'announced v2' });
    expect(store.table.byHost.get('ten_b.localhost')?.version).toBe(2);
  });

  it('keeps the last good version when a published snapshot is invalid or older', async () => {
    await redis.set(ks.policy('ten_a'), '{"schemaVersion":1,"tenantId":"ten_a","version":9}');
    await redis.hset(ks.policyVersions, 'ten_a', '9');
    await append({ tenantId: 'ten_a', version: 9 });
    await redis.publish(ks.eventsChannel, encodeEvent({ type: 'policy.updated', tenantId: 'ten_a', version: 9 }));
    const pulls = store.stats.pulls;
    await waitFor(() => store.stats.pulls > pulls + 1, { what: 'the stream to be read' });
    expect(store.table.tenants.get('ten_a')?.version).toBe(2);
    await publish(snap('ten_a', 1));
    await store.requestFullResync();
    expect(store.table.tenants.get('ten_a')?.version).toBe(2);
  });

  it('removes a tenant deleted in the change stream, and forwards key events', async () => {
    await remove('ten_b', { announce: false });
    await waitFor(() => !store.table.tenants.has('ten_b') && !store.table.byHost.has('ten_b.localhost'), { what: 'deletion' });
    await redis.publish(ks.eventsChannel, encodeEvent({ type: 'key.revoked', hash: 'a'.repeat(64) }));
    await waitFor(() => keyEvents.some((e) => e.type === 'key.revoked'), { what: 'key event' });
    expect(store.table.tenants.has('ten_b')).toBe(false);
    expect(keyEvents.find((e) => e.type === 'key.revoked')).toMatchObject({ hash: 'a'.repeat(64) });
  });

  it('ignores garbage on the channel and in the stream', async () => {
    await redis.publish(ks.eventsChannel, '{"type":"policy.updated","tenantId":');
    await redis.xadd(ks.policyStream, '*', 'x', 'y');
    await redis.publish(ks.eventsChannel, encodeEvent({ type: 'key.updated', hash: 'b'.repeat(64) }));
    await waitFor(() => keyEvents.some((e) => e.type === 'key.updated'), { what: 'a later event still arrives' });
    await publish(snap('ten_d', 1), { announce: false });
    await waitFor(() => store.table.tenants.has('ten_d'), { what: 'the entry after the garbage' });
    expect(store.table.tenants.has('ten_a')).toBe(true);
  });

  it('resynchronises everything when entries it never read were trimmed', async () => {
    const quiet = testRedis();
    // No timer and no announcements: this store reads the stream only when told to.
    const lagging = newStore(quiet, 3_600_000);
    await lagging.start();
    await quiet.unsubscribe();
    try {
      const full = lagging.stats.fullResyncs;
      await publish(snap('ten_e', 1), { announce: false });
      await remove('ten_d', { announce: false });
      await redis.xtrim(ks.policyStream, 'MAXLEN', 0);
      await publish(snap('ten_f', 1), { announce: false });
      await lagging.resync('test');
      expect(lagging.stats.fullResyncs).toBe(full + 1);
      expect(lagging.table.tenants.has('ten_e')).toBe(true);
      expect(lagging.table.tenants.has('ten_f')).toBe(true);
      expect(lagging.table.tenants.has('ten_d')).toBe(false);
      // Caught up: the next read is an ordinary one.
      await publish(snap('ten_e', 2), { announce: false });
      await lagging.resync('test');
      expect(lagging.stats.fullResyncs).toBe(full + 1);
      expect(lagging.table.tenants.get('ten_e')?.version).toBe(2);
    } finally {
      lagging.stop();
      quiet.disconnect();
    }
  });

  it('keeps serving when the stream and the versions hash vanish (Redis lost its data)', async () => {
    const full = store.stats.fullResyncs;
    await redis.del(ks.policyStream, ks.policyVersions);
    await store.resync('test');
    expect(store.stats.fullResyncs).toBe(full + 1);
    expect(store.table.tenants.has('ten_a')).toBe(true);
    // The control plane republishes: the new stream is followed from its start.
    await publish(snap('ten_a', 3), { announce: false });
    await store.resync('test');
    expect(store.table.tenants.get('ten_a')?.version).toBe(3);
  });

  it('resolves custom domains per tenant: a subdomain beats a custom domain, a release passes the host on', async () => {
    await publish(snap('ten_x', 1, 'ten_x', ['shop.example.test', 'ten_c.localhost']));
    await publish(snap('ten_y', 1, 'ten_y', ['shop.example.test']));
    await waitFor(() => store.table.tenants.has('ten_x') && store.table.tenants.has('ten_y'), { what: 'both tenants' });
    expect(store.table.byHost.get('shop.example.test')?.tenantId).toBe('ten_x');
    expect(store.table.byHost.get('ten_c.localhost')?.tenantId).toBe('ten_c');
    await publish(snap('ten_x', 2, 'ten_x', []));
    await waitFor(() => store.table.tenants.get('ten_x')?.version === 2, { what: 'ten_x v2' });
    expect(store.table.byHost.get('shop.example.test')?.tenantId).toBe('ten_y');
  });
});
