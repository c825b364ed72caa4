import Link from 'next/link';
import type { Metadata } from 'next';
import { ActionForm, Field, Hidden } from '@/components/forms';
import { loginAction } from '../actions';

export const metadata: Metadata = { title: 'Log in' };
export const dynamic = 'force-dynamic';

export default async function LoginPage({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  const sp = await searchParams;
  const next = typeof sp.next === 'string' ? sp.next : '';
  return (
    <>
      <h1 className="text-xl font-semibold">Log in</h1>
      <div className="mt-6">
        <ActionForm action={loginAction} submitLabel="Log in" pendingLabel="Logging in…">
          <Field name="email" label="E-mail" type="email" required autoComplete="email" />
          <Field name="password" label="Password" type="password" required autoComplete="current-password" />
          <Hidden name="next" value={next} />
        </ActionForm>
      </div>
      <p className="mt-6 text-center text-sm text-slate-600">
        New to Tollgate?{' '}
        <Link href="/signup" className="font-medium text-brand-700 underline">
          Create a workspace
        </Link>
      </p>
    </>
  );
}
