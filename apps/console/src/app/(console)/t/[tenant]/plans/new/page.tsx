import { notFound } from 'next/navigation';
import { tenantSession } from '@/server/console/auth';
import { can } from '@/server/shared/context';
import { getTenant } from '@/server/console/tenant';
import { ActionForm } from '@/components/forms';
import { PlanFields } from '@/components/plan-fields';
import { Card, PageHeader } from '@/components/ui';
import { createPlanAction } from '../../_actions/plans';

export default async function NewPlanPage({ params }: { params: Promise<{ tenant: string }> }) {
  const { tenant: slug } = await params;
  const { ctx, role } = await tenantSession(slug);
  if (!can(role, 'managePlans')) notFound();
  const [tenant, apis] = await Promise.all([
    getTenant(ctx),
    ctx.db.api.findMany({ where: { tenantId: ctx.tenantId }, select: { id: true, name: true }, orderBy: { name: 'asc' } }),
  ]);
  return (
    <>
      <PageHeader title="Create a plan" />
      <Card>
        <ActionForm action={createPlanAction.bind(null, slug)} submitLabel="Create plan" pendingLabel="Creating…">
          <PlanFields apis={apis} currency={tenant.currency} />
        </ActionForm>
      </Card>
    </>
  );
}
