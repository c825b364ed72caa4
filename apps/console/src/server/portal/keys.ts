import { z } from 'zod';
import { enqueueKeyPublish, newId, type Prisma } from '@tollgate/db';
import { displayPrefix, generateApiKey, hashApiKey } from '@tollgate/keys';
import { notFound, ServiceError } from '../shared/context';
import { Id, parseInput, SafeText } from '../shared/validation';
import { replaceKeyInTx } from '../shared/key-rotation';
import { currentSubscription, requireApproved } from './subscriptions';
import { developerActor, type DeveloperContext } from './context';
import { recordAudit } from '../shared/audit';

export const MAX_KEYS_PER_DEVELOPER = 20;
const MAX_GRACE_SECONDS = 7 * 86_400;

export const CreateMyKeyInput = z.object({ name: SafeText(100).default('') }).strict();
export const RenameMyKeyInput = z.object({ name: SafeText(100) }).strict();
export const RollMyKeyInput = z
  .object({
    graceSeconds: z.coerce
      .number({ error: 'must be a number' })
      .int()
      .min(0)
      .max(MAX_GRACE_SECONDS, 'must be at most 7 days')
      .default(86_400),
  })
  .strict();

// Never the hash, never another developer's row: every query pins tenant and consumer.
const select = {
  id: true,
  name: true,
  prefix: true,
  env: true,
  status: true,
  expiresAt: true,
  rolledFromId: true,
  lastUsedAt: true,
  revokedAt: true,
  createdAt: true,
  subscriptionId: true,
  subscription: { select: { id: true, status: true, plan: { select: { id: true, name: true, monthlyQuota: true } } } },
} satisfies Prisma.ApiKeySelect;

const mine = (dev: DeveloperContext) => ({ tenantId: dev.tenant.id, consumerId: dev.consumerId });

export async function listMyKeys(dev: DeveloperContext) {
  return dev.db.apiKey.findMany({ where: mine(dev), select, orderBy: { createdAt: 'desc' }, take: 100 });
}

/** Someone else's key id is a 404, the same as an id that doesn't exist. */
export async function getMyKey(dev: DeveloperContext, keyId: unknown) {
  if (!Id('key').safeParse(keyId).success) throw notFound('key');
  const key = await dev.db.apiKey.findFirst({ where: { id: keyId as string, ...mine(dev) }, select });
  if (!key) throw notFound('key');
  return key;
}

function audit(tx: Prisma.TransactionClient, dev: DeveloperContext, action: string, id: string, data?: Record<string, unknown>) {
  return recordAudit(tx, developerActor(dev), action, { type: 'key', id }, data);
}

/** Issues a key on the developer's current plan; the secret is returned once and never stored. */
export async function createMyKey(dev: DeveloperContext, input: unknown) {
  requireApproved(dev);
  const data = parseInput(CreateMyKeyInput, input ?? {});
  const sub = await currentSubscription(dev);
  if (!sub) throw new ServiceError('conflict', 'pick a plan first: keys work within a plan');
  const active = await dev.db.apiKey.count({ where: { ...mine(dev), status: 'ACTIVE' } });
  if (active >= MAX_KEYS_PER_DEVELOPER)
    throw new ServiceError('conflict', `you can hold at most ${MAX_KEYS_PER_DEVELOPER} active keys; revoke one first`);
  const secret = generateApiKey('live');
  const id = newId('key');
  await dev.db.$transaction(async (tx) => {
    await tx.apiKey.create({
      data: {
        id,
        tenantId: dev.tenant.id,
        consumerId: dev.consumerId,
        subscriptionId: sub.id,
        name: data.name,
        hash: hashApiKey(secret),
        prefix: displayPrefix(secret),
        env: 'live',
      },
    });
    await audit(tx, dev, 'key.issued', id, { prefix: displayPrefix(secret), subscriptionId: sub.id });
    await enqueueKeyPublish(tx, id);
  });
  return { key: await getMyKey(dev, id), secret };
}

export async function renameMyKey(dev: DeveloperContext, keyId: unknown, input: unknown) {
  const key = await getMyKey(dev, keyId);
  const { name } = parseInput(RenameMyKeyInput, input);
  await dev.db.$transaction(async (tx) => {
    await tx.apiKey.update({ where: { id: key.id }, data: { name } });
    await audit(tx, dev, 'key.renamed', key.id);
  });
  return getMyKey(dev, key.id);
}

export async function revokeMyKey(dev: DeveloperContext, keyId: unknown) {
  const key = await getMyKey(dev, keyId);
  if (key.status === 'REVOKED') return key;
  await dev.db.$transaction(async (tx) => {
    await tx.apiKey.update({ where: { id: key.id }, data: { status: 'REVOKED', revokedAt: new Date() } });
    await audit(tx, dev, 'key.revoked', key.id, { prefix: key.prefix });
    await enqueueKeyPublish(tx, key.id);
  });
  return getMyKey(dev, key.id);
}

/** A new secret for the same key settings; the old one keeps working for the grace period. */
export async function rollMyKey(dev: DeveloperContext, keyId: unknown, input: unknown) {
  requireApproved(dev);
  const old = await getMyKey(dev, keyId);
  const { graceSeconds } = parseInput(RollMyKeyInput, input ?? {});
  if (old.status === 'REVOKED') throw new ServiceError('conflict', 'a revoked key cannot be rolled; create a new one');
  const rolled = await dev.db.$transaction(async (tx) => {
    // Keeps whatever the owner set on the key (APIs, overrides): the developer only gets a new secret.
    const next = await replaceKeyInTx(tx, old.id, graceSeconds);
    await audit(tx, dev, 'key.rolled', old.id, { newKeyId: next.id, graceSeconds });
    return next;
  });
  return { key: await getMyKey(dev, rolled.id), secret: rolled.secret, previous: await getMyKey(dev, old.id) };
}
