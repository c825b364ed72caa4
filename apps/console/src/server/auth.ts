import { cache } from 'react';
import { cookies, headers } from 'next/headers';
import { notFound, redirect } from 'next/navigation';
import { getRuntime } from './runtime';
import { isSameOrigin } from './csrf';
import { createSessionToken, isSessionRevoked, readSessionToken, revokeSession, SESSION_COOKIE, sessionCookieOptions } from './session';
import { ServiceError, type Role, type ServiceContext } from './services/context';

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

/**
 * The client address for rate limits and the audit log. Next fills X-Forwarded-For from the
 * socket when a request arrives without one; behind a proxy (TRUST_PROXY) the right-most entry
 * is the one our proxy appended, so a client-sent value can't spoof it. Without a proxy a
 * client can still send its own header, which is why logins are also limited per e-mail.
 */
export async function clientIp(): Promise<string | null> {
  const { config } = getRuntime();
  const h = await headers();
  const xff = h.get('x-forwarded-for');
  if (xff) {
    const parts = xff
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const ip = config.trustProxy ? parts[parts.length - 1] : parts[0];
    if (ip) return ip.slice(0, 64);
  }
  return h.get('x-real-ip')?.slice(0, 64) ?? null;
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

/** Server actions' entry: refuses cross-site posts before anything else runs. */
export async function assertSameOrigin(): Promise<void> {
  const { config } = getRuntime();
  if (!isSameOrigin(await headers(), config.consoleUrl)) {
    throw new ServiceError('forbidden', 'cross-site request refused');
  }
}

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
