import Link from 'next/link';
import { EmptyState, PageHeader } from '@/components/ui';
import { getPortalDeps, portalHref, portalSite, portalTenant } from '@/server/portal/next';
import { listPublicApis } from '@/server/portal/catalog';

export const dynamic = 'force-dynamic';

export default async function PortalHome({ params }: { params: Promise<{ tenant: string }> }) {
  const { tenant: slug } = await params;
  const tenant = await portalTenant(slug);
  const [apis, site] = await Promise.all([listPublicApis(getPortalDeps().db, tenant), portalSite(slug)]);
  return (
    <>
      <PageHeader
        title={`${tenant.name} APIs`}
        description="Browse the APIs, read their reference, pick a plan and get a key in a minute."
      />
      {apis.length === 0 ? (
        <EmptyState title="No public APIs yet" body={`${tenant.name} hasn't published an API here yet. Check back soon.`} />
      ) : (
        <ul className="grid gap-4 md:grid-cols-2">
          {apis.map((a) => (
            <li key={a.id} className="rounded-lg border border-slate-200 bg-white p-5 shadow-sm">
              <h2 className="text-lg font-semibold">
                <Link href={portalHref(site, `/apis/${a.slug}`)} className="text-brand-700 underline">
                  {a.name}
                </Link>
              </h2>
              <p className="mt-1 text-xs text-slate-600">
                {a.version} · <span className="font-mono">{a.basePath}</span>
              </p>
              <p className="mt-2 text-sm text-slate-700">{a.description || 'No description yet.'}</p>
              <p className="mt-3 text-sm text-slate-700">
                {a.hasReference ? 'API reference, code samples and try-it available.' : 'Reference coming soon.'}
              </p>
            </li>
          ))}
        </ul>
      )}
      <p className="mt-8 text-sm text-slate-700">
        Ready to build?{' '}
        <Link href={portalHref(site, '/pricing')} className="font-medium text-brand-700 underline">
          See plans and pricing
        </Link>
      </p>
    </>
  );
}
