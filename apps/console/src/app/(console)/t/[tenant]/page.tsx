import Link from 'next/link';
import { tenantSession } from '@/server/console/auth';
import { getRuntime } from '@/server/shared/runtime';
import { gatewayUrlFor } from '@/env';
import { queryUsage } from '@/server/shared/usage';
import { getTenant } from '@/server/console/tenant';
import { BarChart } from '@/components/charts';
import { Badge, Card, formatDate, formatNumber, PageHeader, Stat } from '@/components/ui';
import { REFUSED_HINT } from '@/components/billable-note';

export default async function Overview({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string }>;
  searchParams: Promise<Record<string, string | undefined>>;
}) {
  const { tenant: slug } = await params;
  const sp = await searchParams;
  const { ctx, tenant } = await tenantSession(slug);
  const [t, apiCount, planCount, keyCount, usage] = await Promise.all([
    getTenant(ctx),
    ctx.db.api.count({ where: { tenantId: ctx.tenantId } }),
    ctx.db.plan.count({ where: { tenantId: ctx.tenantId } }),
    ctx.db.apiKey.count({ where: { tenantId: ctx.tenantId, status: 'ACTIVE' } }),
    queryUsage(ctx, { range: '24h' }),
  ]);
  const base = `/t/${tenant.slug}`;
  const steps = [
    { done: apiCount > 0, label: 'Register an API', href: `${base}/apis/new`, body: 'Point Tollgate at your upstream service.' },
    { done: planCount > 0, label: 'Create a plan', href: `${base}/plans/new`, body: 'Set rate limits, quotas and prices.' },
    { done: keyCount > 0, label: 'Issue an API key', href: `${base}/keys`, body: 'Call your API through the gateway.' },
    {
      done: usage.totals.requests > 0,
      label: 'Make your first call',
      href: `${base}/analytics`,
      body: 'Watch requests arrive in analytics.',
    },
  ];
  const gatewayUrl = gatewayUrlFor(getRuntime().config, tenant.slug);
  return (
    <>
      <PageHeader
        title={sp.welcome ? `Welcome to ${tenant.name}` : 'Overview'}
        description={
          <>
            Your gateway answers at <code className="font-mono">{gatewayUrl}</code>
          </>
        }
      />
      {steps.some((s) => !s.done) ? (
        <Card title="Get started" description="Four steps from nothing to a metered, rate-limited API." className="mb-6">
          <ol className="grid gap-3 md:grid-cols-4">
            {steps.map((s, i) => (
              <li key={s.label} className="rounded-md border border-slate-200 p-3">
                <p className="text-xs font-medium text-slate-500">Step {i + 1}</p>
                <Link href={s.href} className="mt-1 block font-medium text-brand-700 underline-offset-2 hover:underline">
                  {s.label}
                </Link>
                <p className="mt-1 text-xs text-slate-600">{s.body}</p>
                <div className="mt-2">{s.done ? <Badge tone="green">Done</Badge> : <Badge>To do</Badge>}</div>
              </li>
            ))}
          </ol>
        </Card>
      ) : null}
      <dl className="grid gap-4 sm:grid-cols-2 lg:grid-cols-4">
        <Stat label="Requests (24 h)" value={formatNumber(usage.totals.requests)} />
        <Stat
          label="Errors (5xx)"
          value={`${(usage.totals.serverErrorRate * 100).toFixed(1)}%`}
          hint={`${formatNumber(usage.totals.refused)} ${REFUSED_HINT}`}
        />
        <Stat label="p95 latency" value={usage.totals.p95 === null ? '—' : `${usage.totals.p95} ms`} />
        <Stat label="Active keys" value={formatNumber(keyCount)} hint={`${apiCount} APIs · ${planCount} plans`} />
      </dl>
      <Card title="Requests, last 24 hours" className="mt-6">
        <BarChart
          title="Requests per hour, last 24 hours"
          labels={usage.points.map((p) => p.t.slice(11, 16))}
          series={[
            { label: 'Success', color: '#6366f1', values: usage.points.map((p) => p.s2xx + p.s3xx) },
            { label: 'Refused by policy', color: '#f59e0b', values: usage.points.map((p) => p.refused) },
            { label: 'Errors (5xx)', color: '#ef4444', values: usage.points.map((p) => p.serverErrors) },
          ]}
        />
      </Card>
      <Card title="Gateway configuration" className="mt-6">
        <p className="text-sm text-slate-700">
          Policy version <span className="font-mono font-medium">{t.policyVersion}</span>; the gateway has version{' '}
          <span className="font-mono font-medium">{t.publishedPolicyVersion}</span>
          {t.policyPublishedAt ? <> (picked up {formatDate(t.policyPublishedAt)})</> : null}.{' '}
          {t.policyVersion === t.publishedPolicyVersion ? <Badge tone="green">In sync</Badge> : <Badge tone="amber">Publishing…</Badge>}
        </p>
      </Card>
    </>
  );
}
