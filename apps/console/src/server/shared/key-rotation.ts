import { newId, type Prisma } from '@tollgate/db';
import { displayPrefix, generateApiKey, hashApiKey } from '@tollgate/keys';
import { enqueueKeyPublish } from './publish';

/**
 * The roll itself, shared by the console and the portal, inside the caller's transaction: a new
 * key with every setting of the old one (consumer, subscription, APIs, scopes, overrides,
 * expiry), the old one expiring after the grace period (0 = revoked now), both republished.
 */
export async function replaceKeyInTx(tx: Prisma.TransactionClient, oldId: string, graceSeconds: number) {
  const old = await tx.apiKey.findUniqueOrThrow({ where: { id: oldId } });
  const now = Date.now();
  const graceEnd = new Date(now + graceSeconds * 1000);
  const secret = generateApiKey(old.env === 'test' ? 'test' : 'live');
  const id = newId('key');
  await tx.apiKey.create({
    data: {
      id,
      tenantId: old.tenantId,
      consumerId: old.consumerId,
      subscriptionId: old.subscriptionId,
      name: old.name,
      hash: hashApiKey(secret),
      prefix: displayPrefix(secret),
      env: old.env,
      expiresAt: old.expiresAt,
      apiIds: old.apiIds,
      scopes: old.scopes,
      // A rolled key keeps its address rules (ADR 0025): rolling must not widen access.
      ...(old.ipRules !== null ? { ipRules: old.ipRules as Prisma.InputJsonValue } : {}),
      rateLimitOverride: old.rateLimitOverride,
      rateWindowOverride: old.rateWindowOverride,
      quotaOverride: old.quotaOverride,
      rolledFromId: old.id,
    },
  });
  await tx.apiKey.update({
    where: { id: old.id },
    data:
      graceSeconds === 0
        ? { status: 'REVOKED', revokedAt: new Date(now) }
        : { expiresAt: old.expiresAt && old.expiresAt < graceEnd ? old.expiresAt : graceEnd },
  });
  await enqueueKeyPublish(tx, old.id);
  await enqueueKeyPublish(tx, id);
  return { id, secret };
}
