import type { ReactNode } from 'react';
import { NavLink } from '@/components/nav-link';
import { tenantSession } from '@/server/console/auth';
import { getRuntime } from '@/server/shared/runtime';
import { listUserTenants } from '@/server/console/accounts';
import { logoutAction } from '@/app/(console)/(auth)/actions';

export const dynamic = 'force-dynamic';

const NAV = [
  { href: '', label: 'Overview', exact: true },
  { href: '/apis', label: 'APIs' },
  { href: '/plans', label: 'Plans' },
  { href: '/consumers', label: 'Consumers' },
  { href: '/keys', label: 'API keys' },
  { href: '/analytics', label: 'Analytics' },
  { href: '/audit', label: 'Audit log' },
  { href: '/settings', label: 'Settings' },
];

export default async function TenantLayout({ children, params }: { children: ReactNode; params: Promise<{ tenant: string }> }) {
  const { tenant: slug } = await params;
  const { tenant, user, role } = await tenantSession(slug);
  const base = `/t/${tenant.slug}`;
  const others = (await listUserTenants(getRuntime().db, user.id)).filter((t) => t.tenantId !== tenant.id);
  return (
    <div className="flex min-h-screen">
      <a
        href="#main"
        className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:px-3 focus:py-2 focus:shadow"
      >
        Skip to content
      </a>
      <div className="hidden w-60 shrink-0 border-r border-slate-200 bg-white md:block">
        <aside className="sticky top-0 flex h-screen flex-col overflow-y-auto">
          <div className="flex items-center gap-2 px-5 py-5">
            <span aria-hidden className="inline-block h-6 w-6 rounded-md bg-brand-600" />
            <div className="min-w-0">
              <p className="truncate text-sm font-semibold text-slate-900">{tenant.name}</p>
              <p className="truncate text-xs text-slate-500">{tenant.slug}</p>
            </div>
          </div>
          <nav aria-label="Workspace" className="flex-1 space-y-0.5 px-3">
            {NAV.map((n) => (
              <NavLink key={n.href} href={`${base}${n.href}`} exact={n.exact}>
                {n.label}
              </NavLink>
            ))}
            <a
              href={`/portal/${tenant.slug}`}
              className="mt-2 block rounded-md border-t border-slate-100 px-3 py-2 text-sm font-medium text-brand-700 hover:bg-slate-50"
            >
              View portal <span aria-hidden="true">→</span>
            </a>
          </nav>
          {others.length ? (
            <nav aria-label="Other workspaces" className="border-t border-slate-200 px-5 py-3 text-xs">
              <p className="font-medium text-slate-500">Switch workspace</p>
              <ul className="mt-1 space-y-1">
                {others.map((t) => (
                  <li key={t.tenantId}>
                    <a href={`/t/${t.tenantSlug}`} className="text-brand-700 hover:underline">
                      {t.tenantName}
                    </a>
                  </li>
                ))}
              </ul>
            </nav>
          ) : null}
          <div className="border-t border-slate-200 px-5 py-4 text-xs text-slate-600">
            <p className="truncate font-medium text-slate-800">{user.name}</p>
            <p className="truncate">{user.email}</p>
            <p className="mt-1">
              Role: <span className="font-medium">{role.toLowerCase()}</span>
            </p>
            <form action={logoutAction} className="mt-3">
              <button type="submit" className="text-sm font-medium text-brand-700 underline">
                Log out
              </button>
            </form>
          </div>
        </aside>
      </div>
      <div className="flex min-w-0 flex-1 flex-col">
        <header className="flex items-center justify-between border-b border-slate-200 bg-white px-4 py-3 md:hidden">
          <span className="font-semibold">{tenant.name}</span>
          <nav aria-label="Workspace (mobile)" className="flex gap-2 overflow-x-auto text-sm">
            {NAV.map((n) => (
              <a key={n.href} href={`${base}${n.href}`} className="whitespace-nowrap text-brand-700">
                {n.label}
              </a>
            ))}
            <a href={`/portal/${tenant.slug}`} className="whitespace-nowrap font-medium text-brand-700">
              View portal
            </a>
          </nav>
        </header>
        <main id="main" className="mx-auto w-full max-w-6xl flex-1 px-6 py-8">
          {children}
        </main>
      </div>
    </div>
  );
}
