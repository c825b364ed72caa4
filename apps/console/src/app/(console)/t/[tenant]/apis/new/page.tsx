import { notFound } from 'next/navigation';
import { tenantSession } from '@/server/console/auth';
import { can } from '@/server/shared/context';
import { ActionForm } from '@/components/forms';
import { ApiFields } from '@/components/api-fields';
import { Card, PageHeader } from '@/components/ui';
import { createApiAction } from '../../_actions/apis';

export default async function NewApiPage({ params }: { params: Promise<{ tenant: string }> }) {
  const { tenant: slug } = await params;
  const { role } = await tenantSession(slug);
  if (!can(role, 'manageApis')) notFound();
  return (
    <>
      <PageHeader
        title="Register an API"
        description="Tell the gateway where your service lives. You can add routes, plans and keys next."
      />
      <Card>
        <ActionForm action={createApiAction.bind(null, slug)} submitLabel="Register API" pendingLabel="Registering…">
          <ApiFields />
        </ActionForm>
      </Card>
    </>
  );
}
