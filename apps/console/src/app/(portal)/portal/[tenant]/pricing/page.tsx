import type { Metadata } from 'next';
import { ActionForm, Hidden } from '@/components/forms';
import { Badge, EmptyState, formatMoney, formatNumber, LinkButton, PageHeader } from '@/components/ui';
import { getDeveloper, getPortalDeps, portalHref, portalSite, portalTenant } from '@/server/portal/next';
import { listPublicPlans } from '@/server/portal/catalog';
import { currentSubscription, pendingSubscription } from '@/server/portal/subscriptions';
import { subscribeAction } from '../actions';

export const metadata: Metadata = { title: 'Pricing' };
export const dynamic = 'force-dynamic';

function rate(p: { rateLimit: number | null; rateWindowSeconds: number }) {
  if (p.rateLimit === null) return 'No rate limit';
  const w = p.rateWindowSeconds === 1 ? 'second' : p.rateWindowSeconds === 60 ? 'minute' : `${p.rateWindowSeconds} s`;
  return `${formatNumber(p.rateLimit)} requests per ${w}`;
}

export default async function Pricing({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string }>;
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const { tenant: slug } = await params;
  const sp = await searchParams;
  const tenant = await portalTenant(slug);
  const dev = await getDeveloper(slug);
  const site = await portalSite(slug);
  const plans = await listPublicPlans(getPortalDeps().db, tenant);
  const current = dev ? await currentSubscription(dev) : null;
  const pending = dev ? await pendingSubscription(dev) : null;
  return (
    <>
      <PageHeader
        title="Plans and pricing"
        description={`Start free and upgrade when you need more. Prices in ${tenant.currency.toUpperCase()}, billed monthly; changes are prorated.`}
      />
      {sp.checkout === 'canceled' ? (
        <p role="status" className="mb-4 rounded-md border border-slate-200 bg-white px-3 py-2 text-sm text-slate-700">
          Checkout was canceled; nothing was charged.
        </p>
      ) : null}
      {pending ? (
        <p role="status" className="mb-4 rounded-md border border-amber-200 bg-amber-50 px-3 py-2 text-sm text-amber-900">
          Your upgrade to {pending.plan.name} is waiting for payment confirmation.
        </p>
      ) : null}
      {plans.length === 0 ? (
        <EmptyState title="No public plans yet" body={`${tenant.name} hasn't published plans yet.`} />
      ) : (
        <ul className="grid gap-4 md:grid-cols-3">
          {plans.map((p) => {
            const isCurrent = current?.planId === p.id;
            return (
              <li
                key={p.id}
                className="flex flex-col rounded-lg border border-slate-200 bg-white p-5 shadow-sm"
                data-testid={`plan-${p.slug}`}
              >
                <div className="flex items-center justify-between">
                  <h2 className="text-lg font-semibold">{p.name}</h2>
                  {isCurrent ? <Badge tone="green">Your plan</Badge> : null}
                </div>
                <p className="mt-2 text-3xl font-semibold">
                  {p.flatFeeMinor > 0 ? formatMoney(p.flatFeeMinor, p.currency) : p.paid ? 'Pay as you go' : 'Free'}
                  {p.flatFeeMinor > 0 ? <span className="text-sm font-normal text-slate-600"> / month</span> : null}
                </p>
                {p.description ? <p className="mt-2 text-sm text-slate-700">{p.description}</p> : null}
                <ul className="mt-4 flex-1 space-y-1 text-sm text-slate-700">
                  <li>
                    {p.monthlyQuota === null
                      ? 'Unlimited requests'
                      : `${formatNumber(p.monthlyQuota)} requests per month${p.quotaMode === 'HARD_CAP' ? ' (hard cap)' : ''}`}
                  </li>
                  {p.includedRequests > 0 ? <li>{formatNumber(p.includedRequests)} requests included</li> : null}
                  {p.overageUnitPriceMinor > 0 ? (
                    <li>
                      then {formatMoney(p.overageUnitPriceMinor, p.currency)} per{' '}
                      {p.overageBlockSize > 1 ? `${formatNumber(p.overageBlockSize)} requests` : 'request'}
                    </li>
                  ) : null}
                  <li>{rate(p)}</li>
                  {p.trialDays > 0 ? <li>{p.trialDays}-day free trial</li> : null}
                  {p.apis.length ? <li>APIs: {p.apis.map((a) => a.name).join(', ')}</li> : null}
                </ul>
                <div className="mt-5">
                  {!dev ? (
                    <LinkButton href={portalHref(site, '/signup')}>Sign up to subscribe</LinkButton>
                  ) : isCurrent ? (
                    <p className="text-sm text-slate-700">You're on this plan.</p>
                  ) : (
                    <ActionForm
                      action={subscribeAction.bind(null, tenant.slug)}
                      submitLabel={current ? `Switch to ${p.name}` : p.paid ? `Subscribe to ${p.name}` : `Start with ${p.name}`}
                      pendingLabel={p.paid ? 'Opening checkout…' : 'Subscribing…'}
                    >
                      <Hidden name="planId" value={p.id} />
                    </ActionForm>
                  )}
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </>
  );
}
