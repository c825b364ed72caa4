import Link from 'next/link';
import type { Metadata } from 'next';
import { ActionForm, Field } from '@/components/forms';
import { portalHref, portalSite, portalTenant } from '@/server/portal/next';
import { portalSignupAction } from '../actions';

export const metadata: Metadata = { title: 'Sign up' };
export const dynamic = 'force-dynamic';

export default async function PortalSignup({ params }: { params: Promise<{ tenant: string }> }) {
  const { tenant: slug } = await params;
  const [tenant, site] = await Promise.all([portalTenant(slug), portalSite(slug)]);
  return (
    <div className="mx-auto max-w-md rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
      <h1 className="text-xl font-semibold">Create your {tenant.name} developer account</h1>
      <p className="mt-1 text-sm text-slate-600">Free to start. You'll pick a plan and get your API key next.</p>
      <div className="mt-6">
        <ActionForm action={portalSignupAction.bind(null, tenant.slug)} submitLabel="Create account" pendingLabel="Creating…">
          <Field name="name" label="Your name" required autoComplete="name" maxLength={100} />
          <Field name="email" label="E-mail" type="email" required autoComplete="email" />
          <Field name="password" label="Password" type="password" required autoComplete="new-password" hint="At least 10 characters." />
        </ActionForm>
      </div>
      <p className="mt-6 text-center text-sm text-slate-700">
        Already have an account?{' '}
        <Link href={portalHref(site, '/login')} className="font-medium text-brand-700 underline">
          Log in
        </Link>
      </p>
    </div>
  );
}
