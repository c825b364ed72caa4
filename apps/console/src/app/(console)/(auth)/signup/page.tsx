import Link from 'next/link';
import type { Metadata } from 'next';
import { ActionForm, Field } from '@/components/forms';
import { signupAction } from '../actions';

export const metadata: Metadata = { title: 'Create your workspace' };
export const dynamic = 'force-dynamic';

export default function SignupPage() {
  return (
    <>
      <h1 className="text-xl font-semibold">Create your workspace</h1>
      <p className="mt-1 text-sm text-slate-600">Put your API behind keys, limits and billing in minutes.</p>
      <div className="mt-6">
        <ActionForm action={signupAction} submitLabel="Create workspace" pendingLabel="Creating…">
          <Field name="name" label="Your name" required autoComplete="name" maxLength={100} />
          <Field name="email" label="Work e-mail" type="email" required autoComplete="email" />
          <Field name="password" label="Password" type="password" required autoComplete="new-password" hint="At least 10 characters." />
          <Field name="tenantName" label="Company or product name" required maxLength={100} />
          <Field
            name="tenantSlug"
            label="Workspace address"
            required
            hint="Lower-case letters, digits and dashes; your gateway lives at {address}.your-domain."
            maxLength={48}
          />
        </ActionForm>
      </div>
      <p className="mt-6 text-center text-sm text-slate-600">
        Already have an account?{' '}
        <Link href="/login" className="font-medium text-brand-700 underline">
          Log in
        </Link>
      </p>
    </>
  );
}
