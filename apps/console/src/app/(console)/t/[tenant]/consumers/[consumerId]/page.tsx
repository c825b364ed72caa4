import Link from 'next/link';
import { notFound } from 'next/navigation';
import { tenantSession } from '@/server/console/auth';
import { getConsumer } from '@/server/console/consumers';
import { listKeys } from '@/server/console/keys';
import { queryUsage } from '@/server/shared/usage';
import { can, ServiceError } from '@/server/shared/context';
import { ActionForm, Field, Hidden, Select } from '@/components/forms';
import { Badge, Card, EmptyState, formatDate, formatNumber, KeyStatusBadge, PageHeader, Stat, Table, Td } from '@/components/ui';
import { setConsumerStatusAction } from '../../_actions/consumers';
import { issueKeyAction } from '../../_actions/keys';

const tone = { ACTIVE: 'green', PENDING: 'amber', SUSPENDED: 'red' } as const;

export default async function ConsumerPage({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string; consumerId: string }>;
  searchParams: Promise<Record<string, string | undefined>>;
}) {
  const { tenant: slug, consumerId } = await params;
  const sp = await searchParams;
  const { ctx, role } = await tenantSession(slug);
  const consumer = await getConsumer(ctx, consumerId).catch((err) => {
    if (err instanceof ServiceError && err.code === 'not_found') notFound();
    throw err;
  });
  const [keys, usage, plans] = await Promise.all([
    listKeys(ctx, { consumerId: consumer.id, limit: 100 }),
    queryUsage(ctx, { range: '30d', consumerId: consumer.id }),
    ctx.db.plan.findMany({
      where: { tenantId: ctx.tenantId, status: 'ACTIVE' },
      select: { id: true, name: true },
      orderBy: { createdAt: 'asc' },
    }),
  ]);
  const canKeys = can(role, 'manageKeys');
  const canEdit = can(role, 'manageConsumers');
  const t = usage.totals;
  return (
    <>
      <nav aria-label="Breadcrumb" className="mb-2 text-sm">
        <Link href={`/t/${slug}/consumers`} className="text-brand-700 hover:underline">
          Consumers
        </Link>
      </nav>
      <PageHeader
        title={consumer.name}
        description={consumer.email}
        actions={
          <>
            <Badge tone={tone[consumer.status]}>{consumer.status.toLowerCase()}</Badge>
            {canEdit ? (
              consumer.status === 'SUSPENDED' ? (
                <ActionForm
                  inline
                  action={setConsumerStatusAction.bind(null, slug, consumer.id, 'ACTIVE')}
                  submitLabel="Reactivate"
                  variant="secondary"
                />
              ) : (
                <ActionForm
                  inline
                  action={setConsumerStatusAction.bind(null, slug, consumer.id, 'SUSPENDED')}
                  submitLabel="Suspend"
                  variant="secondary"
                  confirm={`Suspend ${consumer.email}? Their keys stop working.`}
                />
              )
            ) : null}
          </>
        }
      />
      {sp.created ? (
        <div role="status" className="mb-6 rounded-md border border-emerald-200 bg-emerald-50 px-4 py-3 text-sm text-emerald-800">
          Consumer added. Next: issue them a key on a plan.
        </div>
      ) : null}
      <section aria-labelledby="usage-heading" className="mb-6">
        <h2 id="usage-heading" className="mb-3 text-base font-semibold text-slate-900">
          Last 30 days
        </h2>
        <dl className="grid gap-4 sm:grid-cols-4">
          <Stat label="Requests" value={formatNumber(t.requests)} />
          <Stat label="Error rate" value={`${(t.errorRate * 100).toFixed(1)}%`} hint="4xx and 5xx" />
          <Stat label="Latency p95" value={t.p95 === null ? '—' : `${t.p95} ms`} />
          <Stat label="Rejected" value={formatNumber(t.rejectedAuth + t.rejectedRate + t.rejectedQuota)} hint="auth, rate limit, quota" />
        </dl>
        <p className="mt-2 text-sm">
          <Link className="text-brand-700 hover:underline" href={`/t/${slug}/analytics?range=30d&consumerId=${consumer.id}`}>
            Open in analytics
          </Link>
        </p>
      </section>
      <div className="grid gap-6 lg:grid-cols-2">
        <Card title="Subscriptions">
          {consumer.subscriptions.length === 0 ? (
            <p className="text-sm text-slate-600">No subscriptions. Issuing a key on a plan subscribes them to it.</p>
          ) : (
            <Table head={['Plan', 'Status', 'Current period']} caption="Subscriptions">
              {consumer.subscriptions.map((s) => (
                <tr key={s.id}>
                  <Td>
                    <Link href={`/t/${slug}/plans/${s.plan.id}`} className="text-brand-700 hover:underline">
                      {s.plan.name}
                    </Link>
                  </Td>
                  <Td>{s.status.toLowerCase()}</Td>
                  <Td className="text-xs">
                    {formatDate(s.currentPeriodStart)} – {formatDate(s.currentPeriodEnd)}
                  </Td>
                </tr>
              ))}
            </Table>
          )}
        </Card>
        {canKeys ? (
          <Card title="Issue a key" description="The secret is shown once.">
            <ActionForm action={issueKeyAction.bind(null, slug)} submitLabel="Issue key" pendingLabel="Issuing…" idPrefix="consumer-key-">
              <Hidden name="consumerId" value={consumer.id} />
              <div className="grid gap-4 md:grid-cols-2">
                <Field name="name" label="Key name" maxLength={100} placeholder="Production" />
                <Select
                  name="planId"
                  label="Plan"
                  options={[{ value: '', label: 'No plan (no limits, all APIs)' }, ...plans.map((p) => ({ value: p.id, label: p.name }))]}
                  defaultValue={plans[0]?.id ?? ''}
                />
              </div>
            </ActionForm>
          </Card>
        ) : null}
      </div>
      <h2 className="mb-3 mt-8 text-base font-semibold text-slate-900">Keys</h2>
      {keys.data.length === 0 ? (
        <EmptyState title="No keys" body="Issue a key above; manage, roll or revoke it on the keys page." />
      ) : (
        <Table head={['Key', 'Plan', 'Status', 'Expires', 'Last used']} caption="Keys">
          {keys.data.map((k) => {
            return (
              <tr key={k.id}>
                <Td>
                  <span className="font-mono text-xs">{k.prefix}…</span>
                  <div className="text-xs text-slate-500">{k.name || 'unnamed'}</div>
                </Td>
                <Td>{k.subscription?.plan.name ?? '—'}</Td>
                <Td>
                  <KeyStatusBadge status={k.status} expiresAt={k.expiresAt} />
                </Td>
                <Td>{formatDate(k.expiresAt)}</Td>
                <Td>{formatDate(k.lastUsedAt)}</Td>
              </tr>
            );
          })}
        </Table>
      )}
    </>
  );
}
