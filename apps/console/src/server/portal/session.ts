import { createHash } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';

// Developer sessions are separate from console (owner) sessions: their own cookie name, their
// own issuer, and an audience bound to one tenant, so a portal session of tenant X is just an
// invalid token on tenant Y's portal even if the browser sends it there.
export const PORTAL_SESSION_TTL_SECONDS = 7 * 86_400;
const ISSUER = 'tollgate-portal';

const keyOf = (secret: string) => new TextEncoder().encode(`portal:${secret}`);

export const portalCookieName = (tenantSlug: string) => `tg_portal_${tenantSlug.replace(/[^a-z0-9]/g, '_')}`;

/** Changes whenever the password does, so a reset ends every session made with the old one. */
export const passwordVersion = (passwordHash: string | null) =>
  createHash('sha256')
    .update(passwordHash ?? '')
    .digest('hex')
    .slice(0, 16);

export async function createPortalToken(
  secret: string,
  tenantId: string,
  consumerId: string,
  pv: string,
  now = Date.now(),
): Promise<string> {
  return new SignJWT({ pv })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(consumerId)
    .setIssuer(ISSUER)
    .setAudience(`tenant:${tenantId}`)
    .setIssuedAt(Math.floor(now / 1000))
    .setExpirationTime(Math.floor(now / 1000) + PORTAL_SESSION_TTL_SECONDS)
    .sign(keyOf(secret));
}

/** The consumer id of a valid token for this tenant; null for anything else (never throws). */
export async function readPortalToken(
  secret: string,
  tenantId: string,
  token: string | undefined | null,
): Promise<{ consumerId: string; pv: string } | null> {
  if (!token || token.length > 2048) return null;
  try {
    const { payload } = await jwtVerify(token, keyOf(secret), { issuer: ISSUER, audience: `tenant:${tenantId}`, algorithms: ['HS256'] });
    if (typeof payload.sub !== 'string' || typeof payload.pv !== 'string') return null;
    return { consumerId: payload.sub, pv: payload.pv };
  } catch {
    return null;
  }
}

/**
 * Path is the portal's root where the developer reached it: /portal/{slug} on the console's host,
 * / on the tenant's own portal host (the browser keeps that cookie to that host alone).
 */
export function portalCookieOptions(path: string, secure: boolean) {
  return { httpOnly: true, sameSite: 'lax' as const, secure, path, maxAge: PORTAL_SESSION_TTL_SECONDS };
}
