import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keyspace } from '@tollgate/policy';
import type { Db } from '../client';
import type { PublishingLogger } from './entities';
import { restoreQuotaCounters } from './quota-restore';
import { republishAll, type RepublishResult } from './republish';

export type RestoreCheck = { state: 'present' } | { state: 'busy' } | { state: 'restored'; result: RepublishResult };

export type RestoreWatchOptions = {
  db: Db;
  redis: Redis;
  keyspace: Keyspace;
  logger?: PublishingLogger;
  /** How often to look for the marker. Default 5 s. */
  intervalMs?: number;
};

/** The key whose presence says Redis holds a complete published state (set after a full rebuild). */
export const publishedMarker = (keyspace: Keyspace) => `${keyspace.prefix}:meta:published`;

/** Records a complete rebuild (republishAll without a tenant filter and without failures). */
export async function markPublished(redis: Redis, keyspace: Keyspace, result: RepublishResult): Promise<void> {
  await redis.set(publishedMarker(keyspace), JSON.stringify({ at: new Date().toISOString(), tenants: result.tenants, keys: result.keys }));
}

/** Longest one rebuild may hold the lock; another worker takes over after that. */
const LOCK_MS = 10 * 60_000;
const RELEASE_IF_OURS = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** Sets the marker only if our lock survived the rebuild: a Redis that lost its data meanwhile lost the lock too. */
const MARK_IF_LOCKED = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[2], ARGV[2]) return 1 end return 0`;

/**
 * Redis holds the published state (snapshots, key records) and the quota counters, but PostgreSQL
 * is their source (the ledger, for consumed quota: see restoreQuotaCounters). A Redis
 * that restarts without persistence, is flushed, or fails over to an empty replica loses it, and
 * until someone republished, every key of every tenant would be refused once gateway caches
 * expire. This watch keeps a marker key next to the published state, written after a full
 * rebuild; when the marker is missing, the published state can't be trusted to be complete, so
 * it rebuilds everything (`republishAll`) and sets the marker again. One worker rebuilds at a
 * time (a lock with an expiry); a fresh Redis on first start is just the first rebuild.
 * Gateways keep serving their last configuration meanwhile; keys they cached as unknown during
 * the gap are retried when their short negative TTL ends.
 */
export function createRestoreWatch(opts: RestoreWatchOptions) {
  const { db, redis, keyspace } = opts;
  const log = opts.logger;
  const marker = publishedMarker(keyspace);
  const lock = `${keyspace.prefix}:meta:republish-lock`;

  async function check(): Promise<RestoreCheck> {
    if ((await redis.exists(marker)) === 1) return { state: 'present' };
    const token = randomUUID();
    if ((await redis.set(lock, token, 'PX', LOCK_MS, 'NX')) !== 'OK') return { state: 'busy' };
    try {
      // Re-check under the lock: another worker may have finished between our two commands.
      if ((await redis.exists(marker)) === 1) return { state: 'present' };
      log?.warn(
        { prefix: keyspace.prefix },
        'published state missing from Redis (new, flushed or restarted without data): republishing everything',
      );
      // Quota counters first: a gateway whose key cache expired gets its keys back only after
      // the counters hold what the ledger billed, so a hard cap holds across the loss.
      const quotas = await restoreQuotaCounters({ db, redis, keyspace });
      log?.info({ counters: quotas.counters, raised: quotas.raised }, 'quota counters rebuilt from the ledger');
      const result = await republishAll({ db, redis, keyspace, logger: log });
      if (result.failedTenants.length || result.failedKeys.length) {
        // Leave the marker unset so the next check tries again.
        log?.error(
          { failedTenants: result.failedTenants.length, failedKeys: result.failedKeys.length },
          'republish after Redis data loss was incomplete; retrying',
        );
      } else {
        const value = JSON.stringify({ at: new Date().toISOString(), tenants: result.tenants, keys: result.keys });
        if ((await redis.eval(MARK_IF_LOCKED, 2, lock, marker, token, value)) === 1) {
          log?.info({ tenants: result.tenants, keys: result.keys, ms: result.durationMs }, 'republished everything to Redis');
        } else {
          log?.warn({}, 'Redis lost its data again during the rebuild; rebuilding again on the next check');
        }
      }
      return { state: 'restored', result };
    } finally {
      await redis.eval(RELEASE_IF_OURS, 1, lock, token).catch(() => undefined);
    }
  }

  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> | null = null;
  let stopped = false;
  const tick = () => {
    if (running || stopped) return;
    running = check()
      .catch((err: Error) => log?.warn({ err: err.message }, 'restore check failed; will retry'))
      .finally(() => {
        running = null;
      });
  };

  return {
    check,
    marker,
    start(): void {
      if (timer || stopped) return;
      tick();
      timer = setInterval(tick, opts.intervalMs ?? 5000);
      timer.unref();
    },
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = null;
      await running;
    },
  };
}
export type RestoreWatch = ReturnType<typeof createRestoreWatch>;
