import type { Redis } from 'ioredis';
import { encodeEvent, type Keyspace, type PolicySnapshot } from '@tollgate/policy';
import type { Db } from '../client';
import { compileTenantPolicies, KEY_RECORD_INCLUDE, toKeyRecord } from './compile';
import { queueKeyRecordWrite, removeTenantPolicy, withTimeout, writePolicySnapshots } from './redis-writer';
import { lockEntities, lockName, publishTenant, type PublishingLogger } from './entities';

export type RepublishOptions = {
  db: Db;
  redis: Redis;
  keyspace: Keyspace;
  /** Only this tenant (its snapshot and its keys). */
  tenantId?: string;
  /** Keys per database page and Redis pipeline (default 1000). */
  batchSize?: number;
  /** Tenants per page: compiled together, written in one pipeline (default 200). */
  tenantBatchSize?: number;
  /** Pages in flight at once, each in its own transaction (default 2). */
  concurrency?: number;
  /**
   * Rewrite tenants whose published version Redis already holds (default false). Without it a
   * tenant is skipped when Redis has its snapshot at the database's version: versions only move
   * forward, so that snapshot is what a rewrite would leave there anyway.
   */
  force?: boolean;
  /** Announce every key on the events channel too (default false: gateways' key caches expire on their own). */
  announceKeys?: boolean;
  logger?: PublishingLogger;
  redisTimeoutMs?: number;
};

export type RepublishResult = {
  /** Tenants whose snapshot Redis now holds (written, or found current). */
  tenants: number;
  /** Of those, tenants skipped because Redis already held their version. */
  unchangedTenants: number;
  keys: number;
  removedTenants: number;
  failedTenants: string[];
  failedKeys: string[];
  durationMs: number;
};

