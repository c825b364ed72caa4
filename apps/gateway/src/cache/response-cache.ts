import { createHash } from 'node:crypto';
import type { CompiledApi, RouteTable, TenantRuntime } from '../routing/route-table';

export type CachedResponse = {
  status: number;
  /** Response headers as sent on a miss, minus per-request ones (limits, request id, Age, X-Cache). */
  headers: Record<string, string | string[]>;
  body: Buffer;
};

export type CacheEntry = CachedResponse & {
  key: string;
  primary: string;
  /** `tenantId \0 apiId`: what a policy change invalidates. */
  scope: string;
  gen: number;
  storedAt: number;
  expiresAt: number;
  initialAgeSeconds: number;
  size: number;
};

export type ResponseCacheOptions = {
  maxEntries: number;
  maxBytes: number;
  /** Largest body stored; larger responses stream through and are not kept. */
  maxEntryBytes: number;
  now?: () => number;
};

/** Fixed cost per entry on top of body, headers and key (Map slots, objects). */
const ENTRY_OVERHEAD = 256;
/** Variants kept per primary key; a `Vary` on a high-cardinality header can't crowd out the rest. */
const MAX_VARIANTS = 32;

export type KeyParts = {
  tenantId: string;
  api: CompiledApi;
  routeId: string;
  /** Who the upstream was told is calling (consumer, key, plan, forwarded claims) or '' for anonymous. */
  identity: string;
  host: string;
  proto: string;
  /** Canonical path below the API's base path. */
  path: string;
  query: string;
};

/**
 * The gateway's per-process response cache: an LRU over (primary key + Vary'd request header
 * values), bounded by entries and by bytes. Entries carry the generation of their API's policy;
 * a snapshot that changes the API (or removes it) bumps the generation, which makes its entries
 * unreachable at once and drops them on the table change.
 */
export class ResponseCache {
  /** Insertion order = recency order: the first entry is the least recently used. */
  private readonly entries = new Map<string, CacheEntry>();
  private readonly primaries = new Map<string, { vary: string[]; count: number }>();
  private readonly scopes = new Map<string, { fingerprint: string; gen: number }>();
  private readonly apiGens = new WeakMap<CompiledApi, number>();
  private nextGen = 1;
  private readonly now: () => number;
  bytes = 0;
  /** Lookup results and stores since start, for /metrics. */
  readonly counts = { hit: 0, miss: 0, bypass: 0, coalesced: 0, stored: 0, evicted: 0, invalidated: 0 };
  /** Misses on their way to the upstream, by primary key: later misses wait for them (coalescing). */
  private readonly fills = new Map<string, Promise<void>>();

  constructor(readonly opts: ResponseCacheOptions) {
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  get maxEntryBytes(): number {
    return this.opts.maxEntryBytes;
  }

  /** The API's current policy generation (a compiled API object never changes, so it's memoised). */
  generation(tenantId: string, api: CompiledApi): number {
    let gen = this.apiGens.get(api);
    if (gen !== undefined) return gen;
    const scope = `${tenantId}\0${api.id}`;
    const fingerprint = createHash('sha256').update(JSON.stringify(api.policy)).digest('base64');
    const known = this.scopes.get(scope);
    if (known && known.fingerprint === fingerprint) gen = known.gen;
    else {
      gen = this.nextGen++;
      this.scopes.set(scope, { fingerprint, gen });
    }
    this.apiGens.set(api, gen);
    return gen;
  }

  primaryKey(p: KeyParts): string {
    const gen = this.generation(p.tenantId, p.api);
    // NUL can't occur in any part: hosts, paths and queries with control characters are refused
    // before routing, ids come from the snapshot, identity values are header-safe.
    return `${p.tenantId}\0${p.api.id}\0${gen}\0${p.routeId}\0${p.identity}\0${p.proto}\0${p.host}\0${p.path}\0${p.query}`;
  }

  /** A fresh entry for this request, or null. `header` returns a request header as the upstream would see it. */
  lookup(primary: string, header: (name: string) => string): CacheEntry | null {
    const p = this.primaries.get(primary);
    if (!p) return null;
    const key = variantKey(primary, p.vary, header);
    const e = this.entries.get(key);
    if (!e) return null;
    if (this.now() >= e.expiresAt) {
      this.remove(e);
      return null;
    }
    this.entries.delete(key);
    this.entries.set(key, e);
    return e;
  }

  /** The fill already under way for this primary key, if any. */
  fillInProgress(primary: string): Promise<void> | undefined {
    return this.fills.get(primary);
  }

  /** Marks this primary key as being fetched; call the returned function once it is over, however it ended. */
  beginFill(primary: string): () => void {
    let end!: () => void;
    const done = new Promise<void>((resolve) => (end = resolve));
    this.fills.set(primary, done);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (this.fills.get(primary) === done) this.fills.delete(primary);
      end();
    };
  }

  ageSeconds(e: CacheEntry): number {
    return e.initialAgeSeconds + Math.max(0, Math.floor((this.now() - e.storedAt) / 1000));
  }

