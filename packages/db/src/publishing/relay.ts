import pg from 'pg';
import type { Redis } from 'ioredis';
import type { Keyspace } from '@tollgate/policy';
import type { Db } from '../client';
import { compileKeyRecord, PolicyCompileError } from './compile';
import { OUTBOX_NOTIFY_CHANNEL } from './outbox';
import { groupRows, lockEntities, publishTenant, silentLogger, type ClaimedRow, type PublishingLogger } from './entities';
import { withTimeout, writeKeyRecord } from './redis-writer';

export type OutboxRelayOptions = {
  db: Db;
  /** For LISTEN/NOTIFY wake-ups; without it the relay only polls. */
  databaseUrl?: string;
  /**
   * The relay opens its own connection from this client (`duplicate()`, failing fast while
   * disconnected rather than queueing); the client itself is only used as a template.
   */
  redis: Redis;
  keyspace: Keyspace;
  logger?: PublishingLogger;
  /** Fallback polling interval (default 1000 ms); NOTIFY normally wakes the relay first. */
  pollMs?: number;
  /** Rows claimed per transaction (default 100). */
  batchSize?: number;
  /** A failed row waits retryBaseMs × 2^attempts, at most retryMaxMs (defaults 1 s, 5 min). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Any Redis call slower than this fails its rows instead of holding the batch (default 5000 ms). */
  redisTimeoutMs?: number;
  /** Called after each drain that claimed rows (for metrics). */
  onDrain?: (result: DrainResult & { durationMs: number }) => void;
  /** Test seam: runs after Redis was written, before the rows are marked published. */
  beforeMark?: (info: { claimed: number }) => Promise<void>;
};

export type DrainResult = { claimed: number; published: number; failed: number };

/** drainOnce rejects with this when Redis (or another dependency) failed mid-drain; the rows stay due. */
export class RelayPausedError extends Error {
  constructor(cause: string) {
    super(`outbox relay could not publish: ${cause}`);
    this.name = 'RelayPausedError';
  }
}

export type OutboxRelay = {
  /** Publishes every row that is due now; resolves when done. Safe to call while the loop runs. */
  drainOnce(): Promise<DrainResult>;
  /** Stops polling and listening, waits for the batch in flight. */
  stop(): Promise<void>;
};

