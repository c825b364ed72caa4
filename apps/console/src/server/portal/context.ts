import type { Redis } from 'ioredis';
import type { Db } from '@tollgate/db';
import type { Logger } from '@tollgate/config';
import type { Keyspace } from '@tollgate/policy';
import type { StripeClient } from '@tollgate/billing';
import type { EmailSettings } from './email';

/** What portal services need; built once per process by the page layer, or by tests directly. */
export type PortalDeps = {
  db: Db;
  redis: Redis;
  keyspace: Keyspace;
  log: Logger;
  email: EmailSettings;
  /** Null when Stripe is not configured: paid plans can't be bought then. */
  stripe: StripeClient | null;
  /** Absolute origin of the console, for links in mail and Checkout return URLs. */
  consoleUrl: string;
  /**
   * Absolute URL of this tenant's portal as the developer reached it (its own host, or
   * {consoleUrl}/portal/{slug}); when unset, links use the console's /portal/{slug}.
   */
  portalUrl?: string;
};

/** The root URL of the tenant's portal that links in mail and Checkout return URLs point at. */
export const portalUrlOf = (deps: Pick<PortalDeps, 'consoleUrl' | 'portalUrl'>, tenant: { slug: string }) =>
  deps.portalUrl ?? `${deps.consoleUrl}/portal/${tenant.slug}`;

export type PortalTenant = { id: string; slug: string; name: string; currency: string; requireDeveloperApproval: boolean };

/**
 * A signed-in developer acting in one tenant's portal. Every portal query is filtered by both
 * ids, so a developer can only ever reach their own rows in the tenant they signed in to.
 */
export type DeveloperContext = {
  db: Db;
  tenant: PortalTenant;
  consumerId: string;
  email: string;
  name: string;
  status: 'PENDING' | 'ACTIVE' | 'SUSPENDED';
};

/** Who a developer's change is audited as (shared/audit.ts recordAudit). */
export function developerActor(dev: Pick<DeveloperContext, 'tenant' | 'consumerId'>, ip: string | null = null) {
  return { tenantId: dev.tenant.id, actor: { type: 'developer', id: dev.consumerId }, ip };
}

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$/;

/** The tenant behind a portal address; null (→ 404) for malformed or unknown slugs. */
export async function findPortalTenant(db: Db, slug: string): Promise<PortalTenant | null> {
  if (typeof slug !== 'string' || !SLUG.test(slug)) return null;
  return db.tenant.findUnique({
    where: { slug },
    select: { id: true, slug: true, name: true, currency: true, requireDeveloperApproval: true },
  });
}
