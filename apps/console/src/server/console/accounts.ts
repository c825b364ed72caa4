import { z } from 'zod';
import type { Redis } from 'ioredis';
import { newId, type Db } from '@tollgate/db';
import { hashPassword, verifyPassword } from '@tollgate/keys';
import type { Keyspace } from '@tollgate/policy';
import { ServiceError, type Role } from '../shared/context';
import { recordAudit } from '../shared/audit';
import { isUniqueViolation, parseInput, SafeName, Slug } from '../shared/validation';
import { Email, Password } from '../shared/credentials';
import { hitRateLimit, rateSubject } from '../shared/rate-limit';

export type AccountDeps = { db: Db; redis: Redis; keyspace: Keyspace };
export type RequestMeta = { ip: string | null };

// Slugs that would shadow console or portal paths, or the gateway's own host names.
const RESERVED_SLUGS = new Set([
  'api',
  'www',
  'admin',
  'console',
  'portal',
  'login',
  'signup',
  'logout',
  'app',
  'static',
  'assets',
  'status',
  'health',
  'metrics',
  'docs',
  'gateway',
  'tollgate',
]);

export const SignupInput = z.object({
  name: SafeName(100),
  email: Email,
  password: Password,
  tenantName: SafeName(100),
  tenantSlug: Slug.refine((s) => !RESERVED_SLUGS.has(s), 'is reserved; pick another'),
});
export type SignupInput = z.infer<typeof SignupInput>;

export const LoginInput = z.object({
  email: z.string({ error: 'must be text' }).trim().toLowerCase().min(1, 'is required').max(254, 'is too long'),
  password: z.string({ error: 'must be text' }).min(1, 'is required').max(200, 'is too long'),
});

async function limit(deps: AccountDeps, subject: string, limiter: string, max: number, windowSeconds: number) {
  const d = await hitRateLimit(deps, subject, limiter, max, windowSeconds);
  if (!d.allowed) {
    throw new ServiceError(
      'rate_limited',
      `too many attempts; try again in ${d.retryAfterSeconds} seconds`,
      undefined,
      d.retryAfterSeconds,
    );
  }
}

export type SignedIn = { userId: string; tenantSlug: string };

/** Creates a tenant and its owner in one transaction; the caller starts the session. */
export async function signUpTenant(deps: AccountDeps, input: unknown, meta: RequestMeta): Promise<SignedIn> {
  await limit(deps, rateSubject('ip', meta.ip ?? 'unknown'), 'signup', 10, 3600);
  const data = parseInput(SignupInput, input);
  const passwordHash = await hashPassword(data.password);
  const tenantId = newId('tenant');
  const userId = newId('user');
  try {
    await deps.db.$transaction(async (tx) => {
      await tx.tenant.create({ data: { id: tenantId, slug: data.tenantSlug, name: data.tenantName } });
      await tx.user.create({ data: { id: userId, email: data.email, name: data.name, passwordHash, lastLoginAt: new Date() } });
      await tx.membership.create({ data: { id: newId('membership'), tenantId, userId, role: 'OWNER' } });
      await recordAudit(
        tx,
        { tenantId, actor: { type: 'user', id: userId }, ip: meta.ip },
        'tenant.created',
        { type: 'tenant', id: tenantId },
        {
          slug: data.tenantSlug,
        },
      );
    });
  } catch (err) {
    if (isUniqueViolation(err)) {
      // The driver adapter doesn't always name the violated index, so ask which one it was: the
      // person can then fix the one field instead of guessing.
      const [slugTaken, emailTaken] = await Promise.all([
        deps.db.tenant.findUnique({ where: { slug: data.tenantSlug }, select: { id: true } }),
        deps.db.user.findUnique({ where: { email: data.email }, select: { id: true } }),
      ]);
      const fields: Record<string, string> = {
        ...(slugTaken ? { tenantSlug: 'is already taken by another workspace; pick another address' } : {}),
        ...(emailTaken ? { email: 'already has an account; log in instead' } : {}),
      };
      const message =
        slugTaken && emailTaken
          ? 'that workspace address is taken and that e-mail already has an account'
          : slugTaken
            ? 'that workspace address is already taken'
            : emailTaken
              ? 'that e-mail already has an account; log in instead'
              : 'that workspace or account already exists';
      throw new ServiceError('conflict', message, fields);
    }
    throw err;
  }
  return { userId, tenantSlug: data.tenantSlug };
}

// Verifying against a real-looking hash when the user doesn't exist keeps response time from
// telling an attacker which e-mails have accounts.
let dummyHash: Promise<string> | undefined;

/** Checks credentials; the same message for an unknown e-mail and a wrong password. */
export async function logInUser(
  deps: AccountDeps,
  input: unknown,
  meta: RequestMeta,
): Promise<SignedIn | { userId: string; tenantSlug: null }> {
  const data = parseInput(LoginInput, input);
  await limit(deps, rateSubject('ip', meta.ip ?? 'unknown'), 'login-ip', 50, 900);
  await limit(deps, rateSubject('email', data.email), 'login-email', 10, 900);
  const user = await deps.db.user.findUnique({
    where: { email: data.email },
    include: { memberships: { include: { tenant: { select: { slug: true } } }, orderBy: { createdAt: 'asc' }, take: 1 } },
  });
  if (!user) {
    dummyHash ??= hashPassword('not-a-real-password-0000');
    await verifyPassword(data.password, await dummyHash);
    throw new ServiceError('unauthorized', 'e-mail or password is incorrect');
  }
  if (!(await verifyPassword(data.password, user.passwordHash))) {
    throw new ServiceError('unauthorized', 'e-mail or password is incorrect');
  }
  await deps.db.user.update({ where: { id: user.id }, data: { lastLoginAt: new Date() } });
  return { userId: user.id, tenantSlug: user.memberships[0]?.tenant.slug ?? null };
}

export type UserTenant = { tenantId: string; tenantSlug: string; tenantName: string; role: Role };

export async function listUserTenants(db: Db, userId: string): Promise<UserTenant[]> {
  const rows = await db.membership.findMany({ where: { userId }, include: { tenant: true }, orderBy: { createdAt: 'asc' } });
  return rows.map((m) => ({ tenantId: m.tenantId, tenantSlug: m.tenant.slug, tenantName: m.tenant.name, role: m.role }));
}
