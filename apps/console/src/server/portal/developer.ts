import type { Db } from '@tollgate/db';
import { passwordVersion, readPortalToken } from './session';
import type { DeveloperContext, PortalTenant } from './context';

/**
 * The developer a portal session token names, in this tenant only. A token minted for another
 * tenant fails the audience check; a consumer id from another tenant is not found; a token
 * from before a password reset no longer matches the password version; suspended → null.
 */
export async function resolveDeveloper(
  db: Db,
  secret: string,
  tenant: PortalTenant,
  token: string | undefined | null,
): Promise<DeveloperContext | null> {
  const session = await readPortalToken(secret, tenant.id, token);
  if (!session) return null;
  const c = await db.consumer.findFirst({
    where: { id: session.consumerId, tenantId: tenant.id, internal: false },
    select: { id: true, email: true, name: true, status: true, passwordHash: true },
  });
  if (!c || c.status === 'SUSPENDED' || passwordVersion(c.passwordHash) !== session.pv) return null;
  return { db, tenant, consumerId: c.id, email: c.email, name: c.name, status: c.status };
}
