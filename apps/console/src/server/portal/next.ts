import { cache } from 'react';
import { z } from 'zod';
import { cookies, headers } from 'next/headers';
import { notFound, redirect } from 'next/navigation';
import { parseEnv } from '@tollgate/config';
import { createStripeClient } from '@tollgate/billing';
import { getRuntime } from '../shared/runtime';
import { gatewayUrlFor } from '../../env';
import { findPortalTenant, type DeveloperContext, type PortalDeps, type PortalTenant } from './context';
import { resolveDeveloper } from './developer';
import { PORTAL_HOST_HEADER } from '../shared/portal-host';
import { createPortalToken, passwordVersion, portalCookieName, portalCookieOptions } from './session';
import { settleSubscriptions } from './subscriptions';

// The portal's own settings (mail and Stripe), parsed once per process like the console's env.
const PortalEnv = {
  SMTP_URL: z
    .string()
    .regex(/^smtp:\/\//, 'must be an smtp:// URL')
    .optional(),
  SMTP_FROM: z.string().email().default('no-reply@tollgate.localhost'),
  STRIPE_SECRET_KEY: z.string().min(1).optional(),
  STRIPE_API_HOST: z.string().min(1).optional(),
  STRIPE_API_PORT: z.coerce.number().int().min(1).max(65_535).optional(),
  STRIPE_API_PROTOCOL: z.enum(['http', 'https']).optional(),
};

const holder = globalThis as unknown as { __tollgatePortal?: PortalDeps };

export function getPortalDeps(): PortalDeps {
  if (!holder.__tollgatePortal) {
    const rt = getRuntime();
    const e = parseEnv(PortalEnv);
    holder.__tollgatePortal = {
      db: rt.db,
      redis: rt.redis,
      keyspace: rt.keyspace,
      log: rt.log.child({ area: 'portal' }),
      email: { smtpUrl: e.SMTP_URL, from: e.SMTP_FROM },
      stripe: createStripeClient({
        secretKey: e.STRIPE_SECRET_KEY,
        host: e.STRIPE_API_HOST,
        port: e.STRIPE_API_PORT,
        protocol: e.STRIPE_API_PROTOCOL,
      }),
      consoleUrl: rt.config.consoleUrl,
    };
  }
  return holder.__tollgatePortal;
}

export const portalTenant = cache(async (slug: string): Promise<PortalTenant> => {
  const t = await findPortalTenant(getRuntime().db, slug);
  if (!t) notFound();
  return t;
});

/** The signed-in developer of this tenant's portal, or null. Settles a just-activated upgrade. */
export const getDeveloper = cache(async (slug: string): Promise<DeveloperContext | null> => {
  const tenant = await portalTenant(slug);
  const { config, db } = getRuntime();
  const jar = await cookies();
  const dev = await resolveDeveloper(db, config.sessionSecret, tenant, jar.get(portalCookieName(tenant.slug))?.value);
  if (dev && dev.status === 'ACTIVE') await settleSubscriptions(getPortalDeps(), dev);
  return dev;
});

/**
 * Where this request reached the tenant's portal: under /portal/{slug} on the console's host, or
 * at the root of the tenant's own portal host (src/proxy.ts rewrote it and set the header).
 */
export type PortalSite = {
  /** Path prefix for every portal link and redirect: '' on the own host. */
  base: string;
  /** Absolute URL of the portal root, for mail links and Checkout return URLs. */
  url: string;
  ownHost: boolean;
};

export const portalSite = cache(async (slug: string): Promise<PortalSite> => {
  const { config } = getRuntime();
  const h = await headers();
  const host = h.get('host');
  if (h.get(PORTAL_HOST_HEADER) === slug && host) {
    return { base: '', url: `${new URL(config.consoleUrl).protocol}//${host.toLowerCase()}`, ownHost: true };
  }
  return { base: `/portal/${slug}`, url: `${config.consoleUrl}/portal/${slug}`, ownHost: false };
});

/** A portal path ('' or '/keys'…) as a link for this site; the root of the own host is '/'. */
export const portalHref = (site: Pick<PortalSite, 'base'>, path = '') => `${site.base}${path}` || '/';

/** The portal's services with links (mail, Checkout) pointing where the developer is. */
export async function portalDepsFor(slug: string): Promise<PortalDeps> {
  return { ...getPortalDeps(), portalUrl: (await portalSite(slug)).url };
}

export async function requireDeveloper(slug: string): Promise<DeveloperContext> {
  const dev = await getDeveloper(slug);
  if (!dev) redirect(portalHref(await portalSite(slug), '/login'));
  return dev;
}

async function cookiePath(slug: string): Promise<string> {
  return portalHref(await portalSite(slug));
}

export async function startPortalSession(tenant: PortalTenant, consumerId: string, passwordHash: string): Promise<void> {
  const { config } = getRuntime();
  const token = await createPortalToken(config.sessionSecret, tenant.id, consumerId, passwordVersion(passwordHash));
  (await cookies()).set(
    portalCookieName(tenant.slug),
    token,
    portalCookieOptions(await cookiePath(tenant.slug), config.consoleUrl.startsWith('https:')),
  );
}

export async function endPortalSession(tenant: PortalTenant): Promise<void> {
  (await cookies()).set(portalCookieName(tenant.slug), '', { ...portalCookieOptions(await cookiePath(tenant.slug), false), maxAge: 0 });
}

export function portalGatewayUrl(slug: string): string {
  return gatewayUrlFor(getRuntime().config, slug);
}
