import { z } from 'zod';
import { newId, type Db } from '@tollgate/db';
import { generateToken, hashApiKey } from '@tollgate/keys';
import { notFound, requirePermission, roleAtLeast, ServiceError, type Role, type ServiceContext } from '../shared/context';
import { recordAudit } from '../shared/audit';
import { Id, parseInput, SafeName } from '../shared/validation';

const TOKEN_PREFIX = 'tgat';
const TOKEN_PATTERN = /^tgat_[0-9A-Za-z]{40}$/;

export const CreateTokenInput = z
  .object({
    name: SafeName(80),
    role: z.enum(['ADMIN', 'DEVELOPER', 'VIEWER'], { error: 'must be ADMIN, DEVELOPER or VIEWER' }).default('ADMIN'),
    expiresInDays: z.number({ error: 'must be a number' }).int().min(1).max(365).nullable().default(90),
  })
  .strict();

const tokenSelect = {
  id: true,
  name: true,
  role: true,
  prefix: true,
  createdById: true,
  lastUsedAt: true,
  expiresAt: true,
  revokedAt: true,
  createdAt: true,
};

export async function listAccessTokens(ctx: ServiceContext) {
  requirePermission(ctx, 'manageTokens');
  return ctx.db.accessToken.findMany({ where: { tenantId: ctx.tenantId }, select: tokenSelect, orderBy: { createdAt: 'desc' } });
}

/** Creates an admin-API token; the secret is returned once, only its SHA-256 is kept. */
export async function createAccessToken(ctx: ServiceContext, input: unknown) {
  requirePermission(ctx, 'manageTokens');
  const data = parseInput(CreateTokenInput, input);
  if (!roleAtLeast(ctx.role, data.role)) throw new ServiceError('forbidden', 'a token cannot have more rights than its creator');
  const secret = generateToken(TOKEN_PREFIX, 40);
  const id = newId('accessToken');
  await ctx.db.$transaction(async (tx) => {
    await tx.accessToken.create({
      data: {
        id,
        tenantId: ctx.tenantId,
        name: data.name,
        role: data.role,
        hash: hashApiKey(secret),
        prefix: secret.slice(0, 12),
        createdById: ctx.actor.id,
        expiresAt: data.expiresInDays ? new Date(Date.now() + data.expiresInDays * 86_400_000) : null,
      },
    });
    await recordAudit(tx, ctx, 'token.created', { type: 'token', id }, { name: data.name, role: data.role });
  });
  const token = await ctx.db.accessToken.findUniqueOrThrow({ where: { id }, select: tokenSelect });
  return { token, secret };
}

export async function revokeAccessToken(ctx: ServiceContext, tokenId: string) {
  requirePermission(ctx, 'manageTokens');
  if (!Id('tok').safeParse(tokenId).success) throw notFound('token');
  const t = await ctx.db.accessToken.findFirst({ where: { id: tokenId, tenantId: ctx.tenantId } });
  if (!t) throw notFound('token');
  if (!t.revokedAt) {
    await ctx.db.$transaction(async (tx) => {
      await tx.accessToken.update({ where: { id: t.id }, data: { revokedAt: new Date() } });
      await recordAudit(tx, ctx, 'token.revoked', { type: 'token', id: t.id }, { name: t.name });
    });
  }
  return { id: t.id, revoked: true };
}

export type TokenIdentity = { tenantId: string; tokenId: string; role: Role; name: string };

/** Resolves a bearer token to its tenant and role; null for anything unknown, expired or revoked. */
export async function authenticateAccessToken(db: Db, bearer: string | null | undefined): Promise<TokenIdentity | null> {
  if (!bearer || bearer.length > 100 || !TOKEN_PATTERN.test(bearer)) return null;
  // Lookup by hash: the comparison happens on a digest, so timing reveals nothing of the secret.
  const t = await db.accessToken.findUnique({ where: { hash: hashApiKey(bearer) } });
  if (!t || t.revokedAt || (t.expiresAt && t.expiresAt.getTime() <= Date.now())) return null;
  // Last-used is advisory; don't write on every call.
  if (!t.lastUsedAt || Date.now() - t.lastUsedAt.getTime() > 60_000) {
    await db.accessToken.update({ where: { id: t.id }, data: { lastUsedAt: new Date() } }).catch(() => undefined);
  }
  return { tenantId: t.tenantId, tokenId: t.id, role: t.role, name: t.name };
}
