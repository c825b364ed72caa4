import type { Redis } from 'ioredis';
import { encodeEvent, type Keyspace } from '@tollgate/policy';
import type { Db } from '../client';
import { KEY_RECORD_INCLUDE, toKeyRecord } from './compile';
import { queueKeyRecordWrite, withTimeout } from './redis-writer';
import { lockEntities, lockName, publishTenant, type PublishingLogger } from './relay';

export type RepublishOptions = {
  db: Db;
  redis: Redis;
  keyspace: Keyspace;
  /** Only this tenant (its snapshot and its keys). */
  tenantId?: string;
  /** Keys per database page and Redis pipeline (default 1000). */
  batchSize?: number;
  /** Announce every key on the events channel too (default false: gateways' key caches expire on their own). */
  announceKeys?: boolean;
  logger?: PublishingLogger;
  redisTimeoutMs?: number;
};

export type RepublishResult = {
  tenants: number;
  keys: number;
  removedTenants: number;
  failedTenants: string[];
  failedKeys: string[];
  durationMs: number;
};

/**
 * Rebuilds Redis from PostgreSQL: every tenant's snapshot (announced) and every key record,
 * e.g. for a fresh or restored Redis. Keys stream in id order with keyset pagination, one page
 * at a time, so memory stays flat however many keys there are. Each page is written under the
 * same per-key locks the relay takes, so a concurrent relay's newer record is never overwritten
 * by an older one. Snapshots go through the same version compare-and-set as the relay.
 * With no tenant filter, tenants that Redis knows but PostgreSQL doesn't are removed.
 */
export async function republishAll(opts: RepublishOptions): Promise<RepublishResult> {
  const { db, redis, keyspace } = opts;
  const started = Date.now();
  const batchSize = Math.max(1, Math.min(opts.batchSize ?? 1000, 10_000));
  const timeoutMs = opts.redisTimeoutMs ?? 30_000;
  const log = opts.logger;
  const result: RepublishResult = { tenants: 0, keys: 0, removedTenants: 0, failedTenants: [], failedKeys: [], durationMs: 0 };

  const known = new Set<string>();
  let lastTenant = '';
  for (;;) {
    const page = await db.tenant.findMany({
      where: opts.tenantId ? { id: opts.tenantId } : { id: { gt: lastTenant } },
      orderBy: { id: 'asc' },
      take: 500,
      select: { id: true },
    });
    if (opts.tenantId && !page.length) {
      // Gone from PostgreSQL: make sure Redis forgets it too.
      await db.$transaction(async (tx) => {
        await lockEntities(tx, [lockName.policy(opts.tenantId!)]);
        await publishTenant(tx, redis, keyspace, opts.tenantId!, timeoutMs);
      });
      result.removedTenants++;
    }
    for (const { id } of page) {
      known.add(id);
      try {
        await db.$transaction(async (tx) => {
          await lockEntities(tx, [lockName.policy(id)]);
          await publishTenant(tx, redis, keyspace, id, timeoutMs);
        });
        result.tenants++;
      } catch (err) {
        // One tenant's bad data must not stop the others from being restored.
        result.failedTenants.push(id);
        log?.error({ tenantId: id, err: (err as Error).message }, 'republishing a tenant failed');
      }
    }
    if (opts.tenantId || page.length < 500) break;
    lastTenant = page[page.length - 1]!.id;
  }

  if (!opts.tenantId) {
    const inRedis = await redis.hkeys(keyspace.policyVersions);
    for (const tenantId of inRedis) {
      if (known.has(tenantId)) continue;
      await db.$transaction(async (tx) => {
        await lockEntities(tx, [lockName.policy(tenantId)]);
        await publishTenant(tx, redis, keyspace, tenantId, timeoutMs);
      });
      result.removedTenants++;
    }
  }

  let lastKey = '';
  for (;;) {
    const ids = await db.apiKey.findMany({
      where: { id: { gt: lastKey }, ...(opts.tenantId ? { tenantId: opts.tenantId } : {}) },
      orderBy: { id: 'asc' },
      take: batchSize,
      select: { id: true },
    });
    if (!ids.length) break;
    lastKey = ids[ids.length - 1]!.id;
    result.keys += await db.$transaction(
      async (tx) => {
        await lockEntities(
          tx,
          ids.map((k) => lockName.key(k.id)),
        );
        // Read after locking: what is written is at least as new as anything a relay wrote before.
        const rows = await tx.apiKey.findMany({ where: { id: { in: ids.map((k) => k.id) } }, include: KEY_RECORD_INCLUDE });
        const pipe = redis.pipeline();
        let written = 0;
        for (const row of rows) {
          let record;
          try {
            record = toKeyRecord(row);
          } catch (err) {
            result.failedKeys.push(row.id);
            log?.error({ keyId: row.id, err: (err as Error).message }, 'republishing a key failed');
            continue;
          }
          queueKeyRecordWrite(pipe, keyspace, row.hash, record);
          written++;
          if (opts.announceKeys) {
            pipe.publish(
              keyspace.eventsChannel,
              encodeEvent({ type: record.status === 'active' ? 'key.updated' : 'key.revoked', hash: row.hash }),
            );
          }
        }
        const res = await withTimeout(pipe.exec(), timeoutMs, 'writing key records');
        const failed = res?.find(([err]) => err);
        if (failed?.[0]) throw failed[0];
        return written;
      },
      { timeout: 60_000 + timeoutMs, maxWait: 10_000 },
    );
    log?.debug({ keys: result.keys }, 'republished keys');
    if (ids.length < batchSize) break;
  }

  result.durationMs = Date.now() - started;
  return result;
}
