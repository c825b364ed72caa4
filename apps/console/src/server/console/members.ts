import { createHash } from 'node:crypto';
import { z } from 'zod';
import { newId, type Db } from '@tollgate/db';
import { generateToken, hashPassword } from '@tollgate/keys';
import { notFound, requirePermission, ServiceError, type ServiceContext } from '../shared/context';
import { recordAudit } from '../shared/audit';
import { Email, Password } from '../shared/credentials';
import { Id, parseInput, SafeName } from '../shared/validation';

const INVITE_TTL_MS = 7 * 86_400_000;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const RoleInput = z.enum(['OWNER', 'ADMIN', 'DEVELOPER', 'VIEWER'], { error: 'must be OWNER, ADMIN, DEVELOPER or VIEWER' });

export const InviteInput = z.object({ email: Email, role: RoleInput.default('DEVELOPER') }).strict();
export const ChangeRoleInput = z.object({ role: RoleInput }).strict();

export async function listMembers(ctx: ServiceContext) {
  requirePermission(ctx, 'read');
  const [members, invitations] = await Promise.all([
    ctx.db.membership.findMany({
      where: { tenantId: ctx.tenantId },
      include: { user: { select: { id: true, email: true, name: true, lastLoginAt: true } } },
      orderBy: { createdAt: 'asc' },
    }),
    ctx.db.invitation.findMany({
      where: { tenantId: ctx.tenantId, acceptedAt: null, expiresAt: { gt: new Date() } },
      orderBy: { createdAt: 'desc' },
    }),
  ]);
  return { members, invitations: invitations.map(({ tokenHash: _t, ...i }) => i) };
}

function guardRoleChange(ctx: ServiceContext, role: string) {
  // Only owners make owners: an admin can't promote anyone (or themselves) above admin.
  if (role === 'OWNER' && ctx.role !== 'OWNER') throw new ServiceError('forbidden', 'only an owner can grant the owner role');
}

/** Invites someone by e-mail; the link is mailed (EmailMessage outbox) and returned for display. */
export async function inviteMember(ctx: ServiceContext, input: unknown, consoleUrl: string) {
  requirePermission(ctx, 'manageMembers');
  const data = parseInput(InviteInput, input);
  guardRoleChange(ctx, data.role);
  const existing = await ctx.db.membership.findFirst({ where: { tenantId: ctx.tenantId, user: { email: data.email } } });
  if (existing) throw new ServiceError('conflict', 'this person is already a member', { email: 'is already a member' });
  const token = generateToken('inv', 32);
  const id = newId('invitation');
  const link = `${consoleUrl}/invite/${token}`;
  const tenant = await ctx.db.tenant.findUniqueOrThrow({ where: { id: ctx.tenantId }, select: { name: true } });
  await ctx.db.$transaction(async (tx) => {
    await tx.invitation.create({
      data: {
        id,
        tenantId: ctx.tenantId,
        email: data.email,
        role: data.role,
        tokenHash: sha256(token),
        invitedById: ctx.actor.id,
        expiresAt: new Date(Date.now() + INVITE_TTL_MS),
      },
    });
    await tx.emailMessage.create({
      data: {
        id: newId('email'),
        tenantId: ctx.tenantId,
        to: data.email,
        subject: `You're invited to ${tenant.name} on Tollgate`,
        text: `You have been invited to join ${tenant.name} as ${data.role.toLowerCase()}.\n\nAccept within 7 days: ${link}\n`,
      },
    });
    await recordAudit(tx, ctx, 'member.invited', { type: 'invitation', id }, { email: data.email, role: data.role });
  });
  return { id, email: data.email, role: data.role, link };
}

export async function revokeInvitation(ctx: ServiceContext, invitationId: string) {
  requirePermission(ctx, 'manageMembers');
  if (!Id('inv').safeParse(invitationId).success) throw notFound('invitation');
  const inv = await ctx.db.invitation.findFirst({ where: { id: invitationId, tenantId: ctx.tenantId } });
  if (!inv) throw notFound('invitation');
  await ctx.db.$transaction(async (tx) => {
    await tx.invitation.delete({ where: { id: inv.id } });
    await recordAudit(tx, ctx, 'member.invitation_revoked', { type: 'invitation', id: inv.id }, { email: inv.email });
  });
  return { id: inv.id, deleted: true };
}

