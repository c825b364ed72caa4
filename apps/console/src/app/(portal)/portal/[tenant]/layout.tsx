import type { ReactNode } from 'react';
import type { Metadata } from 'next';
import Link from 'next/link';
import { NavLink } from '@/components/nav-link';
import { getDeveloper, portalHref, portalSite, portalTenant } from '@/server/portal/next';
import { portalLogoutAction } from './actions';

export const dynamic = 'force-dynamic';

export async function generateMetadata({ params }: { params: Promise<{ tenant: string }> }): Promise<Metadata> {
  const { tenant: slug } = await params;
  const tenant = await portalTenant(slug);
  return { title: { default: `${tenant.name} developers`, template: `%s · ${tenant.name} developers` } };
}

export default async function PortalLayout({ children, params }: { children: ReactNode; params: Promise<{ tenant: string }> }) {
  const { tenant: slug } = await params;
  const tenant = await portalTenant(slug);
  const dev = await getDeveloper(slug);
  const site = await portalSite(slug);
  const base = site.base;
  const nav = [
    { href: portalHref(site), label: 'APIs', exact: true },
    { href: `${base}/pricing`, label: 'Pricing' },
    ...(dev
      ? [
          { href: `${base}/keys`, label: 'Keys' },
          { href: `${base}/usage`, label: 'Usage' },
          { href: `${base}/billing`, label: 'Billing' },
        ]
      : []),
  ];
  return (
    <div className="min-h-screen">
      <a
        href="#main"
        className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:px-3 focus:py-2 focus:shadow"
      >
        Skip to content
      </a>
      <header className="border-b border-slate-200 bg-white">
        <div className="mx-auto flex max-w-6xl flex-wrap items-center justify-between gap-3 px-4 py-3">
          <Link href={portalHref(site)} className="flex items-center gap-2 font-semibold text-slate-900">
            <span aria-hidden className="inline-block h-6 w-6 rounded-md bg-brand-600" />
            {tenant.name} <span className="font-normal text-slate-600">developers</span>
          </Link>
          <nav aria-label="Portal" className="flex flex-wrap items-center gap-1">
            {nav.map((n) => (
              <NavLink key={n.href} href={n.href} exact={n.exact}>
                {n.label}
              </NavLink>
            ))}
          </nav>
          <div className="flex items-center gap-3 text-sm">
            {dev ? (
              <>
                <span className="text-slate-700" data-testid="portal-user">
                  {dev.email}
                </span>
                <form action={portalLogoutAction.bind(null, tenant.slug)}>
                  <button type="submit" className="font-medium text-brand-700 underline">
                    Log out
                  </button>
                </form>
              </>
            ) : (
              <>
                <Link href={`${base}/login`} className="font-medium text-brand-700 underline">
                  Log in
                </Link>
                <Link href={`${base}/signup`} className="rounded-md bg-brand-600 px-3 py-1.5 font-medium text-white hover:bg-brand-700">
                  Sign up
                </Link>
              </>
            )}
          </div>
        </div>
      </header>
      {dev?.status === 'PENDING' ? (
        <p role="status" className="border-b border-amber-200 bg-amber-50 px-4 py-2 text-center text-sm text-amber-900">
          Your account is waiting for approval by {tenant.name}. You can read the docs meanwhile; plans and keys open once you're approved.
        </p>
      ) : null}
      <main id="main" className="mx-auto max-w-6xl px-4 py-8">
        {children}
      </main>
    </div>
  );
}
