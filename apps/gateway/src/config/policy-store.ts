import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { compareStreamIds, decodeEvent, decodePolicyChange, PolicySnapshot, type Keyspace, type TgEvent } from '@tollgate/policy';
import { compileTenant, TenantRoutes, type TenantRuntime } from '../routing/route-table';

/** One tenant's swap: `previous` null for a new tenant, `current` null for a removed one. */
export type TenantChange = { tenantId: string; previous: TenantRuntime | null; current: TenantRuntime | null };

export type PolicyStoreOptions = {
  redis: Redis;
  /** A dedicated connection: a subscribed ioredis client can't issue other commands. */
  subscriber: Redis;
  keyspace: Keyspace;
  baseDomain: string;
  /** How often the change stream is polled when no announcement arrives (a few hundred bytes each). */
  resyncIntervalMs: number;
  logger: Logger;
  /** Key invalidations are routed to the key cache. */
  onKeyEvent?: (event: Extract<TgEvent, { type: 'key.updated' | 'key.revoked' }>) => void;
  /** Called after each (re)subscribe: messages may have been lost while disconnected. */
  onResubscribed?: () => void;
  /** The tenants swapped by one load (a batch of up to STREAM_BATCH), never the whole table. */
  onTenantsChanged?: (changes: readonly TenantChange[]) => void;
  /** Called when a full load from Redis completes while the store wasn't yet serving Redis's configuration. */
  onLoaded?: () => void;
  /** Entries read per XREAD (default 1000). */
  streamBatch?: number;
};

const STREAM_BATCH = 1000;
/** Snapshots per MGET: bounds one reply's size and the time one load holds the event loop. */
const LOAD_CHUNK = 200;

type StreamState = { exists: false } | { exists: true; lastGeneratedId: string; entriesAdded: number; length: number };

function isNoSuchKey(err: unknown): boolean {
  return /no such key/i.test((err as Error)?.message ?? '');
}

function parseStreamInfo(info: unknown[]): StreamState {
  const field = (name: string) => {
    const i = info.indexOf(name);
    return i === -1 ? null : info[i + 1];
  };
  return {
    exists: true,
    lastGeneratedId: String(field('last-generated-id') ?? '0-0'),
    entriesAdded: Number(field('entries-added') ?? 0),
    length: Number(field('length') ?? 0),
  };
}

/**
 * Every tenant's policy snapshot, read from Redis only, kept per tenant: a change swaps that
 * tenant's compiled runtime in the routing table and touches nothing else.
 *
 * Changes are followed through the policy change stream (`keyspace.policyStream`, see
 * @tollgate/policy change-stream.ts): the store remembers the id of the last entry it applied and
 * reads only what came after it, on every announcement on `tg:events` (which only wakes it up),
 * on every reconnect and on a timer. A full resynchronisation (the versions hash, then every
 * stale snapshot) runs at boot and when the stream can't say what was missed: entries we never
 * read were trimmed, or the stream is gone or older than our position (Redis lost its data).
 */
export class PolicyStore {
  readonly table: TenantRoutes;
  /** True once a full load has succeeded at least once, or the last good copy was loaded from disk. */
  loaded = false;
  /** Where the configuration served came from: Redis, or the last good copy on disk (ADR 0029) until Redis answers. */
  source: 'redis' | 'disk' | null = null;
  lastSyncAt = 0;
  /** Id of the last change-stream entry applied; null until the first full resync. */
  streamId: string | null = null;
  /** The stream's `entries-added` count at `streamId`: what came after it is `entries-added` now minus this. */
  private streamAdded = 0;
  /** Counters for tests and metrics: how much work the store did. */
  readonly stats = { fullResyncs: 0, pulls: 0, snapshotsLoaded: 0 };
  private maxVersion = 0;
  private timer: NodeJS.Timeout | null = null;
  private syncing: Promise<void> | null = null;
  private syncAgain = false;
  private needFull = true;
  /** Versions announced on pub/sub; loaded directly if the stream didn't carry them (an older publisher). */
  private readonly hinted = new Map<string, number>();
  private stopped = false;

  constructor(private readonly opts: PolicyStoreOptions) {
    this.table = new TenantRoutes(opts.baseDomain);
  }

