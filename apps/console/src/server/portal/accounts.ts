import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { newId } from '@tollgate/db';
import { hashPassword, verifyPassword } from '@tollgate/keys';
import { ServiceError } from '../shared/context';
import { Email, Password } from '../shared/credentials';
import { isUniqueViolation, parseInput, SafeName } from '../shared/validation';
import { hitRateLimit, rateSubject } from '../shared/rate-limit';
import { sendEmail } from './email';
import { developerActor, portalUrlOf, type PortalDeps, type PortalTenant } from './context';
import { recordAudit } from '../shared/audit';

export const DeveloperSignupInput = z.object({ name: SafeName(100), email: Email, password: Password }).strict();
export const DeveloperLoginInput = z
  .object({
    email: z.string({ error: 'must be text' }).trim().toLowerCase().min(1, 'is required').max(254, 'is too long'),
    password: z.string({ error: 'must be text' }).min(1, 'is required').max(200, 'is too long'),
  })
  .strict();
export const ResetRequestInput = z
  .object({ email: z.string({ error: 'must be text' }).trim().toLowerCase().min(1, 'is required').max(254, 'is too long') })
  .strict();
export const ResetInput = z
  .object({ token: z.string({ error: 'must be text' }).regex(/^[A-Za-z0-9_-]{43}$/, 'is not a valid reset link'), password: Password })
  .strict();

const RESET_TTL_MS = 60 * 60_000;
export type Meta = { ip: string | null };
export type SignedInDeveloper = { consumerId: string; passwordHash: string; status: 'PENDING' | 'ACTIVE' | 'SUSPENDED' };