  store(
    primary: string,
    scope: { tenantId: string; api: CompiledApi },
    vary: string[],
    header: (name: string) => string,
    res: CachedResponse,
    ttlMs: number,
    initialAgeSeconds: number,
  ): boolean {
    if (res.body.length > this.opts.maxEntryBytes) return false;
    const gen = this.generation(scope.tenantId, scope.api);
    const scopeKey = `${scope.tenantId}\0${scope.api.id}`;
    // The response was fetched under a policy that has since changed (or is gone): don't keep it.
    if (this.scopes.get(scopeKey)?.gen !== gen || !primary.startsWith(`${scopeKey}\0${gen}\0`)) return false;
    let p = this.primaries.get(primary);
    if (p && !sameList(p.vary, vary)) {
      // The upstream changed what it varies on: the old variants can't be matched any more.
      for (const e of [...this.entries.values()]) if (e.primary === primary) this.remove(e);
      p = undefined;
    }
    const key = variantKey(primary, vary, header);
    const old = this.entries.get(key);
    if (old) this.remove(old);
    p = this.primaries.get(primary);
    if (!p) {
      p = { vary, count: 0 };
      this.primaries.set(primary, p);
    }
    if (p.count >= MAX_VARIANTS) return false;
    let size = ENTRY_OVERHEAD + res.body.length + key.length * 2;
    for (const name in res.headers) {
      const v = res.headers[name]!;
      size += name.length + (Array.isArray(v) ? v.reduce((n, s) => n + s.length, 0) : v.length);
    }
    if (size > this.opts.maxBytes) return false;
    const now = this.now();
    const entry: CacheEntry = {
      ...res,
      key,
      primary,
      scope: scopeKey,
      gen,
      storedAt: now,
      expiresAt: now + ttlMs,
      initialAgeSeconds,
      size,
    };
    this.entries.set(key, entry);
    p.count++;
    this.bytes += size;
    this.counts.stored++;
    while (this.entries.size > this.opts.maxEntries || this.bytes > this.opts.maxBytes) {
      const oldest = this.entries.values().next().value as CacheEntry;
      this.remove(oldest);
      this.counts.evicted++;
    }
    return true;
  }

  /** Drops entries of APIs whose policy changed or that are gone; called after every table swap. */
  retain(table: RouteTable): number {
    const current = new Map<string, number>();
    for (const t of table.tenants.values()) for (const a of t.apis) current.set(`${t.tenantId}\0${a.id}`, this.generation(t.tenantId, a));
    for (const scope of this.scopes.keys()) if (!current.has(scope)) this.scopes.delete(scope);
    let dropped = 0;
    for (const e of [...this.entries.values()]) {
      if (current.get(e.scope) !== e.gen) {
        this.remove(e);
        dropped++;
        this.counts.invalidated++;
      }
    }
    return dropped;
  }

  /**
   * retain() for swapped tenants only (`current` null: removed): looks at their APIs and at
   * cached entries, never at the other tenants. APIs nothing was cached for cost nothing.
   */
  retainTenants(changes: readonly { tenantId: string; previous: TenantRuntime | null; current: TenantRuntime | null }[]): number {
    if (!this.scopes.size) return 0;
    const affected = new Map<string, number | null>();
    for (const { tenantId, previous, current } of changes) {
      for (const a of previous?.apis ?? []) {
        const scope = `${tenantId}\0${a.id}`;
        if (this.scopes.has(scope)) affected.set(scope, null);
      }
      for (const a of current?.apis ?? []) {
        const scope = `${tenantId}\0${a.id}`;
        if (this.scopes.has(scope)) affected.set(scope, this.generation(tenantId, a));
      }
    }
    if (!affected.size) return 0;
    for (const [scope, gen] of affected) if (gen === null) this.scopes.delete(scope);
    let dropped = 0;
    for (const e of [...this.entries.values()]) {
      const gen = affected.get(e.scope);
      if (gen !== undefined && gen !== e.gen) {
        this.remove(e);
        dropped++;
        this.counts.invalidated++;
      }
    }
    return dropped;
  }

  /** Removes expired entries (lookups drop them lazily; this frees memory nobody asks for). */
  sweep(): number {
    const now = this.now();
    let n = 0;
    for (const e of [...this.entries.values()]) {
      if (now >= e.expiresAt) {
        this.remove(e);
        n++;
      }
    }
    return n;
  }

  clear(): void {
    this.entries.clear();
    this.primaries.clear();
    this.bytes = 0;
  }

  private remove(e: CacheEntry): void {
    if (this.entries.get(e.key) !== e) return;
    this.entries.delete(e.key);
    this.bytes -= e.size;
    const p = this.primaries.get(e.primary);
    if (p && --p.count <= 0) this.primaries.delete(e.primary);
  }
}

function variantKey(primary: string, vary: readonly string[], header: (name: string) => string): string {
  if (vary.length === 0) return primary;
  let key = primary;
  for (const name of vary) key += `\0${name}=${JSON.stringify(header(name))}`;
  return key;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