async function getMembership(ctx: ServiceContext, membershipId: string) {
  if (!Id('mem').safeParse(membershipId).success) throw notFound('member');
  const m = await ctx.db.membership.findFirst({
    where: { id: membershipId, tenantId: ctx.tenantId },
    include: { user: { select: { email: true } } },
  });
  if (!m) throw notFound('member');
  return m;
}

async function ensureAnotherOwner(ctx: ServiceContext, membershipId: string) {
  const owners = await ctx.db.membership.count({ where: { tenantId: ctx.tenantId, role: 'OWNER', id: { not: membershipId } } });
  if (owners === 0) throw new ServiceError('conflict', 'a workspace needs at least one owner');
}

export async function changeMemberRole(ctx: ServiceContext, membershipId: string, input: unknown) {
  requirePermission(ctx, 'manageMembers');
  const m = await getMembership(ctx, membershipId);
  const { role } = parseInput(ChangeRoleInput, input);
  guardRoleChange(ctx, role);
  if (m.role === 'OWNER') {
    if (ctx.role !== 'OWNER') throw new ServiceError('forbidden', 'only an owner can change an owner');
    if (role !== 'OWNER') await ensureAnotherOwner(ctx, m.id);
  }
  await ctx.db.$transaction(async (tx) => {
    await tx.membership.update({ where: { id: m.id }, data: { role } });
    await recordAudit(tx, ctx, 'member.role_changed', { type: 'member', id: m.id }, { email: m.user.email, from: m.role, to: role });
  });
  return { id: m.id, role };
}

export async function removeMember(ctx: ServiceContext, membershipId: string) {
  requirePermission(ctx, 'manageMembers');
  const m = await getMembership(ctx, membershipId);
  if (m.role === 'OWNER') {
    if (ctx.role !== 'OWNER') throw new ServiceError('forbidden', 'only an owner can remove an owner');
    await ensureAnotherOwner(ctx, m.id);
  }
  await ctx.db.$transaction(async (tx) => {
    await tx.membership.delete({ where: { id: m.id } });
    await recordAudit(tx, ctx, 'member.removed', { type: 'member', id: m.id }, { email: m.user.email });
  });
  return { id: m.id, deleted: true };
}

export const AcceptInviteInput = z
  .object({ token: z.string().max(100), name: SafeName(100).optional(), password: Password.optional() })
  .strict();

/**
 * Accepts an invitation. A signed-in user joins directly; someone new creates their account
 * with the invited e-mail. Returns the user to sign in and the tenant to open.
 */
export async function acceptInvitation(db: Db, input: unknown, signedInUserId: string | null) {
  const data = parseInput(AcceptInviteInput, input);
  const inv = await db.invitation.findUnique({ where: { tokenHash: sha256(data.token) }, include: { tenant: { select: { slug: true } } } });
  if (!inv || inv.acceptedAt || inv.expiresAt.getTime() <= Date.now())
    throw new ServiceError('not_found', 'this invitation is invalid or has expired');
  const userId = signedInUserId;
  const existingUser = await db.user.findUnique({ where: { email: inv.email } });
  if (!userId) {
    if (existingUser) throw new ServiceError('unauthorized', 'log in as the invited e-mail address to accept');
    if (!data.name || !data.password)
      throw new ServiceError('unprocessable', 'name and password are required', {
        ...(data.name ? {} : { name: 'is required' }),
        ...(data.password ? {} : { password: 'is required' }),
      });
  } else if (!existingUser || existingUser.id !== userId) {
    throw new ServiceError('forbidden', `this invitation is for ${inv.email}`);
  }
  const passwordHash = userId ? null : await hashPassword(data.password!);
  const finalUserId = userId ?? newId('user');
  await db.$transaction(async (tx) => {
    if (!userId) await tx.user.create({ data: { id: finalUserId, email: inv.email, name: data.name!, passwordHash: passwordHash! } });
    await tx.membership.upsert({
      where: { tenantId_userId: { tenantId: inv.tenantId, userId: finalUserId } },
      create: { id: newId('membership'), tenantId: inv.tenantId, userId: finalUserId, role: inv.role },
      update: { role: inv.role },
    });
    await tx.invitation.update({ where: { id: inv.id }, data: { acceptedAt: new Date() } });
    await recordAudit(
      tx,
      { tenantId: inv.tenantId, actor: { type: 'user', id: finalUserId } },
      'member.joined',
      { type: 'member', id: finalUserId },
      { email: inv.email, role: inv.role },
    );
  });
  return { userId: finalUserId, tenantSlug: inv.tenant.slug };
}
