import Link from 'next/link';
import { tenantSession } from '@/server/console/auth';
import { queryTopUsage, queryUsage, RANGES } from '@/server/shared/usage';
import { queryBilling } from '@/server/console/revenue';
import { BarChart, RankList } from '@/components/charts';
import { Card, cx, formatMoney, formatNumber, PageHeader, Stat, Table, Td } from '@/components/ui';
import { REFUSED_HINT } from '@/components/billable-note';

function labelFor(t: string, g: string) {
  if (g === 'day') return t.slice(5, 10);
  return t.slice(11, 16);
}

export default async function AnalyticsPage({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string }>;
  searchParams: Promise<Record<string, string | undefined>>;
}) {
  const { tenant: slug } = await params;
  const sp = await searchParams;
  const { ctx } = await tenantSession(slug);
  const range = sp.range && sp.range in RANGES ? (sp.range as keyof typeof RANGES) : '24h';
  const filter = {
    range,
    ...(sp.apiId ? { apiId: sp.apiId } : {}),
    ...(sp.keyId ? { keyId: sp.keyId } : {}),
    ...(sp.consumerId ? { consumerId: sp.consumerId } : {}),
    ...(sp.status && ['2xx', '3xx', '4xx', '5xx'].includes(sp.status) ? { status: sp.status } : {}),
  };
  const safe = await Promise.all([queryUsage(ctx, filter), queryTopUsage(ctx, filter), queryBilling(ctx, filter)]).catch(() =>
    Promise.all([queryUsage(ctx, { range }), queryTopUsage(ctx, { range }), queryBilling(ctx, { range })]),
  );
  const [usage, top, billing] = safe;
  const apis = await ctx.db.api.findMany({ where: { tenantId: ctx.tenantId }, select: { id: true, name: true }, orderBy: { name: 'asc' } });
  const qs = (over: Record<string, string>) =>
    new URLSearchParams({ ...Object.fromEntries(Object.entries({ ...sp, ...over }).filter(([, v]) => v)) } as Record<
      string,
      string
    >).toString();
  const labels = usage.points.map((p) => labelFor(p.t, usage.granularity));
  return (
    <>
      <PageHeader
        title="Analytics"
        description={`Traffic through your gateway, by ${usage.granularity}.`}
        actions={
          <>
            <a
              href={`/t/${slug}/analytics/export?${qs({})}`}
              className="rounded-md border border-slate-300 bg-white px-3.5 py-2 text-sm font-medium shadow-sm hover:bg-slate-50"
              download
            >
              Export CSV
            </a>
            <a
              href={`/t/${slug}/analytics/export?${qs({ kind: 'top' })}`}
              className="rounded-md border border-slate-300 bg-white px-3.5 py-2 text-sm font-medium shadow-sm hover:bg-slate-50"
              download
            >
              Export top lists
            </a>
          </>
        }
      />
      <div className="mb-6 flex flex-wrap items-end gap-4">
        <nav aria-label="Time range" className="inline-flex rounded-md border border-slate-300 bg-white p-0.5 shadow-sm">
          {Object.keys(RANGES).map((r) => (
            <Link
              key={r}
              href={`?${qs({ range: r })}`}
              aria-current={r === range ? 'true' : undefined}
              className={cx('rounded px-3 py-1.5 text-sm', r === range ? 'bg-brand-600 text-white' : 'text-slate-700 hover:bg-slate-100')}
            >
              {r}
            </Link>
          ))}
        </nav>
        <form className="flex flex-wrap items-end gap-2">
          <input type="hidden" name="range" value={range} />
          <div>
            <label htmlFor="apiId" className="block text-xs font-medium text-slate-600">
              API
            </label>
            <select
              id="apiId"
              name="apiId"
              defaultValue={sp.apiId ?? ''}
              className="mt-1 rounded-md border border-slate-300 px-2 py-1.5 text-sm"
            >
              <option value="">All APIs</option>
              {apis.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.name}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label htmlFor="statusf" className="block text-xs font-medium text-slate-600">
              Status
            </label>
            <select
              id="statusf"
              name="status"
              defaultValue={sp.status ?? ''}
              className="mt-1 rounded-md border border-slate-300 px-2 py-1.5 text-sm"
            >
              <option value="">All</option>
              <option value="2xx">2xx</option>
              <option value="3xx">3xx</option>
              <option value="4xx">4xx</option>
              <option value="5xx">5xx</option>
            </select>
          </div>
          <div>
            <label htmlFor="keyId" className="block text-xs font-medium text-slate-600">
              Key id
            </label>
            <input
              id="keyId"
              name="keyId"
              defaultValue={sp.keyId ?? ''}
              placeholder="key_…"
              className="mt-1 w-40 rounded-md border border-slate-300 px-2 py-1.5 text-sm"
            />
          </div>
          <div>
            <label htmlFor="consumerId" className="block text-xs font-medium text-slate-600">
              Consumer id
            </label>
            <input
              id="consumerId"
              name="consumerId"
              defaultValue={sp.consumerId ?? ''}
              placeholder="con_…"
              className="mt-1 w-40 rounded-md border border-slate-300 px-2 py-1.5 text-sm"
            />
          </div>
          <button className="rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm">Apply</button>
        </form>
      </div>
      <dl className="grid gap-4 sm:grid-cols-2 lg:grid-cols-6">
        <Stat label="Requests" value={formatNumber(usage.totals.requests)} />
        <Stat label="Test traffic (not billed)" value={formatNumber(usage.totals.testRequests)} />
        <Stat
          label="Errors (5xx)"
          value={`${(usage.totals.serverErrorRate * 100).toFixed(2)}%`}
          hint={`${formatNumber(usage.totals.refused)} ${REFUSED_HINT}`}
        />
        <Stat label="p50" value={usage.totals.p50 === null ? '—' : `≤${usage.totals.p50} ms`} />
        <Stat label="p95" value={usage.totals.p95 === null ? '—' : `≤${usage.totals.p95} ms`} />
        <Stat label="p99" value={usage.totals.p99 === null ? '—' : `≤${usage.totals.p99} ms`} />
      </dl>
      {usage.totals.requests === 0 ? (
        <p className="mt-6 rounded-md border border-slate-200 bg-white px-4 py-3 text-sm text-slate-600">
          No traffic in this range yet. Calls appear here within a minute of reaching the gateway.
        </p>
      ) : null}
      <div className="mt-6 grid gap-6 lg:grid-cols-2">
        <Card title="Requests by status class">
          <BarChart
            title="Requests by status class"
            labels={labels}
            series={[
              { label: '2xx', color: '#6366f1', values: usage.points.map((p) => p.s2xx) },
              { label: '3xx', color: '#0ea5e9', values: usage.points.map((p) => p.s3xx) },
              { label: '4xx', color: '#f59e0b', values: usage.points.map((p) => p.s4xx) },
              { label: '5xx', color: '#ef4444', values: usage.points.map((p) => p.s5xx) },
            ]}
          />
        </Card>
        <Card title="Latency p95 (ms, bucket upper bound)">
          <BarChart
            title="p95 latency"
            labels={labels}
            series={[{ label: 'p95', color: '#14b8a6', values: usage.points.map((p) => p.p95 ?? 0) }]}
            unit=""
          />
        </Card>
      </div>
      <div className="mt-6 grid gap-6 lg:grid-cols-3">
        <Card>
          <RankList title="Top APIs" rows={top.apis} empty="No calls yet." />
        </Card>
        <Card>
          <RankList title="Top keys" rows={top.keys} empty="No keyed calls yet." />
        </Card>
        <Card>
          <RankList title="Top consumers" rows={top.consumers} empty="No consumer calls yet." />
        </Card>
      </div>
      <div className="mt-6 grid gap-6 lg:grid-cols-2">
        <Card title="Quota use this period">
          {billing.quota.length === 0 ? (
            <p className="text-sm text-slate-600">No live subscriptions.</p>
          ) : (
            <Table head={['Consumer', 'Plan', 'Used', 'Quota']}>
              {billing.quota.map((q) => (
                <tr key={q.subscriptionId}>
                  <Td>{q.consumer}</Td>
                  <Td>{q.plan}</Td>
                  <Td className="tabular-nums">{formatNumber(q.used)}</Td>
                  <Td className="tabular-nums">
                    {q.quota ? `${formatNumber(q.quota)} (${Math.round((q.used / q.quota) * 100)}%)` : 'unlimited'}
                  </Td>
                </tr>
              ))}
            </Table>
          )}
        </Card>
        <Card title="Revenue by plan">
          {billing.revenue.length === 0 ? (
            <p className="text-sm text-slate-600">No billed usage in this range.</p>
          ) : (
            <Table head={['Plan', 'Billable requests', 'Amount']}>
              {billing.revenue.map((r) => (
                <tr key={r.plan}>
                  <Td>{r.plan}</Td>
                  <Td className="tabular-nums">{formatNumber(r.quantity)}</Td>
                  <Td className="tabular-nums">{formatMoney(r.amountMinor, r.currency)}</Td>
                </tr>
              ))}
            </Table>
          )}
        </Card>
      </div>
    </>
  );
}