/** Runs `work` on pages from `next` with at most `concurrency` pages in flight; `next` is called serially. */
async function forEachPage<P>(concurrency: number, next: () => Promise<P | null>, work: (page: P) => Promise<void>): Promise<void> {
  let cursor: Promise<unknown> = Promise.resolve();
  let done = false;
  const take = (): Promise<P | null> => {
    const p = cursor.then(() => (done ? null : next()));
    cursor = p.then(
      (page) => {
        if (page === null) done = true;
      },
      () => {
        done = true;
      },
    );
    return p;
  };
  const lane = async () => {
    for (;;) {
      const page = await take();
      if (page === null) return;
      await work(page);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
}

/**
 * Rebuilds Redis from PostgreSQL: every tenant's snapshot (announced) and every key record,
 * e.g. for a fresh or restored Redis. Cost is linear in tenants and keys: tenants are compiled a
 * page at a time (a few queries per page, not per tenant) and written in one pipeline per page;
 * tenants whose version Redis already holds are skipped without being compiled, so a rerun costs
 * the gateways nothing. Keys stream in id order with keyset pagination, so memory stays flat.
 * Each page is written under the same per-entity locks the relay takes, so a concurrent relay's
 * newer record is never overwritten by an older one; snapshots go through the same version
 * compare-and-set as the relay. With no tenant filter, tenants that Redis knows but PostgreSQL
 * doesn't are removed.
 */
export async function republishAll(opts: RepublishOptions): Promise<RepublishResult> {
  const { db, redis, keyspace } = opts;
  const started = Date.now();
  const batchSize = Math.max(1, Math.min(opts.batchSize ?? 1000, 10_000));
  const tenantBatch = Math.max(1, Math.min(opts.tenantBatchSize ?? 200, 1000));
  const concurrency = Math.max(1, Math.min(opts.concurrency ?? 2, 8));
  const timeoutMs = opts.redisTimeoutMs ?? 30_000;
  const log = opts.logger;
  const result: RepublishResult = {
    tenants: 0,
    unchangedTenants: 0,
    keys: 0,
    removedTenants: 0,
    failedTenants: [],
    failedKeys: [],
    durationMs: 0,
  };

  if (opts.tenantId) {
    const id = opts.tenantId;
    const exists = await db.tenant.findUnique({ where: { id }, select: { id: true } });
    try {
      await db.$transaction(async (tx) => {
        await lockEntities(tx, [lockName.policy(id)]);
        // Publishes the snapshot, or makes Redis forget a tenant PostgreSQL doesn't have.
        await publishTenant(tx, redis, keyspace, id, timeoutMs);
      });
      if (exists) result.tenants++;
      else result.removedTenants++;
    } catch (err) {
      if (!exists) throw err;
      result.failedTenants.push(id);
      log?.error({ tenantId: id, err: (err as Error).message }, 'republishing a tenant failed');
    }
  } else {
    const known = new Set<string>();
    let lastTenant = '';
    await forEachPage(
      concurrency,
      async () => {
        const page = await db.tenant.findMany({
          where: { id: { gt: lastTenant } },
          orderBy: { id: 'asc' },
          take: tenantBatch,
          select: { id: true, policyVersion: true },
        });
        if (!page.length) return null;
        lastTenant = page[page.length - 1]!.id;
        for (const t of page) known.add(t.id);
        return page;
      },
      (page) => republishTenantPage(page),
    );

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

  async function republishTenantPage(page: { id: string; policyVersion: number }[]): Promise<void> {
    let todo = page;
    if (!opts.force) {
      const check = redis.pipeline();
      check.hmget(keyspace.policyVersions, ...page.map((t) => t.id));
      for (const t of page) check.exists(keyspace.policy(t.id));
      const res = (await withTimeout(check.exec(), timeoutMs, 'reading published versions')) ?? [];
      const failed = res.find(([err]) => err);
      if (failed?.[0]) throw failed[0];
      const versions = res[0]![1] as (string | null)[];
      todo = page.filter((t, i) => !(Number(versions[i] ?? -1) >= t.policyVersion && res[i + 1]![1] === 1));
      result.unchangedTenants += page.length - todo.length;
      result.tenants += page.length - todo.length;
    }
    if (!todo.length) return;
    const ids = todo.map((t) => t.id);
    try {
      await db.$transaction(
        async (tx) => {
          await lockEntities(
            tx,
            ids.map((id) => lockName.policy(id)),
          );
          // Compiled after locking, as the relay does: nothing older than what a relay wrote.
          const compiled = await compileTenantPolicies(tx, ids);
          const snapshots: PolicySnapshot[] = [];
          for (const id of ids) {
            const c = compiled.get(id);
            if (c === undefined) {
              // Deleted since the page was read: Redis must forget it too.
              await withTimeout(removeTenantPolicy(redis, keyspace, id), timeoutMs, 'removing a tenant from Redis');
              result.removedTenants++;
            } else if (c instanceof Error) {
              // One tenant's bad data must not stop the others from being restored.
              result.failedTenants.push(id);
              log?.error({ tenantId: id, err: c.message }, 'republishing a tenant failed');
            } else snapshots.push(c);
          }
          const writes = await withTimeout(writePolicySnapshots(redis, keyspace, snapshots), timeoutMs, 'writing policy snapshots');
          const published = snapshots.filter((_, i) => writes[i] !== 'stale');
          if (published.length) {
            await tx.$executeRaw`
              UPDATE "Tenant" t SET "publishedPolicyVersion" = GREATEST(t."publishedPolicyVersion", v.version), "policyPublishedAt" = now()
              FROM unnest(${published.map((s) => s.tenantId)}::text[], ${published.map((s) => s.version)}::int[]) AS v(id, version)
              WHERE t.id = v.id`;
          }
          result.tenants += snapshots.length;
        },
        { timeout: 60_000 + timeoutMs, maxWait: 10_000 },
      );
    } catch (err) {
      result.failedTenants.push(...ids.filter((id) => !result.failedTenants.includes(id)));
      log?.error({ tenants: ids.length, err: (err as Error).message }, 'republishing a page of tenants failed');
    }
    log?.debug({ tenants: result.tenants }, 'republished tenants');
  }

  let lastKey = '';
  await forEachPage(
    concurrency,
    async () => {
      const ids = await db.apiKey.findMany({
        where: { id: { gt: lastKey }, ...(opts.tenantId ? { tenantId: opts.tenantId } : {}) },
        orderBy: { id: 'asc' },
        take: batchSize,
        select: { id: true },
      });
      if (!ids.length) return null;
      lastKey = ids[ids.length - 1]!.id;
      return ids;
    },
    async (ids) => {
      // Not `result.keys += await …`: that reads the total before the await, losing the other lane's pages.
      const written = await db.$transaction(
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
      result.keys += written;
      log?.debug({ keys: result.keys }, 'republished keys');
    },
  );

  result.durationMs = Date.now() - started;
  return result;
}
