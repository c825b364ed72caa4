import { notFound } from 'next/navigation';
import { tenantSession } from '@/server/console/auth';
import { can, ServiceError } from '@/server/shared/context';
import { getPlan } from '@/server/console/plans';
import { ActionForm } from '@/components/forms';
import { PlanFields } from '@/components/plan-fields';
import { Badge, Card, formatMoney, formatNumber, PageHeader } from '@/components/ui';
import { archivePlanAction, deletePlanAction, updatePlanAction } from '../../_actions/plans';

export default async function PlanPage({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string; planId: string }>;
  searchParams: Promise<Record<string, string | undefined>>;
}) {
  const { tenant: slug, planId } = await params;
  const sp = await searchParams;
  const { ctx, role } = await tenantSession(slug);
  const plan = await getPlan(ctx, planId).catch((err) => {
    if (err instanceof ServiceError && err.code === 'not_found') notFound();
    throw err;
  });
  const apis = await ctx.db.api.findMany({ where: { tenantId: ctx.tenantId }, select: { id: true, name: true }, orderBy: { name: 'asc' } });
  const canEdit = can(role, 'managePlans');
  return (
    <>
      <PageHeader
        title={plan.name}
        description={`${plan.rateLimit ? `${formatNumber(plan.rateLimit)} requests per ${plan.rateWindowSeconds}s` : 'No rate limit'} · ${plan.monthlyQuota ? `${formatNumber(plan.monthlyQuota)} per month` : 'unlimited quota'} · ${plan.flatFeeMinor ? formatMoney(plan.flatFeeMinor, plan.currency) + '/month' : 'free'}`}
        actions={plan.status === 'ACTIVE' ? <Badge tone="green">Active</Badge> : <Badge>Archived</Badge>}
      />
      {sp.created ? (
        <div role="status" className="mb-6 rounded-md border border-emerald-200 bg-emerald-50 px-4 py-3 text-sm text-emerald-800">
          Plan created. Issue a key on it from the API keys page.
        </div>
      ) : null}
      <div className="grid gap-6 lg:grid-cols-3">
        <div className="lg:col-span-2">
          {canEdit ? (
            <Card title="Edit plan">
              <ActionForm action={updatePlanAction.bind(null, slug, plan.id)} submitLabel="Save plan">
                <PlanFields d={{ ...plan, apiIds: plan.planApis.map((p) => p.apiId) }} apis={apis} currency={plan.currency} />
              </ActionForm>
            </Card>
          ) : (
            <Card title="Plan">
              <p className="text-sm text-slate-700">APIs: {plan.planApis.map((p) => p.api.name).join(', ') || 'none'}</p>
            </Card>
          )}
        </div>
        <div className="space-y-6">
          <Card title="Subscribers">
            <p className="text-3xl font-semibold tabular-nums">{plan._count.subscriptions}</p>
          </Card>
          {canEdit ? (
            <Card
              title="Lifecycle"
              description="Archiving closes a plan to new subscribers; existing ones keep it. A plan with subscribers can't be deleted."
            >
              <div className="flex flex-wrap gap-2">
                <ActionForm
                  inline
                  action={archivePlanAction.bind(null, slug, plan.id, plan.status === 'ACTIVE')}
                  submitLabel={plan.status === 'ACTIVE' ? 'Archive plan' : 'Restore plan'}
                  variant="secondary"
                />
                <ActionForm
                  inline
                  action={deletePlanAction.bind(null, slug, plan.id)}
                  submitLabel="Delete"
                  variant="danger"
                  confirm={`Delete ${plan.name}?`}
                />
              </div>
            </Card>
          ) : null}
        </div>
      </div>
    </>
  );
}
