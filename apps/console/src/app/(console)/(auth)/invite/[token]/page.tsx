import type { Metadata } from 'next';
import { ActionForm, Field } from '@/components/forms';
import { getSessionUser } from '@/server/console/auth';
import { acceptInviteAction } from '../../actions';

export const metadata: Metadata = { title: 'Accept invitation' };
export const dynamic = 'force-dynamic';

export default async function InvitePage({ params }: { params: Promise<{ token: string }> }) {
  const { token } = await params;
  const user = await getSessionUser();
  return (
    <>
      <h1 className="text-xl font-semibold">Join the workspace</h1>
      <p className="mt-1 text-sm text-slate-600">
        {user ? `You are logged in as ${user.email}.` : 'Create your account with the e-mail address the invitation was sent to.'}
      </p>
      <div className="mt-6">
        <ActionForm action={acceptInviteAction.bind(null, token.slice(0, 100))} submitLabel="Accept invitation">
          {user ? null : (
            <>
              <Field name="name" label="Your name" required />
              <Field name="password" label="Password" type="password" required autoComplete="new-password" hint="At least 10 characters." />
            </>
          )}
        </ActionForm>
      </div>
    </>
  );
}
