import { z } from 'zod';
import type { DbClient } from './compile';

/** PostgreSQL NOTIFY channel that wakes relays as soon as an outbox row commits. */
export const OUTBOX_NOTIFY_CHANNEL = 'tollgate_outbox';

/**
 * Outbox rows say *what* changed, never the new state: the relay compiles the current state when
 * it publishes, so replays and out-of-order processing can only ever publish the newest truth.
 * A key row carries the key's hash because a deleted key can't be looked up any more.
 */
export const OutboxPayload = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('policy'), tenantId: z.string().min(1).max(64) }),
  z.object({ kind: z.literal('key'), keyId: z.string().min(1).max(64), hash: z.string().regex(/^[0-9a-f]{64}$/) }),
  z.object({ kind: z.literal('tenant.deleted'), tenantId: z.string().min(1).max(64) }),
]);
export type OutboxPayload = z.infer<typeof OutboxPayload>;
export type OutboxKind = OutboxPayload['kind'];

export class UnknownEntityError extends Error {
  constructor(what: string, id: string) {
    super(`${what} ${JSON.stringify(String(id).slice(0, 80))} does not exist`);
    this.name = 'UnknownEntityError';
  }
}

async function notifyRelays(tx: DbClient): Promise<void> {
  // Delivered at COMMIT only, so a relay never wakes for a change it can't see yet.
  await tx.$executeRaw`SELECT pg_notify(${OUTBOX_NOTIFY_CHANNEL}, '')`;
}

/**
 * Call inside the transaction that changes anything in the tenant's snapshot (APIs, routes,
 * targets, plans, domains). Bumps `Tenant.policyVersion` and queues a publish of that version.
 */
export async function enqueuePolicyPublish(tx: DbClient, tenantId: string): Promise<{ version: number; outboxId: bigint }> {
  const rows = await tx.$queryRaw<{ policyVersion: number }[]>`
    UPDATE "Tenant" SET "policyVersion" = "policyVersion" + 1, "updatedAt" = now()
    WHERE id = ${tenantId} RETURNING "policyVersion"`;
  const version = rows[0]?.policyVersion;
  if (version === undefined) throw new UnknownEntityError('tenant', tenantId);
  const row = await tx.outboxEvent.create({
    data: { tenantId, kind: 'policy', payload: { kind: 'policy', tenantId, version } },
    select: { id: true },
  });
  await notifyRelays(tx);
  return { version, outboxId: row.id };
}

/**
 * Call inside the transaction that changes a key (status, expiry, overrides, APIs) — and, for a
 * key being deleted, *before* the delete: the row keeps the hash so the relay can remove it.
 */
export async function enqueueKeyPublish(tx: DbClient, keyId: string): Promise<{ outboxId: bigint }> {
  const key = await tx.apiKey.findUnique({ where: { id: keyId }, select: { id: true, hash: true, tenantId: true } });
  if (!key) throw new UnknownEntityError('API key', keyId);
  const row = await tx.outboxEvent.create({
    data: { tenantId: key.tenantId, kind: 'key', payload: { kind: 'key', keyId: key.id, hash: key.hash } },
    select: { id: true },
  });
  await notifyRelays(tx);
  return { outboxId: row.id };
}

async function enqueueKeysWhere(tx: DbClient, column: 'subscriptionId' | 'consumerId', id: string): Promise<number> {
  // One INSERT … SELECT, so a subscription or consumer with many keys is one round trip.
  // `column` is one of two literals above, never input.
  const count = await tx.$executeRawUnsafe(
    `INSERT INTO "OutboxEvent" ("tenantId", kind, payload)
     SELECT k."tenantId", 'key', jsonb_build_object('kind', 'key', 'keyId', k.id, 'hash', k.hash)
     FROM "ApiKey" k WHERE k."${column}" = $1`,
    id,
  );
  if (count > 0) await notifyRelays(tx);
  return count;
}

/** Every key of a subscription (after a plan change, a Stripe state change, a renewal). Returns how many. */
export async function enqueueSubscriptionKeysPublish(tx: DbClient, subscriptionId: string): Promise<number> {
  return enqueueKeysWhere(tx, 'subscriptionId', subscriptionId);
}

/** Every key of a consumer (suspended, approved, reinstated). Returns how many. */
export async function enqueueConsumerKeysPublish(tx: DbClient, consumerId: string): Promise<number> {
  return enqueueKeysWhere(tx, 'consumerId', consumerId);
}

/**
 * Call inside the transaction that deletes a tenant, before the delete. Its rows are written
 * without a tenant reference because the tenant's own outbox rows go with it (cascade); the relay
 * then removes the snapshot and every key record and announces `tenant.deleted`.
 */
export async function enqueueTenantDeletion(tx: DbClient, tenantId: string): Promise<{ keys: number }> {
  const tenant = await tx.tenant.findUnique({ where: { id: tenantId }, select: { id: true } });
  if (!tenant) throw new UnknownEntityError('tenant', tenantId);
  const keys = await tx.$executeRaw`
    INSERT INTO "OutboxEvent" ("tenantId", kind, payload)
    SELECT NULL, 'key', jsonb_build_object('kind', 'key', 'keyId', k.id, 'hash', k.hash)
    FROM "ApiKey" k WHERE k."tenantId" = ${tenantId}`;
  await tx.outboxEvent.create({ data: { tenantId: null, kind: 'tenant.deleted', payload: { kind: 'tenant.deleted', tenantId } } });
  await notifyRelays(tx);
  return { keys };
}
