import type { Metadata } from 'next';
import { ActionForm, Field } from '@/components/forms';
import { portalTenant } from '@/server/portal/next';
import { portalForgotAction } from '../actions';

export const metadata: Metadata = { title: 'Reset your password' };
export const dynamic = 'force-dynamic';

export default async function PortalForgot({ params }: { params: Promise<{ tenant: string }> }) {
  const { tenant: slug } = await params;
  const tenant = await portalTenant(slug);
  return (
    <div className="mx-auto max-w-md rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
      <h1 className="text-xl font-semibold">Reset your password</h1>
      <p className="mt-1 text-sm text-slate-600">We'll e-mail you a link to set a new one.</p>
      <div className="mt-6">
        <ActionForm action={portalForgotAction.bind(null, tenant.slug)} submitLabel="Send reset link" pendingLabel="Sending…">
          <Field name="email" label="E-mail" type="email" required autoComplete="email" />
        </ActionForm>
      </div>
    </div>
  );
}