export function startOutboxRelay(opts: OutboxRelayOptions): OutboxRelay {
  const { db, keyspace } = opts;
  // The relay's own connection, failing fast instead of queueing: a write that timed out during
  // an outage must never be replayed by ioredis later, over a newer record another relay wrote.
  const redis = opts.redis.duplicate({
    lazyConnect: false,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
  });
  redis.on('error', () => undefined); // surfaced through failed drains, with context
  redis.on('ready', () => kick());
  const log = opts.logger ?? silentLogger;
  const pollMs = opts.pollMs ?? 1000;
  const batchSize = opts.batchSize ?? 100;
  const retryBaseMs = opts.retryBaseMs ?? 1000;
  const retryMaxMs = opts.retryMaxMs ?? 300_000;
  const timeoutMs = opts.redisTimeoutMs ?? 5000;

  let stopped = false;
  let chain: Promise<unknown> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let listener: pg.Client | undefined;
  let looping = false;
  let pending = false;
  let relayError: string | null = null;
  // After an infrastructure failure the loop waits 0.5 s, 1 s, 2 s … (at most 30 s) before
  // trying again, so a Redis outage isn't met with a drain per NOTIFY.
  let pauses = 0;
  let pausedUntil = 0;

  /** Waits up to the Redis timeout for the relay's connection (it may be starting or reconnecting). */
  async function awaitRedis(): Promise<void> {
    if (redis.status === 'ready') return;
    if (redis.status === 'end') throw new RelayPausedError('the Redis connection is closed');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        redis.off('ready', onReady);
        reject(new RelayPausedError(`Redis is not connected (${redis.status})`));
      }, timeoutMs);
      function onReady() {
        clearTimeout(timer);
        resolve();
      }
      redis.once('ready', onReady);
    });
  }

  async function drainBatch(): Promise<DrainResult> {
    // Don't claim (and count attempts against) rows that can't be published right now.
    if (redis.status !== 'ready') await awaitRedis();
    return db.$transaction(
      async (tx) => {
        const rows = await tx.$queryRaw<ClaimedRow[]>`
          SELECT id, kind, "tenantId", payload, attempts FROM "OutboxEvent"
          WHERE "publishedAt" IS NULL AND "availableAt" <= now()
          ORDER BY id LIMIT ${batchSize}
          FOR UPDATE SKIP LOCKED`;
        if (!rows.length) return { claimed: 0, published: 0, failed: 0 };

        const { entities, unreadable } = groupRows(rows);
        await lockEntities(
          tx,
          entities.map((e) => e.lock),
        );
        const done: bigint[] = [];
        // Two kinds of failure. A row whose data can't be published (unreadable, or a snapshot the
        // contract can't express) backs off on its own, so it never blocks the rows behind it.
        // Anything else (Redis down, a timeout) is the relay's problem, not the row's: the rest of
        // the batch is left for the next attempt and the rows stay due at once, so they go out as
        // soon as Redis is back rather than after a long per-row backoff.
        const backoff: { ids: bigint[]; error: string }[] = [];
        const retryNow: { ids: bigint[]; error: string }[] = [];
        if (unreadable.length)
          backoff.push({ ids: unreadable.map((r) => r.id), error: 'unreadable outbox row: unknown kind or malformed payload' });

        let infraError: string | null = null;
        for (const e of entities) {
          const ids = e.rows.map((r) => r.id);
          if (infraError) {
            retryNow.push({ ids, error: infraError });
            continue;
          }
          try {
            let outcome: string;
            if (e.kind === 'policy') {
              outcome = await publishTenant(tx, redis, keyspace, e.tenantId, timeoutMs);
            } else {
              const record = await compileKeyRecord(tx, e.keyId);
              outcome = await withTimeout(writeKeyRecord(redis, keyspace, e.hash, record), timeoutMs, 'writing a key record');
            }
            done.push(...ids);
            log.debug({ entity: e.lock, outcome, rows: e.rows.length }, 'published');
          } catch (err) {
            const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
            if (err instanceof PolicyCompileError) {
              backoff.push({ ids, error });
              log.warn(
                { entity: e.lock, err: error, attempts: Math.max(...e.rows.map((r) => r.attempts)) + 1 },
                'cannot publish this entity; will retry with backoff',
              );
            } else {
              infraError = error;
              retryNow.push({ ids, error });
              log.warn({ entity: e.lock, err: error }, 'publishing failed; pausing the relay');
            }
          }
        }

        if (opts.beforeMark) await opts.beforeMark({ claimed: rows.length });
        if (done.length) {
          await tx.$executeRaw`UPDATE "OutboxEvent" SET "publishedAt" = now(), "lastError" = NULL WHERE id = ANY(${done}::bigint[])`;
        }
        for (const f of backoff) {
          await tx.$executeRaw`
            UPDATE "OutboxEvent" SET attempts = attempts + 1, "lastError" = ${f.error.slice(0, 1000)},
              "availableAt" = now() + make_interval(secs => LEAST(${retryBaseMs}::float8 * power(2, attempts), ${retryMaxMs}::float8) / 1000.0)
            WHERE id = ANY(${f.ids}::bigint[])`;
        }
        for (const f of retryNow) {
          await tx.$executeRaw`UPDATE "OutboxEvent" SET attempts = attempts + 1, "lastError" = ${f.error.slice(0, 1000)} WHERE id = ANY(${f.ids}::bigint[])`;
        }
        const failures = [...backoff, ...retryNow];
        if (infraError) relayError = infraError;
        const failed = failures.reduce((n, f) => n + f.ids.length, 0);
        return { claimed: rows.length, published: done.length, failed };
      },
      { timeout: 30_000 + timeoutMs, maxWait: 10_000 },
    );
  }

  async function drainAll(): Promise<DrainResult> {
    const started = performance.now();
    const total: DrainResult = { claimed: 0, published: 0, failed: 0 };
    // Bounded so one call can't run forever under a constant stream of new rows.
    for (let i = 0; i < 1000; i++) {
      relayError = null;
      const r = await drainBatch();
      total.claimed += r.claimed;
      total.published += r.published;
      total.failed += r.failed;
      if (relayError) throw new RelayPausedError(relayError);
      if (r.claimed < batchSize) break;
    }
    if (total.claimed) {
      const durationMs = Math.round(performance.now() - started);
      log.info({ ...total, durationMs }, 'outbox drained');
      opts.onDrain?.({ ...total, durationMs });
    }
    return total;
  }

  function drainOnce(): Promise<DrainResult> {
    const run = chain.then(drainAll);
    chain = run.catch(() => undefined);
    return run;
  }

  // NOTIFY storms coalesce: at most one drain runs and one more is queued behind it.
  function kick(): void {
    pending = true;
    if (looping || stopped || Date.now() < pausedUntil) return;
    looping = true;
    void (async () => {
      while (pending && !stopped) {
        pending = false;
        try {
          await drainOnce();
          pauses = 0;
        } catch (err) {
          const delay = Math.min(500 * 2 ** pauses, 30_000);
          pauses++;
          pausedUntil = Date.now() + delay;
          log.error({ err: err instanceof Error ? err.message : String(err), retryInMs: delay }, 'outbox drain failed; the relay pauses');
          setTimeout(kick, delay).unref?.();
          break;
        }
      }
      looping = false;
    })();
  }

  function schedulePoll(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      kick();
      schedulePoll();
    }, pollMs);
    timer.unref?.();
  }

  async function listen(): Promise<void> {
    if (!opts.databaseUrl || stopped) return;
    const client = new pg.Client({ connectionString: opts.databaseUrl });
    listener = client;
    let retried = false;
    const retry = () => {
      if (retried || stopped) return;
      retried = true;
      client.end().catch(() => undefined);
      // Notifications sent while disconnected are lost: drain on reconnect, poll meanwhile.
      setTimeout(() => void listen().catch(() => undefined), Math.min(pollMs, 1000)).unref?.();
    };
    client.on('error', (err) => {
      log.warn({ err: err.message }, 'outbox listener lost its connection; reconnecting');
      retry();
    });
    client.on('end', retry);
    client.on('notification', () => kick());
    try {
      await client.connect();
      await client.query(`LISTEN ${OUTBOX_NOTIFY_CHANNEL}`);
      kick();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'outbox listener could not connect; polling meanwhile');
      retry();
    }
  }

  void listen();
  schedulePoll();
  kick();

  return {
    drainOnce,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      const l = listener;
      listener = undefined;
      if (l) {
        l.removeAllListeners('end');
        l.on('error', () => undefined);
        await l.end().catch(() => undefined);
      }
      await chain;
      redis.disconnect();
    },
  };
}
