import type { ChainableCommander, Redis } from 'ioredis';
import { encodeEvent, type KeyRecord, type Keyspace, type PolicySnapshot } from '@tollgate/policy';

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

/**
 * Stores a tenant's snapshot unless a newer one is there, advances the versions hash, and
 * announces `policy.updated`. An equal version is announced again (a relay may have died between
 * writing and announcing); a stale one is not, since the newer version was announced already.
 */
export async function writePolicySnapshot(
  redis: Redis,
  keyspace: Keyspace,
  snapshot: PolicySnapshot,
  opts: { announce?: boolean } = {},
): Promise<SnapshotWrite> {
  const { tenantId, version } = snapshot;
  const res = Number(await redis.eval(SET_SNAPSHOT_IF_NEWER, 1, keyspace.policy(tenantId), String(version), JSON.stringify(snapshot)));
  if (res < 0) return 'stale';
  await redis.eval(SET_VERSION_IF_NEWER, 1, keyspace.policyVersions, tenantId, String(version));
  if (opts.announce !== false) {
    await redis.publish(keyspace.eventsChannel, encodeEvent({ type: 'policy.updated', tenantId, version }));
  }
  return res === 1 ? 'written' : 'current';
}

/** Removes a deleted tenant's snapshot and version and announces `tenant.deleted`. */
export async function removeTenantPolicy(redis: Redis, keyspace: Keyspace, tenantId: string): Promise<void> {
  // Separate commands: the two keys sit in different cluster slots.
  await redis.del(keyspace.policy(tenantId));
  await redis.hdel(keyspace.policyVersions, tenantId);
  await redis.publish(keyspace.eventsChannel, encodeEvent({ type: 'tenant.deleted', tenantId }));
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
