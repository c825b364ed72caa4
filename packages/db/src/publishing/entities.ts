import type { Redis } from 'ioredis';
import type { Keyspace } from '@tollgate/policy';
import { compileTenantPolicy, type DbClient } from './compile';
import { OutboxPayload } from './outbox';
import { removeTenantPolicy, withTimeout, writePolicySnapshot } from './redis-writer';

// What the outbox relay and republishAll share: the entity locks that order their writes, outbox
// rows grouped by entity, and publishing one tenant.

/** The subset of pino's API the publishing path logs through. */
export type PublishingLogger = {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
};

export const silentLogger: PublishingLogger = { debug() {}, info() {}, warn() {}, error() {} };

export type ClaimedRow = { id: bigint; kind: string; tenantId: string | null; payload: unknown; attempts: number };

export type Entity =
  | { lock: string; kind: 'policy'; tenantId: string; deleted: boolean; rows: ClaimedRow[] }
  | { lock: string; kind: 'key'; keyId: string; hash: string; rows: ClaimedRow[] };

/** Per-entity lock name: a relay and republishAll hold it while compiling and writing that entity. */
export const lockName = {
  policy: (tenantId: string) => `tg:publish:policy:${tenantId}`,
  key: (keyId: string) => `tg:publish:key:${keyId}`,
};

/**
 * Takes transaction-scoped advisory locks in sorted order (so two lockers never deadlock). With the
 * lock held, whoever compiles an entity later also writes it later: a slower relay can't put an
 * older key record over a newer one.
 */
export async function lockEntities(tx: DbClient, names: string[]): Promise<void> {
  if (!names.length) return;
  const sorted = [...new Set(names)].sort();
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(n, 0)) FROM unnest(${sorted}::text[]) AS n`;
}

/** Claimed rows by the entity they publish (one lock each), in lock order; rows that are not valid payloads apart. */
export function groupRows(rows: ClaimedRow[]): { entities: Entity[]; unreadable: ClaimedRow[] } {
  const byLock = new Map<string, Entity>();
  const unreadable: ClaimedRow[] = [];
  for (const row of rows) {
    const parsed = OutboxPayload.safeParse({ ...(row.payload as object), kind: row.kind });
    if (!parsed.success) {
      unreadable.push(row);
      continue;
    }
    const p = parsed.data;
    if (p.kind === 'key') {
      const lock = lockName.key(p.keyId);
      const e = byLock.get(lock) ?? { lock, kind: 'key' as const, keyId: p.keyId, hash: p.hash, rows: [] };
      e.rows.push(row);
      byLock.set(lock, e);
    } else {
      const lock = lockName.policy(p.tenantId);
      const e = byLock.get(lock) ?? { lock, kind: 'policy' as const, tenantId: p.tenantId, deleted: false, rows: [] };
      if (e.kind === 'policy' && p.kind === 'tenant.deleted') e.deleted = true;
      e.rows.push(row);
      byLock.set(lock, e);
    }
  }
  return { entities: [...byLock.values()].sort((a, b) => (a.lock < b.lock ? -1 : a.lock > b.lock ? 1 : 0)), unreadable };
}

/** Publishes one tenant's current state (or its removal) and records the published version. */
export async function publishTenant(tx: DbClient, redis: Redis, keyspace: Keyspace, tenantId: string, timeoutMs: number): Promise<string> {
  const snapshot = await compileTenantPolicy(tx, tenantId);
  if (!snapshot) {
    await withTimeout(removeTenantPolicy(redis, keyspace, tenantId), timeoutMs, 'removing a tenant from Redis');
    return 'removed';
  }
  const res = await withTimeout(writePolicySnapshot(redis, keyspace, snapshot), timeoutMs, 'writing a policy snapshot');
  if (res !== 'stale') {
    await tx.$executeRaw`
      UPDATE "Tenant" SET "publishedPolicyVersion" = GREATEST("publishedPolicyVersion", ${snapshot.version}), "policyPublishedAt" = now()
      WHERE id = ${tenantId}`;
  }
  return `${res}@${snapshot.version}`;
}
