import { jwtVerify, SignJWT } from 'jose';

export const SESSION_COOKIE = 'tg_session';
export const SESSION_TTL_SECONDS = 7 * 86_400;
const ISSUER = 'tollgate-console';

const keyOf = (secret: string) => new TextEncoder().encode(secret);

export async function createSessionToken(secret: string, userId: string, now = Date.now()): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setIssuer(ISSUER)
    .setAudience(ISSUER)
    .setIssuedAt(Math.floor(now / 1000))
    .setExpirationTime(Math.floor(now / 1000) + SESSION_TTL_SECONDS)
    .sign(keyOf(secret));
}

/** The user id of a valid, unexpired session; null for anything else (never throws). */
export async function readSessionToken(secret: string, token: string | undefined | null): Promise<{ userId: string; issuedAt: number } | null> {
  if (!token || token.length > 2048) return null;
  try {
    const { payload } = await jwtVerify(token, keyOf(secret), { issuer: ISSUER, audience: ISSUER, algorithms: ['HS256'] });
    if (typeof payload.sub !== 'string' || typeof payload.iat !== 'number') return null;
    return { userId: payload.sub, issuedAt: payload.iat };
  } catch {
    return null;
  }
}

export function sessionCookieOptions(secure: boolean) {
  return { httpOnly: true, sameSite: 'lax' as const, secure, path: '/', maxAge: SESSION_TTL_SECONDS };
}
