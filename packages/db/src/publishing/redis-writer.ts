import type { ChainableCommander, Redis } from 'ioredis';
import {
  encodeEvent,
  POLICY_STREAM_MAXLEN,
  policyChangeFields,
  type KeyRecord,
  type Keyspace,
  type PolicyChange,
  type PolicySnapshot,
} from '@tollgate/policy';

// Compare-and-set on the version stored inside the snapshot itself, so an older relay (or a
// replayed outbox row) can never replace a newer snapshot. The snapshot key and the versions
// hash live in different Redis Cluster slots, so each gets its own single-key script; the
// snapshot is written first, so the hash never advertises a version the snapshot lacks.
// Returns 1 written, 0 already at this version, -1 a newer version is stored.
const SET_SNAPSHOT_IF_NEWER = `
local cur = redis.call('GET', KEYS[1])
local v = tonumber(ARGV[1])
if cur then
  local ok, decoded = pcall(cjson.decode, cur)
  if ok and type(decoded) == 'table' and tonumber(decoded.version) then
    local have = tonumber(decoded.version)
    if have > v then return -1 end
    if have == v then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return 1`;

const SET_VERSION_IF_NEWER = `
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if cur and cur >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`;

export type SnapshotWrite = 'written' | 'current' | 'stale';

/** Redis commands queue while ioredis reconnects; a relay must fail the row instead of hanging. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Queues the change-stream entry for one tenant change (trimmed to about POLICY_STREAM_MAXLEN). */
export function queuePolicyChange(pipe: ChainableCommander, keyspace: Keyspace, change: PolicyChange): void {
  pipe.xadd(keyspace.policyStream, 'MAXLEN', '~', String(POLICY_STREAM_MAXLEN), '*', ...policyChangeFields(change));
}

/**
 * Stores a tenant's snapshot unless a newer one is there, advances the versions hash, appends the
 * version to the change stream and announces `policy.updated`. An equal version is appended and
 * announced again (a relay may have died between writing and announcing; readers ignore versions
 * they hold); a stale one is not, since the newer version was announced already.
 */
export async function writePolicySnapshot(
  redis: Redis,
  keyspace: Keyspace,
  snapshot: PolicySnapshot,
  opts: { announce?: boolean } = {},
): Promise<SnapshotWrite> {
  const [res] = await writePolicySnapshots(redis, keyspace, [snapshot], opts);
  return res!;
}

/**
 * writePolicySnapshot for many tenants in three round trips (snapshots, then versions and stream
 * entries, then announcements), whatever their number: `publish:all` writes pages of tenants.
 */
export async function writePolicySnapshots(
  redis: Redis,
  keyspace: Keyspace,
  snapshots: readonly PolicySnapshot[],
  opts: { announce?: boolean } = {},
): Promise<SnapshotWrite[]> {
  if (!snapshots.length) return [];
  const sets = redis.pipeline();
  for (const s of snapshots) sets.eval(SET_SNAPSHOT_IF_NEWER, 1, keyspace.policy(s.tenantId), String(s.version), JSON.stringify(s));
  const results = (await execOrThrow(sets)).map((r) => Number(r));
  const fresh = snapshots.filter((_, i) => results[i]! >= 0);
  if (fresh.length) {
    // The hash and the stream come after the snapshots: neither advertises a version Redis lacks.
    const meta = redis.pipeline();
    for (const s of fresh) meta.eval(SET_VERSION_IF_NEWER, 1, keyspace.policyVersions, s.tenantId, String(s.version));
    for (const s of fresh) queuePolicyChange(meta, keyspace, { tenantId: s.tenantId, version: s.version });
    if (opts.announce !== false) {
      for (const s of fresh)
        meta.publish(keyspace.eventsChannel, encodeEvent({ type: 'policy.updated', tenantId: s.tenantId, version: s.version }));
    }
    await execOrThrow(meta);
  }
  return results.map((r) => (r < 0 ? 'stale' : r === 1 ? 'written' : 'current'));
}

async function execOrThrow(pipe: ChainableCommander): Promise<unknown[]> {
  const res = (await pipe.exec()) ?? [];
  const failed = res.find(([err]) => err);
  if (failed?.[0]) throw failed[0];
  return res.map(([, v]) => v);
}

/** Removes a deleted tenant's snapshot and version, records the deletion in the change stream and announces `tenant.deleted`. */
export async function removeTenantPolicy(redis: Redis, keyspace: Keyspace, tenantId: string): Promise<void> {
  // Separate commands: the keys sit in different cluster slots (a pipeline, not a transaction).
  const pipe = redis.pipeline();
  pipe.del(keyspace.policy(tenantId));
  pipe.hdel(keyspace.policyVersions, tenantId);
  queuePolicyChange(pipe, keyspace, { tenantId, deleted: true });
  pipe.publish(keyspace.eventsChannel, encodeEvent({ type: 'tenant.deleted', tenantId }));
  await execOrThrow(pipe);
}

/** How long a key's record outlives its expiry: the gateway answers "expired" rather than
 * "unknown key" for a week, then Redis forgets the record on its own. */
export const EXPIRED_KEY_RECORD_GRACE_MS = 7 * 86_400_000;

/**
 * Queues the SET of a key record on a pipeline or MULTI: with an expiry at `expiresAt` + grace
 * when the key expires, so expired keys don't stay in Redis forever, and as a DEL when that
 * moment has already passed. Keys without an expiry are kept until revoked or deleted.
 */
export function queueKeyRecordWrite(pipe: ChainableCommander, keyspace: Keyspace, hash: string, record: KeyRecord, now = Date.now()): void {
  const key = keyspace.key(hash);
  if (record.expiresAt === null) {
    pipe.set(key, JSON.stringify(record));
    return;
  }
  const dropAt = record.expiresAt + EXPIRED_KEY_RECORD_GRACE_MS;
  if (dropAt <= now) pipe.del(key);
  else pipe.set(key, JSON.stringify(record), 'PXAT', dropAt);
}

/**
 * Stores a key record and announces it: `key.revoked` for a revoked record, `key.updated`
 * otherwise. `null` means the key was deleted: its record is removed (the gateway then answers
 * `invalid_key`, as for any unknown key) and `key.revoked` makes every gateway drop its cache.
 * Deleting rather than keeping a tombstone means deleted keys cost nothing in Redis.
 */
export async function writeKeyRecord(
  redis: Redis,
  keyspace: Keyspace,
  hash: string,
  record: KeyRecord | null,
  opts: { announce?: boolean } = {},
): Promise<'written' | 'removed'> {
  const m = redis.multi();
  if (record) queueKeyRecordWrite(m, keyspace, hash, record);
  else m.del(keyspace.key(hash));
  if (opts.announce !== false) {
    const type = record && record.status === 'active' ? 'key.updated' : 'key.revoked';
    m.publish(keyspace.eventsChannel, encodeEvent({ type, hash }));
  }
  const results = await m.exec();
  const failed = results?.find(([err]) => err);
  if (failed?.[0]) throw failed[0];
  return record ? 'written' : 'removed';
}