  async start(): Promise<void> {
    const { subscriber, keyspace, logger } = this.opts;
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === keyspace.eventsChannel) this.handleMessage(message);
    });
    subscriber.on('ready', () => {
      // ioredis re-subscribes by itself after a reconnect; we only need to catch up.
      this.opts.onResubscribed?.();
      void this.resync('reconnect');
    });
    subscriber.on('error', (err) => logger.warn({ err: err.message }, 'policy subscriber error'));
    this.timer = setInterval(() => void this.resync('timer'), this.opts.resyncIntervalMs);
    this.timer.unref();
    // Not awaited: with Redis down at boot the subscription completes whenever it comes back.
    subscriber
      .subscribe(keyspace.eventsChannel)
      .catch((err: Error) => logger.warn({ err: err.message }, 'subscribe failed; will retry on reconnect'));
    await this.resync('boot');
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** The highest snapshot version this store has loaded (kept, not recomputed, so reading it is O(1)). */
  get version(): number {
    return this.maxVersion;
  }

  get tenantCount(): number {
    return this.table.tenants.size;
  }

  private handleMessage(raw: string): void {
    const event = decodeEvent(raw);
    if (!event) {
      this.opts.logger.warn('ignored an unreadable policy event');
      return;
    }
    switch (event.type) {
      case 'key.updated':
      case 'key.revoked':
        this.opts.onKeyEvent?.(event);
        return;
      case 'tenant.deleted':
        this.apply([this.removeTenant(event.tenantId)]);
        void this.resync('event');
        return;
      case 'policy.updated': {
        const current = this.table.tenants.get(event.tenantId);
        if (current && current.version >= event.version) return;
        this.hinted.set(event.tenantId, Math.max(this.hinted.get(event.tenantId) ?? 0, event.version));
        void this.resync('event');
        return;
      }
    }
  }

  /** Catches up with the change stream (or fully, when it must). Serialised; calls during a run coalesce into one more. */
  resync(reason: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      try {
        do {
          this.syncAgain = false;
          await this.syncOnce(reason);
        } while (this.syncAgain && !this.stopped);
      } catch (err) {
        this.syncFailed(err);
      } finally {
        this.syncing = null;
      }
    })();
    return this.syncing;
  }

  /** Forces a full resynchronisation on the next sync (tests; operators through a restart). */
  requestFullResync(): Promise<void> {
    this.needFull = true;
    return this.resync('requested');
  }

  private syncFailed(err: unknown): void {
    this.opts.logger.warn({ err: (err as Error).message }, 'policy sync failed; serving the last known configuration');
  }

  private async syncOnce(reason: string): Promise<void> {
    if (this.needFull || this.streamId === null) await this.fullResync(reason);
    else await this.pull();
    if (this.hinted.size) await this.loadHinted();
    this.lastSyncAt = Date.now();
  }

  private async readStreamState(): Promise<StreamState> {
    try {
      return parseStreamInfo((await this.opts.redis.xinfo('STREAM', this.opts.keyspace.policyStream)) as unknown[]);
    } catch (err) {
      if (isNoSuchKey(err)) return { exists: false };
      throw err;
    }
  }

  /** Reads the change stream from our position: one round trip when nothing changed. */
  private async pull(): Promise<void> {
    const { redis, keyspace } = this.opts;
    const from = this.streamId!;
    const batch = this.opts.streamBatch ?? STREAM_BATCH;
    // XINFO and XREAD in one transaction: the gap check must describe exactly what XREAD returns
    // (a trim between the two would otherwise go unnoticed). One round trip; both touch one key.
    const replies =
      (await redis.multi().xinfo('STREAM', keyspace.policyStream).xread('COUNT', batch, 'STREAMS', keyspace.policyStream, from).exec()) ??
      [];
    this.stats.pulls++;
    const [infoErr, info] = replies[0] ?? [new Error('no reply')];
    if (infoErr && !isNoSuchKey(infoErr)) throw infoErr;
    if (replies[1]?.[0]) throw replies[1][0];
    const state: StreamState = infoErr ? { exists: false } : parseStreamInfo(info as unknown[]);
    if (!state.exists) {
      if (from === '0-0') return;
      return this.gap('the change stream is gone (Redis lost its data?)');
    }
    // Trimming leaves no trace in the ids (max-deleted-entry-id only follows XDEL), but the stream
    // counts every entry ever added and nothing but trimming removes one: more entries after our
    // position than the stream holds means some were trimmed unread.
    if (state.entriesAdded - this.streamAdded > state.length)
      return this.gap('change stream entries were trimmed before this gateway read them');
    if (state.entriesAdded < this.streamAdded || compareStreamIds(state.lastGeneratedId, from) < 0)
      return this.gap('the change stream was recreated (Redis lost its data?)');
    const res = replies[1]?.[1] as [string, [string, string[]][]][] | null;
    const entries = res?.[0]?.[1] ?? [];
    if (!entries.length) return;
    // Collapse the batch to the last word per tenant: a republish of 10k tenants is one load per tenant.
    const latest = new Map<string, number | 'deleted'>();
    for (const [, fields] of entries) {
      const change = decodePolicyChange(fields);
      if (!change) continue;
      if ('deleted' in change) latest.set(change.tenantId, 'deleted');
      else {
        const seen = latest.get(change.tenantId);
        latest.set(change.tenantId, typeof seen === 'number' ? Math.max(seen, change.version) : change.version);
      }
    }
    const removed: TenantChange[] = [];
    const stale: string[] = [];
    for (const [tenantId, v] of latest) {
      if (v === 'deleted') {
        removed.push(this.removeTenant(tenantId));
        continue;
      }
      const current = this.table.tenants.get(tenantId);
      if (!current || current.version < v) stale.push(tenantId);
    }
    this.apply(removed);
    await this.loadTenants(stale);
    this.streamId = entries[entries.length - 1]![0];
    this.streamAdded += entries.length;
    if (entries.length >= batch) this.syncAgain = true;
  }

  private gap(why: string): Promise<void> {
    this.opts.logger.warn({ position: this.streamId }, `${why}: resynchronising every tenant`);
    return this.fullResync('gap');
  }

  /** Compares every tenant's version with the versions hash and loads what changed. */
  private async fullResync(reason: string): Promise<void> {
    const { redis, keyspace } = this.opts;
    // The stream position first: a change published while we read the hash is then read again
    // from the stream (harmless), never skipped.
    const state = await this.readStreamState();
    const versions = await redis.hgetall(keyspace.policyVersions);
    this.stats.fullResyncs++;
    const stale: string[] = [];
    for (const [tenantId, v] of Object.entries(versions)) {
      const current = this.table.tenants.get(tenantId);
      if (!current || current.version < Number(v)) stale.push(tenantId);
    }
    // An empty versions hash means Redis lost its data (restart without persistence, flush), not
    // that every tenant was deleted: keep serving what we have until the control plane republishes.
    // Deletions otherwise arrive as tenant.deleted events, stream entries or a hash that lacks the tenant.
    if (stale.length || Object.keys(versions).length > 0) {
      const removed: TenantChange[] = [];
      for (const tenantId of [...this.table.tenants.keys()]) if (!(tenantId in versions)) removed.push(this.removeTenant(tenantId));
      this.apply(removed);
    }
    await this.loadTenants(stale);
    this.streamId = state.exists ? state.lastGeneratedId : '0-0';
    this.streamAdded = state.exists ? state.entriesAdded : 0;
    this.needFull = false;
    const first = this.source !== 'redis';
    if (first) this.opts.logger.info({ tenants: this.table.tenants.size, reason }, 'policy loaded');
    this.loaded = true;
    this.source = 'redis';
    if (first) this.opts.onLoaded?.();
  }

  /**
   * Serves the last good snapshots saved on disk (ADR 0029) when nothing could be loaded from
   * Redis. Ignored once Redis has answered; the next full resync replaces them as usual.
   */
  seedFromDisk(snapshots: readonly PolicySnapshot[]): boolean {
    if (this.loaded || snapshots.length === 0) return false;
    const changes: TenantChange[] = [];
    for (const snap of snapshots) {
      const next = compileTenant(snap);
      this.table.upsert(next);
      this.maxVersion = Math.max(this.maxVersion, next.version);
      changes.push({ tenantId: snap.tenantId, previous: null, current: next });
    }
    this.loaded = true;
    this.source = 'disk';
    this.opts.logger.warn({ tenants: snapshots.length }, 'redis unreachable at boot: serving the last good configuration from disk');
    this.apply(changes);
    return true;
  }

  /** Every tenant's current snapshot (what the last good copy saves). */
  snapshots(): PolicySnapshot[] {
    return [...this.table.tenants.values()].map((t) => t.snapshot);
  }

  /** Announced versions the stream didn't bring (a publisher that only announces): loaded directly. */
  private async loadHinted(): Promise<void> {
    const ids: string[] = [];
    for (const [tenantId, v] of this.hinted) {
      const current = this.table.tenants.get(tenantId);
      if (!current || current.version < v) ids.push(tenantId);
    }
    this.hinted.clear();
    await this.loadTenants(ids);
  }

  private removeTenant(tenantId: string): TenantChange {
    const previous = this.table.remove(tenantId) ?? null;
    return { tenantId, previous, current: null };
  }

  private apply(changes: TenantChange[]): void {
    const real = changes.filter((c) => c.previous !== c.current);
    if (real.length) this.opts.onTenantsChanged?.(real);
  }

  private async loadTenants(tenantIds: string[]): Promise<void> {
    for (let i = 0; i < tenantIds.length; i += LOAD_CHUNK) await this.loadChunk(tenantIds.slice(i, i + LOAD_CHUNK));
  }

  private async loadChunk(tenantIds: string[]): Promise<void> {
    if (!tenantIds.length) return;
    const { redis, keyspace, logger } = this.opts;
    const raws = await redis.mget(...tenantIds.map((id) => keyspace.policy(id)));
    const changes: TenantChange[] = [];
    tenantIds.forEach((tenantId, i) => {
      const raw = raws[i];
      if (raw == null) return;
      this.stats.snapshotsLoaded++;
      let parsed;
      try {
        parsed = PolicySnapshot.safeParse(JSON.parse(raw));
      } catch {
        parsed = null;
      }
      if (!parsed?.success) {
        // Keep serving the previous version rather than dropping a tenant on a bad publish.
        logger.error({ tenantId }, 'refused an invalid policy snapshot');
        return;
      }
      if (parsed.data.tenantId !== tenantId) {
        logger.error({ tenantId }, 'refused a snapshot stored under another tenant id');
        return;
      }
      const current = this.table.tenants.get(tenantId);
      if (current && current.version >= parsed.data.version) return;
      const next = compileTenant(parsed.data);
      this.table.upsert(next);
      this.maxVersion = Math.max(this.maxVersion, next.version);
      changes.push({ tenantId, previous: current ?? null, current: next });
    });
    this.apply(changes);
  }
}
