import { NextResponse, type NextRequest } from 'next/server';
import { hostnameOf, PORTAL_HOST_HEADER } from './server/shared/portal-host';
import { consoleHostname, portalHostMap } from './server/shared/portal-host-map';

/**
 * Marks a request to a tenant's own portal host (Tenant.portalHost) with the tenant's slug; the
 * `beforeFiles` rewrites in next.config.ts then serve it from /portal/{slug}/…, so every path on
 * that host lands inside that tenant's portal and nothing else of the console (the control plane
 * under /t, /api/v1, another tenant's portal) can be reached through it. Every other host, the
 * console's own first of all, passes through unchanged. (A rewrite from here would be taken for
 * an external one when `next start -H` binds an address other than the request's: ADR 0011.)
 */
export async function proxy(request: NextRequest) {
  // A server action posted from another site: Next refuses it too, but as a 500; answer 403 here.
  if (request.method === 'POST' && request.headers.has('next-action') && crossSite(request.headers)) {
    return new NextResponse('cross-site request refused', { status: 403, headers: { 'content-type': 'text/plain; charset=utf-8' } });
  }
  const hostname = hostnameOf(request.headers.get('host'));
  const slug = hostname && hostname !== consoleHostname() ? await portalHostMap().lookup(hostname) : null;
  // Only this function may say a request came in on a portal host: a client-sent copy goes.
  if (!slug && !request.headers.has(PORTAL_HOST_HEADER)) return NextResponse.next();
  const headers = new Headers(request.headers);
  headers.delete(PORTAL_HOST_HEADER);
  if (slug) headers.set(PORTAL_HOST_HEADER, slug);
  return NextResponse.next({ request: { headers } });
}

/**
 * True when the request names an Origin whose host isn't the one it was sent to (the forwarded
 * host behind a proxy, as Next compares). No Origin is left to the actions' own same-origin check,
 * which also looks at Referer and the scheme.
 */
function crossSite(h: Headers): boolean {
  const origin = h.get('origin');
  if (origin === null) return false;
  const host = (h.get('x-forwarded-host') ?? h.get('host') ?? '').split(',')[0]!.trim().toLowerCase();
  try {
    return origin === 'null' || new URL(origin).host.toLowerCase() !== host;
  } catch {
    return true;
  }
}

export const config = {
  // Build assets are the same for every host; everything else goes through the host check.
  matcher: ['/((?!_next/static|_next/image).*)'],
};
