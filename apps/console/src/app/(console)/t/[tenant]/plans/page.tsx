import Link from 'next/link';
import { tenantSession } from '@/server/console/auth';
import { listPlans } from '@/server/console/plans';
import { can } from '@/server/shared/context';
import { Badge, EmptyState, formatMoney, formatNumber, LinkButton, PageHeader, Pager, Table, Td } from '@/components/ui';

export default async function PlansPage({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string }>;
  searchParams: Promise<Record<string, string | undefined>>;
}) {
  const { tenant: slug } = await params;
  const sp = await searchParams;
  const { ctx, role } = await tenantSession(slug);
  const page = await listPlans(ctx, { cursor: sp.cursor }).catch(() => listPlans(ctx, {}));
  const base = `/t/${slug}/plans`;
  const canEdit = can(role, 'managePlans');
  return (
    <>
      <PageHeader
        title="Plans"
        description="Tiers your consumers subscribe to: limits, quotas, prices and which APIs they unlock."
        actions={canEdit ? <LinkButton href={`${base}/new`}>Create plan</LinkButton> : null}
      />
      {page.data.length === 0 ? (
        <EmptyState
          title="No plans yet"
          body="A plan decides how much a key may call and what it costs. Start with a free plan with a small quota."
          action={canEdit ? <LinkButton href={`${base}/new`}>Create your first plan</LinkButton> : null}
        />
      ) : (
        <Table head={['Plan', 'Rate limit', 'Quota', 'Price', 'APIs', 'Subscribers', 'Status']} caption="Plans">
          {page.data.map((p) => (
            <tr key={p.id}>
              <Td>
                <Link href={`${base}/${p.id}`} className="font-medium text-brand-700 hover:underline">
                  {p.name}
                </Link>
                <div className="text-xs text-slate-500">{p.public ? 'public' : 'private'}</div>
              </Td>
              <Td>{p.rateLimit ? `${formatNumber(p.rateLimit)} / ${p.rateWindowSeconds}s` : 'none'}</Td>
              <Td>
                {p.monthlyQuota
                  ? `${formatNumber(p.monthlyQuota)}/mo ${p.quotaMode === 'HARD_CAP' ? '(hard cap)' : '(overage)'}`
                  : 'unlimited'}
              </Td>
              <Td>{p.flatFeeMinor ? `${formatMoney(p.flatFeeMinor, p.currency)}/mo` : 'free'}</Td>
              <Td>{p.planApis.map((pa) => pa.api.name).join(', ') || '—'}</Td>
              <Td>{p._count.subscriptions}</Td>
              <Td>{p.status === 'ACTIVE' ? <Badge tone="green">active</Badge> : <Badge>archived</Badge>}</Td>
            </tr>
          ))}
        </Table>
      )}
      <Pager nextHref={page.nextCursor ? `${base}?cursor=${page.nextCursor}` : null} />
    </>
  );
}
