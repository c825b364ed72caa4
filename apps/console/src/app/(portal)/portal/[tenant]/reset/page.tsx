import type { Metadata } from 'next';
import { ActionForm, Field, Hidden } from '@/components/forms';
import { portalTenant } from '@/server/portal/next';
import { portalResetAction } from '../actions';

export const metadata: Metadata = { title: 'Choose a new password' };
export const dynamic = 'force-dynamic';

export default async function PortalReset({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string }>;
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const { tenant: slug } = await params;
  const tenant = await portalTenant(slug);
  const sp = await searchParams;
  const token = typeof sp.token === 'string' ? sp.token.slice(0, 100) : '';
  return (
    <div className="mx-auto max-w-md rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
      <h1 className="text-xl font-semibold">Choose a new password</h1>
      <div className="mt-6">
        <ActionForm action={portalResetAction.bind(null, tenant.slug)} submitLabel="Set password and log in" pendingLabel="Saving…">
          <Hidden name="token" value={token} />
          <Field name="password" label="New password" type="password" required autoComplete="new-password" hint="At least 10 characters." />
        </ActionForm>
      </div>
    </div>
  );
}