async function limit(deps: PortalDeps, subject: string, limiter: string, max: number, windowSeconds: number) {
  const d = await hitRateLimit(deps, subject, limiter, max, windowSeconds);
  if (!d.allowed)
    throw new ServiceError(
      'rate_limited',
      `too many attempts; try again in ${d.retryAfterSeconds} seconds`,
      undefined,
      d.retryAfterSeconds,
    );
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * Creates a developer account in one tenant's portal. With owner approval on, the account
 * starts PENDING: it can sign in and read docs, but gets no subscription or key until approved.
 */
export async function signUpDeveloper(deps: PortalDeps, tenant: PortalTenant, input: unknown, meta: Meta): Promise<SignedInDeveloper> {
  await limit(deps, rateSubject('ip', meta.ip ?? 'unknown'), `portal-signup-${tenant.id}`, 10, 3600);
  const data = parseInput(DeveloperSignupInput, input);
  const passwordHash = await hashPassword(data.password);
  const id = newId('consumer');
  const status = tenant.requireDeveloperApproval ? 'PENDING' : 'ACTIVE';
  try {
    await deps.db.$transaction(async (tx) => {
      await tx.consumer.create({ data: { id, tenantId: tenant.id, email: data.email, name: data.name, passwordHash, status } });
      await recordAudit(
        tx,
        developerActor({ tenant, consumerId: id }, meta.ip),
        'developer.signed_up',
        { type: 'consumer', id },
        { email: data.email, status },
      );
    });
  } catch (err) {
    if (isUniqueViolation(err))
      throw new ServiceError('conflict', 'this e-mail already has an account here; log in instead', {
        email: 'already has an account; log in instead',
      });
    throw err;
  }
  return { consumerId: id, passwordHash, status };
}

let dummyHash: Promise<string> | undefined;

/** Same answer for an unknown e-mail, a wrong password and a console-created consumer without one. */
export async function logInDeveloper(deps: PortalDeps, tenant: PortalTenant, input: unknown, meta: Meta): Promise<SignedInDeveloper> {
  const data = parseInput(DeveloperLoginInput, input);
  await limit(deps, rateSubject('ip', meta.ip ?? 'unknown'), `portal-login-ip-${tenant.id}`, 50, 900);
  await limit(deps, rateSubject('email', `${tenant.id}:${data.email}`), 'portal-login-email', 10, 900);
  const c = await deps.db.consumer.findUnique({ where: { tenantId_email: { tenantId: tenant.id, email: data.email } } });
  if (!c || !c.passwordHash || c.internal) {
    dummyHash ??= hashPassword('not-a-real-password-0000');
    await verifyPassword(data.password, await dummyHash);
    throw new ServiceError('unauthorized', 'e-mail or password is incorrect');
  }
  if (!(await verifyPassword(data.password, c.passwordHash))) throw new ServiceError('unauthorized', 'e-mail or password is incorrect');
  if (c.status === 'SUSPENDED') throw new ServiceError('forbidden', 'this account is suspended; contact the API owner');
  return { consumerId: c.id, passwordHash: c.passwordHash, status: c.status };
}

/**
 * Mails a one-hour reset link when the account exists; answers the same either way so the
 * form can't be used to find out who has an account.
 */
export async function requestPasswordReset(deps: PortalDeps, tenant: PortalTenant, input: unknown, meta: Meta): Promise<void> {
  const data = parseInput(ResetRequestInput, input);
  await limit(deps, rateSubject('ip', meta.ip ?? 'unknown'), `portal-reset-ip-${tenant.id}`, 20, 3600);
  await limit(deps, rateSubject('email', `${tenant.id}:${data.email}`), 'portal-reset-email', 5, 3600);
  const c = await deps.db.consumer.findUnique({ where: { tenantId_email: { tenantId: tenant.id, email: data.email } } });
  if (!c || c.internal || c.status === 'SUSPENDED') return;
  const token = randomBytes(32).toString('base64url');
  await deps.db.passwordResetToken.create({
    data: { id: newId('reset'), consumerId: c.id, tokenHash: sha256(token), expiresAt: new Date(Date.now() + RESET_TTL_MS) },
  });
  const link = `${portalUrlOf(deps, tenant)}/reset?token=${token}`;
  await sendEmail(
    { db: deps.db, log: deps.log, settings: deps.email },
    {
      tenantId: tenant.id,
      to: c.email,
      subject: `Reset your ${tenant.name} developer password`,
      text: `Someone asked to reset the password of your ${tenant.name} developer account.\n\nSet a new one here (valid for one hour):\n${link}\n\nIf it wasn't you, ignore this message.`,
    },
  );
}

/** Sets a new password from a valid, unused, unexpired link; the link then stops working. */
export async function resetPassword(deps: PortalDeps, tenant: PortalTenant, input: unknown): Promise<SignedInDeveloper> {
  const data = parseInput(ResetInput, input);
  const row = await deps.db.passwordResetToken.findUnique({ where: { tokenHash: sha256(data.token) }, include: { consumer: true } });
  if (!row || row.usedAt || row.expiresAt < new Date() || row.consumer.tenantId !== tenant.id) {
    throw new ServiceError('unprocessable', 'this reset link is invalid or has expired; ask for a new one', {
      token: 'is invalid or expired',
    });
  }
  const passwordHash = await hashPassword(data.password);
  const used = await deps.db.$transaction(async (tx) => {
    // Claimed with a conditional update so two concurrent uses of one link can't both succeed.
    const claim = await tx.passwordResetToken.updateMany({ where: { id: row.id, usedAt: null }, data: { usedAt: new Date() } });
    if (claim.count !== 1) return false;
    await tx.consumer.update({ where: { id: row.consumerId }, data: { passwordHash } });
    await recordAudit(tx, developerActor({ tenant, consumerId: row.consumerId }), 'developer.password_reset', {
      type: 'consumer',
      id: row.consumerId,
    });
    return true;
  });
  if (!used) throw new ServiceError('unprocessable', 'this reset link was already used', { token: 'was already used' });
  return { consumerId: row.consumerId, passwordHash, status: row.consumer.status };
}
