import { randomBytes } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';

export const SESSION_COOKIE = 'tg_session';
export const SESSION_TTL_SECONDS = 7 * 86_400;
const ISSUER = 'tollgate-console';

const keyOf = (secret: string) => new TextEncoder().encode(secret);

export async function createSessionToken(secret: string, userId: string, now = Date.now()): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setJti(randomBytes(16).toString('hex'))
    .setIssuer(ISSUER)
    .setAudience(ISSUER)
    .setIssuedAt(Math.floor(now / 1000))
    .setExpirationTime(Math.floor(now / 1000) + SESSION_TTL_SECONDS)
    .sign(keyOf(secret));
}

/** The user id of a valid, unexpired session; null for anything else (never throws). */
export type Session = { userId: string; issuedAt: number; expiresAt: number; id: string };

export async function readSessionToken(secret: string, token: string | undefined | null): Promise<Session | null> {
  if (!token || token.length > 2048) return null;
  try {
    const { payload } = await jwtVerify(token, keyOf(secret), { issuer: ISSUER, audience: ISSUER, algorithms: ['HS256'] });
    if (typeof payload.sub !== 'string' || typeof payload.iat !== 'number' || typeof payload.exp !== 'number') return null;
    if (typeof payload.jti !== 'string' || !/^[0-9a-f]{32}$/.test(payload.jti)) return null;
    return { userId: payload.sub, issuedAt: payload.iat, expiresAt: payload.exp, id: payload.jti };
  } catch {
    return null;
  }
}

export function sessionCookieOptions(secure: boolean) {
  return { httpOnly: true, sameSite: 'lax' as const, secure, path: '/', maxAge: SESSION_TTL_SECONDS };
}

type RevocationStore = { redis: import('ioredis').Redis; keyspace: import('@tollgate/policy').Keyspace };

/** Logout: the token stays signed, so it is remembered as revoked until it would expire anyway. */
export async function revokeSession(deps: RevocationStore, session: Session): Promise<void> {
  const ttlMs = session.expiresAt * 1000 - Date.now();
  if (ttlMs > 0) await deps.redis.set(deps.keyspace.revokedSession(session.id), '1', 'PX', ttlMs);
}

/**
 * Whether a session was logged out. If Redis can't answer, the session stays valid: a Redis
 * outage must not log everyone out (the signature and expiry still hold).
 */
export async function isSessionRevoked(deps: RevocationStore, session: Session): Promise<boolean> {
  try {
    if (deps.redis.status !== 'ready') return false;
    return (await deps.redis.exists(deps.keyspace.revokedSession(session.id))) === 1;
  } catch {
    return false;
  }
}
