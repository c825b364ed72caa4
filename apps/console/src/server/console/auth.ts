import { cache } from 'react';
import { cookies } from 'next/headers';
import { notFound, redirect } from 'next/navigation';
import { getRuntime } from '../shared/runtime';
import { assertSameOrigin, clientIp } from '../shared/request';
import { createSessionToken, isSessionRevoked, readSessionToken, revokeSession, SESSION_COOKIE, sessionCookieOptions } from './session';
import { type Role, type ServiceContext } from '../shared/context';

export type SessionUser = { id: string; email: string; name: string };

/** The signed-in user of this request, or null; cached for the request. */
export const getSessionUser = cache(async (): Promise<SessionUser | null> => {
  const { config, db, redis, keyspace } = getRuntime();
  const jar = await cookies();
  const session = await readSessionToken(config.sessionSecret, jar.get(SESSION_COOKIE)?.value);
  if (!session || (await isSessionRevoked({ redis, keyspace }, session))) return null;
  const user = await db.user.findUnique({ where: { id: session.userId }, select: { id: true, email: true, name: true, updatedAt: true } });
  if (!user) return null;
  return { id: user.id, email: user.email, name: user.name };
});

export async function requireUser(): Promise<SessionUser> {
  const user = await getSessionUser();
  if (!user) redirect('/login');
  return user;
}

export type TenantSession = { ctx: ServiceContext; user: SessionUser; tenant: { id: string; slug: string; name: string }; role: Role };

/** For pages under /t/{slug}: the member's service context, or 404 when not a member. */
export const tenantSession = cache(async (slug: string): Promise<TenantSession> => {
  const user = await requireUser();
  const { db } = getRuntime();
  if (!/^[a-z0-9-]{1,48}$/.test(slug)) notFound();
  const m = await db.membership.findFirst({
    where: { userId: user.id, tenant: { slug } },
    include: { tenant: { select: { id: true, slug: true, name: true } } },
  });
  if (!m) notFound();
  return {
    ctx: { db, tenantId: m.tenantId, actor: { type: 'user', id: user.id, label: user.email }, role: m.role, ip: await clientIp() },
    user,
    tenant: m.tenant,
    role: m.role,
  };
});

export async function actionSession(slug: string): Promise<TenantSession> {
  await assertSameOrigin();
  return tenantSession(slug);
}

export async function startSession(userId: string): Promise<void> {
  const { config } = getRuntime();
  const token = await createSessionToken(config.sessionSecret, userId);
  (await cookies()).set(SESSION_COOKIE, token, sessionCookieOptions(config.consoleUrl.startsWith('https:')));
}

export async function endSession(): Promise<void> {
  const { config, redis, keyspace, log } = getRuntime();
  const jar = await cookies();
  const session = await readSessionToken(config.sessionSecret, jar.get(SESSION_COOKIE)?.value);
  if (session) {
    await revokeSession({ redis, keyspace }, session).catch((err: Error) =>
      log.warn({ err: err.message }, 'could not record the logout; the cookie is deleted but the token stays valid until it expires'),
    );
  }
  jar.delete(SESSION_COOKIE);
}
