import { redirect } from 'next/navigation';
import { getSessionUser } from '@/server/console/auth';
import { getRuntime } from '@/server/shared/runtime';
import { listUserTenants } from '@/server/console/accounts';

export const dynamic = 'force-dynamic';

export default async function Home() {
  const user = await getSessionUser();
  if (!user) redirect('/login');
  const tenants = await listUserTenants(getRuntime().db, user.id);
  if (tenants[0]) redirect(`/t/${tenants[0].tenantSlug}`);
  redirect('/signup');
}
