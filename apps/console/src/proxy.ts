import { NextResponse, type NextRequest } from 'next/server';
import { hostnameOf, PORTAL_HOST_HEADER } from './server/portal/host';
import { consoleHostname, portalHostMap } from './server/portal/host-map';

/**
 * Marks a request to a tenant's own portal host (Tenant.portalHost) with the tenant's slug; the
 * `beforeFiles` rewrites in next.config.ts then serve it from /portal/{slug}/…, so every path on
 * that host lands inside that tenant's portal and nothing else of the console (the control plane
 * under /t, /api/v1, another tenant's portal) can be reached through it. Every other host, the
 * console's own first of all, passes through unchanged. (A rewrite from here would be taken for
 * an external one when `next start -H` binds an address other than the request's: ADR 0011.)
 */
export async function proxy(request: NextRequest) {
  const hostname = hostnameOf(request.headers.get('host'));
  const slug = hostname && hostname !== consoleHostname() ? await portalHostMap().lookup(hostname) : null;
  // Only this function may say a request came in on a portal host: a client-sent copy goes.
  if (!slug && !request.headers.has(PORTAL_HOST_HEADER)) return NextResponse.next();
  const headers = new Headers(request.headers);
  headers.delete(PORTAL_HOST_HEADER);
  if (slug) headers.set(PORTAL_HOST_HEADER, slug);
  return NextResponse.next({ request: { headers } });
}

export const config = {
  // Build assets are the same for every host; everything else goes through the host check.
  matcher: ['/((?!_next/static|_next/image).*)'],
};
