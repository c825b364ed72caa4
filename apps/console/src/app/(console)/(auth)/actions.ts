'use server';

import { redirect } from 'next/navigation';
import { endSession, getSessionUser, startSession } from '@/server/console/auth';
import { assertSameOrigin, clientIp } from '@/server/shared/request';
import { getRuntime } from '@/server/shared/runtime';
import { runAction, str, type FormState } from '@/server/shared/action-state';
import { logInUser, signUpTenant } from '@/server/console/accounts';
import { acceptInvitation } from '@/server/console/members';

export async function signupAction(prev: FormState, fd: FormData): Promise<FormState> {
  let slug = '';
  const res = await runAction(prev, fd, async () => {
    await assertSameOrigin();
    const { db, redis, keyspace } = getRuntime();
    const out = await signUpTenant(
      { db, redis, keyspace },
      {
        name: str(fd, 'name'),
        email: str(fd, 'email'),
        password: str(fd, 'password'),
        tenantName: str(fd, 'tenantName'),
        tenantSlug: str(fd, 'tenantSlug'),
      },
      { ip: await clientIp() },
    );
    await startSession(out.userId);
    slug = out.tenantSlug;
  });
  if (res.ok) redirect(`/t/${slug}?welcome=1`);
  return res;
}

export async function loginAction(prev: FormState, fd: FormData): Promise<FormState> {
  let target = '/';
  const res = await runAction(prev, fd, async () => {
    await assertSameOrigin();
    const { db, redis, keyspace } = getRuntime();
    const out = await logInUser(
      { db, redis, keyspace },
      { email: str(fd, 'email'), password: str(fd, 'password') },
      { ip: await clientIp() },
    );
    await startSession(out.userId);
    const next = str(fd, 'next');
    // Only same-site paths: an open redirect after login is a phishing tool.
    target = next && /^\/(?!\/)[\w\-/?=&.%]*$/.test(next) ? next : out.tenantSlug ? `/t/${out.tenantSlug}` : '/';
  });
  if (res.ok) redirect(target);
  return res;
}

export async function logoutAction(): Promise<void> {
  await assertSameOrigin();
  await endSession();
  redirect('/login');
}

export async function acceptInviteAction(token: string, prev: FormState, fd: FormData): Promise<FormState> {
  let slug = '';
  const res = await runAction(prev, fd, async () => {
    await assertSameOrigin();
    const user = await getSessionUser();
    const out = await acceptInvitation(
      getRuntime().db,
      { token, ...(user ? {} : { name: str(fd, 'name'), password: str(fd, 'password') }) },
      user?.id ?? null,
    );
    if (!user) await startSession(out.userId);
    slug = out.tenantSlug;
  });
  if (res.ok) redirect(`/t/${slug}`);
  return res;
}
