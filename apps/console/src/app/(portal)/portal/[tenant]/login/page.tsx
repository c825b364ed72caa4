import Link from 'next/link';
import type { Metadata } from 'next';
import { ActionForm, Field } from '@/components/forms';
import { portalHref, portalSite, portalTenant } from '@/server/portal/next';
import { portalLoginAction } from '../actions';

export const metadata: Metadata = { title: 'Log in' };
export const dynamic = 'force-dynamic';

export default async function PortalLogin({ params }: { params: Promise<{ tenant: string }> }) {
  const { tenant: slug } = await params;
  const [tenant, site] = await Promise.all([portalTenant(slug), portalSite(slug)]);
  return (
    <div className="mx-auto max-w-md rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
      <h1 className="text-xl font-semibold">Log in to {tenant.name} developers</h1>
      <div className="mt-6">
        <ActionForm action={portalLoginAction.bind(null, tenant.slug)} submitLabel="Log in" pendingLabel="Logging in…">
          <Field name="email" label="E-mail" type="email" required autoComplete="email" />
          <Field name="password" label="Password" type="password" required autoComplete="current-password" />
        </ActionForm>
      </div>
      <p className="mt-6 flex justify-between text-sm text-slate-700">
        <Link href={portalHref(site, '/forgot')} className="font-medium text-brand-700 underline">
          Forgot your password?
        </Link>
        <Link href={portalHref(site, '/signup')} className="font-medium text-brand-700 underline">
          Create an account
        </Link>
      </p>
    </div>
  );
}
