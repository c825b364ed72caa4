import type { Redis } from 'ioredis';
import { KeyRecord, type Keyspace } from '@tollgate/policy';
import type { RedisBreaker } from '@tollgate/ratelimit';

type Entry = {
  /** null = no such key (negative entry). */
  record: KeyRecord | null;
  expiresAt: number;
  /** What a fresh hit returns: made once per entry, not per request. */
  answer: KeyLookup;
  /** `moves` when the entry last went to the young end of the LRU. */
  movedAt: number;
};

export type KeyLookup =
  | { kind: 'found'; record: KeyRecord; stale: boolean }
  | { kind: 'missing' }
  /** Redis failed and nothing usable is cached. */
  | { kind: 'unavailable' };

export type KeyCacheOptions = {
  redis: Redis;
  keyspace: Keyspace;
  size: number;
  ttlMs: number;
  negativeTtlMs: number;
  /** Bound on the Redis read for a miss; past it the lookup counts as a Redis failure. */
  timeoutMs?: number;
  now?: () => number;
  onRedisError?: (err: Error) => void;
  /** Shared with the limiter: while open, a miss reads no Redis and gets the stale entry or `unavailable`. */
  breaker?: RedisBreaker | null;
};

/**
 * Key records by SHA-256, in an LRU with short TTLs for found and missing keys. Expired
 * entries are kept (until evicted) as a fallback for when Redis is unreachable: the gateway
 * serves on what it last knew. Revocation events write a tombstone instead of deleting, so a
 * revoked key stays refused even if Redis then goes away.
 */
export class KeyCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<KeyLookup>>();
  /** Bumped on each invalidation, so a fetch that raced one doesn't cache stale data. */
  private generation = 0;
  private readonly now: () => number;
  /** Entries stored or moved to the young end so far: an entry's age in the LRU is `moves - movedAt`. */
  private moves = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly opts: KeyCacheOptions) {
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** A fresh cached answer, synchronously; undefined when Redis must be asked. */
  peek(hash: string): KeyLookup | undefined {
    const e = this.entries.get(hash);
    if (!e || e.expiresAt <= this.now()) return undefined;
    // Refresh recency (delete + set moves it to the young end of the Map) only once the entry has
    // aged a quarter of the way through: a hot key then costs that once per size/4 other entries,
    // not on every call. Approximate LRU: an entry hit survives at least 3/4 of `size` new ones.
    if (this.moves - e.movedAt > this.opts.size >> 2) {
      this.entries.delete(hash);
      this.entries.set(hash, e);
      e.movedAt = ++this.moves;
    }
    this.hits++;
    return e.answer;
  }

  lookup(hash: string): KeyLookup | Promise<KeyLookup> {
    const cached = this.peek(hash);
    if (cached) return cached;
    let p = this.inflight.get(hash);
    if (!p) {
      this.misses++;
      p = this.fetch(hash).finally(() => this.inflight.delete(hash));
      this.inflight.set(hash, p);
    }
    return p;
  }

  private async fetch(hash: string): Promise<KeyLookup> {
    const gen = this.generation;
    const breaker = this.opts.breaker ?? null;
    if (breaker !== null && !breaker.allow()) return this.fallback(hash);
    let raw: string | null;
    try {
      raw = await withTimeout(this.opts.redis.get(this.opts.keyspace.key(hash)), this.opts.timeoutMs ?? 1000);
    } catch (err) {
      breaker?.failure();
      this.opts.onRedisError?.(err as Error);
      return this.fallback(hash);
    }
    breaker?.success();
    return this.remember(hash, raw, gen);
  }

  /** What this process last knew of `hash` when Redis can't be asked: a stale entry, else `unavailable`. */
  fallback(hash: string): KeyLookup {
    const stale = this.entries.get(hash);
    if (stale?.record) return { kind: 'found', record: stale.record, stale: true };
    if (stale) return MISSING;
    return UNAVAILABLE;
  }

  /** The invalidation generation now: a read started now may store its answer if it is unchanged. */
  get currentGeneration(): number {
    return this.generation;
  }

  /**
   * Caches a record read from Redis (its JSON text, null = no such key) by a read that started at
   * generation `gen`, and returns the lookup it makes. Shared by this cache's reads and the
   * cold-key script's (limits/cold-path.ts).
   */
  remember(hash: string, raw: string | null, gen: number): KeyLookup {
    let record: KeyRecord | null = null;
    if (raw !== null) {
      try {
        const parsed = KeyRecord.safeParse(JSON.parse(raw));
        if (parsed.success) record = parsed.data;
      } catch {
        record = null;
      }
    }
    if (gen === this.generation) {
      this.store(hash, record);
      return this.entries.get(hash)!.answer;
    }
    return record ? { kind: 'found', record, stale: false } : MISSING;
  }

  private store(hash: string, record: KeyRecord | null): void {
    this.entries.delete(hash);
    this.entries.set(hash, entry(record, this.now() + (record ? this.opts.ttlMs : this.opts.negativeTtlMs), ++this.moves));
    while (this.entries.size > this.opts.size) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /** `key.updated`: forget it; the next request reads the new record. */
  invalidate(hash: string): void {
    this.generation++;
    this.entries.delete(hash);
  }

  /** `key.revoked`: refuse it from now on without asking Redis. */
  revoke(hash: string): void {
    this.generation++;
    const e = this.entries.get(hash);
    if (e?.record) {
      this.entries.set(hash, entry({ ...e.record, status: 'revoked' }, this.now() + this.opts.ttlMs, e.movedAt));
    } else {
      this.entries.delete(hash);
    }
  }

  /** After a pub/sub reconnect events may have been missed: everything must be re-read. */
  expireAll(): void {
    this.generation++;
    for (const e of this.entries.values()) e.expiresAt = 0;
  }
}

const MISSING: KeyLookup = Object.freeze({ kind: 'missing' });
const UNAVAILABLE: KeyLookup = Object.freeze({ kind: 'unavailable' });

function entry(record: KeyRecord | null, expiresAt: number, movedAt: number): Entry {
  return { record, expiresAt, answer: record ? Object.freeze({ kind: 'found', record, stale: false }) : MISSING, movedAt };
}

/** Rejects after `ms` (the late answer is dropped). Only misses pay for this timer. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    // After the turn's I/O (setImmediate): a reply already waiting is read first.
    timer = setTimeout(() => setImmediate(() => reject(new Error(`redis did not answer within ${ms} ms`))), ms);
  });
  p.catch(() => undefined);
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
