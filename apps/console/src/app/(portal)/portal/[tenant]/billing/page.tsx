import Link from 'next/link';
import type { Metadata } from 'next';
import { ActionForm } from '@/components/forms';
import { Badge, Card, EmptyState, formatDate, formatMoney, LinkButton, PageHeader, Table, Td } from '@/components/ui';
import { portalSite, requireDeveloper } from '@/server/portal/next';
import { billingOverview } from '@/server/portal/subscriptions';
import { QuotaMeter } from '../quota-meter';
import { cancelAction } from '../actions';
import { BillableNote } from '@/components/billable-note';

export const metadata: Metadata = { title: 'Billing' };
export const dynamic = 'force-dynamic';

export default async function Billing({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string }>;
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const { tenant: slug } = await params;
  const sp = await searchParams;
  const dev = await requireDeveloper(slug);
  const b = await billingOverview(dev);
  const { base } = await portalSite(slug);
  return (
    <>
      {/* While Stripe's confirmation is on its way, look again every few seconds. */}
      {b.pending && sp.checkout === 'success' ? <meta httpEquiv="refresh" content="3" /> : null}
      <PageHeader title="Billing" description="Your plan, this period's usage and projected charge, and past invoices." />
      {b.pending ? (
        <p
          role="status"
          className="mb-4 rounded-md border border-amber-200 bg-amber-50 px-3 py-2 text-sm text-amber-900"
          data-testid="pending-upgrade"
        >
          Payment received? We're waiting for the payment provider to confirm your {b.pending.plan.name} plan. This page refreshes by
          itself.
        </p>
      ) : sp.checkout === 'success' && b.current?.plan.paid ? (
        <p
          role="status"
          className="mb-4 rounded-md border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-900"
          data-testid="upgrade-done"
        >
          You're on {b.current.plan.name}. Your existing keys now use the new plan.
        </p>
      ) : null}
      {!b.current ? (
        <EmptyState
          title="No plan yet"
          body="Pick a plan to start calling the API."
          action={<LinkButton href={`${base}/pricing`}>See plans</LinkButton>}
        />
      ) : (
        <div className="grid gap-6 md:grid-cols-2">
          <Card
            title={`Plan: ${b.current.plan.name}`}
            description={`Period ${formatDate(b.current.currentPeriodStart)} – ${formatDate(b.current.currentPeriodEnd)}`}
          >
            <p className="text-sm text-slate-700">
              Status: <Badge tone={b.current.status === 'ACTIVE' ? 'green' : 'amber'}>{b.current.status.toLowerCase()}</Badge>
              {b.current.cancelAtPeriodEnd ? <span className="ml-2 text-amber-900">ends at the period's end</span> : null}
            </p>
            <div className="mt-4">
              <QuotaMeter
                used={b.period!.used}
                quota={b.period!.quota}
                level={b.period!.level}
                hardCap={!b.current.plan.paid}
                upgradeHref={`${base}/pricing`}
              />
              <BillableNote />
            </div>
            <div className="mt-4 flex flex-wrap gap-3">
              <Link
                href={`${base}/pricing`}
                className="inline-flex rounded-md border border-slate-300 bg-white px-3.5 py-2 text-sm font-medium text-slate-800"
              >
                Change plan
              </Link>
              {!b.current.cancelAtPeriodEnd ? (
                <ActionForm
                  action={cancelAction.bind(null, dev.tenant.slug)}
                  submitLabel="Cancel plan"
                  variant="danger"
                  confirm="Cancel your plan? Keys on it stop working when it ends."
                />
              ) : null}
            </div>
          </Card>
          <Card title="Projected charge this period">
            <p className="text-3xl font-semibold" data-testid="projected">
              {formatMoney(b.period!.projectedMinor, b.period!.currency)}
            </p>
            <ul className="mt-3 space-y-1 text-sm text-slate-700">
              {b.period!.lines.map((l, i) => (
                <li key={i} className="flex justify-between gap-4">
                  <span>{l.description}</span>
                  <span className="tabular-nums">{formatMoney(l.amountMinor, b.period!.currency)}</span>
                </li>
              ))}
            </ul>
          </Card>
        </div>
      )}
      <h2 className="mb-3 mt-8 text-lg font-semibold">Invoices</h2>
      {b.invoices.length === 0 ? (
        <p className="text-sm text-slate-700">No invoices yet. They appear here after each billing period of a paid plan.</p>
      ) : (
        <Table head={['Invoice', 'Period', 'Total', 'Status', '']} caption="Past invoices">
          {b.invoices.map((i) => (
            <tr key={i.id} data-testid="invoice-row">
              <Td className="font-mono text-xs">{i.number ?? '—'}</Td>
              <Td>
                {formatDate(i.periodStart)} – {formatDate(i.periodEnd)}
              </Td>
              <Td>{formatMoney(i.totalMinor, i.currency)}</Td>
              <Td>
                <Badge tone={i.status === 'paid' ? 'green' : 'amber'}>{i.status}</Badge>
              </Td>
              <Td>
                {i.hostedUrl && /^https:\/\//.test(i.hostedUrl) ? (
                  <a href={i.hostedUrl} className="text-brand-700 underline" rel="noopener noreferrer">
                    View invoice<span className="sr-only"> {i.number ?? formatDate(i.periodStart)}</span>
                  </a>
                ) : null}
              </Td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
