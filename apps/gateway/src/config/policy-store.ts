import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { decodeEvent, PolicySnapshot, type Keyspace, type TgEvent } from '@tollgate/policy';
import { buildRouteTable, compileTenant, EMPTY_TABLE, type RouteTable, type TenantRuntime } from '../routing/route-table';

export type PolicyStoreOptions = {
  redis: Redis;
  /** A dedicated connection: a subscribed ioredis client can't issue other commands. */
  subscriber: Redis;
  keyspace: Keyspace;
  baseDomain: string;
  resyncIntervalMs: number;
  logger: Logger;
  /** Key invalidations are routed to the key cache. */
  onKeyEvent?: (event: Extract<TgEvent, { type: 'key.updated' | 'key.revoked' }>) => void;
  /** Called after each (re)subscribe: messages may have been lost while disconnected. */
  onResubscribed?: () => void;
  onTableChanged?: (table: RouteTable) => void;
};

/**
 * Every tenant's policy snapshot, read from Redis only. The routing table is immutable and
 * replaced as a whole, so a request sees either the old or the new configuration, never a mix.
 * Pub/sub drops messages while disconnected, hence a full version comparison on every
 * (re)subscribe and on a timer.
 */
export class PolicyStore {
  table: RouteTable = EMPTY_TABLE;
  /** True once a full load has succeeded at least once. */
  loaded = false;
  lastSyncAt = 0;
  private readonly tenants = new Map<string, TenantRuntime>();
  private timer: NodeJS.Timeout | null = null;
  private syncing: Promise<void> | null = null;
  private syncAgain = false;
  private stopped = false;

  constructor(private readonly opts: PolicyStoreOptions) {}

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

  get version(): number {
    let max = 0;
    for (const t of this.tenants.values()) max = Math.max(max, t.version);
    return max;
  }

  get tenantCount(): number {
    return this.tenants.size;
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
        if (this.tenants.delete(event.tenantId)) this.publishTable();
        return;
      case 'policy.updated': {
        const current = this.tenants.get(event.tenantId);
        if (!current || current.version < event.version) void this.loadTenants([event.tenantId]).catch((err) => this.syncFailed(err));
        return;
      }
    }
  }

  /** Compares every tenant's version with Redis and loads what changed. Serialised. */
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

  private syncFailed(err: unknown): void {
    this.opts.logger.warn({ err: (err as Error).message }, 'policy sync failed; serving the last known configuration');
  }

  private async syncOnce(reason: string): Promise<void> {
    const versions = await this.opts.redis.hgetall(this.opts.keyspace.policyVersions);
    const stale: string[] = [];
    for (const [tenantId, v] of Object.entries(versions)) {
      const current = this.tenants.get(tenantId);
      if (!current || current.version < Number(v)) stale.push(tenantId);
    }
    let removed = false;
    // An empty versions hash means Redis lost its data (restart without persistence, flush), not
    // that every tenant was deleted: keep serving what we have until the control plane republishes.
    // Deletions otherwise arrive as tenant.deleted events or as a hash that lacks the tenant.
    if (stale.length || Object.keys(versions).length > 0) {
      for (const tenantId of this.tenants.keys()) {
        if (!(tenantId in versions)) {
          this.tenants.delete(tenantId);
          removed = true;
        }
      }
    }
    if (stale.length) await this.loadTenants(stale);
    else if (removed) this.publishTable();
    if (!this.loaded) this.opts.logger.info({ tenants: this.tenants.size, reason }, 'policy loaded');
    this.loaded = true;
    this.lastSyncAt = Date.now();
  }

  private async loadTenants(tenantIds: string[]): Promise<void> {
    const { redis, keyspace, logger } = this.opts;
    const raws = await redis.mget(...tenantIds.map((id) => keyspace.policy(id)));
    let changed = false;
    tenantIds.forEach((tenantId, i) => {
      const raw = raws[i];
      if (raw == null) return;
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
      const current = this.tenants.get(tenantId);
      if (current && current.version >= parsed.data.version) return;
      this.tenants.set(tenantId, compileTenant(parsed.data));
      changed = true;
    });
    if (changed) this.publishTable();
  }

  private publishTable(): void {
    this.table = buildRouteTable(this.tenants.values(), this.opts.baseDomain);
    this.opts.onTableChanged?.(this.table);
  }
}
