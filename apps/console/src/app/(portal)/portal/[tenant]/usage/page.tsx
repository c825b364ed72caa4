import Link from 'next/link';
import type { Metadata } from 'next';
import { BarChart } from '@/components/charts';
import { cx, formatNumber, PageHeader, Stat, Table, Td } from '@/components/ui';
import { ServiceError } from '@/server/shared/context';
import { portalSite, requireDeveloper } from '@/server/portal/next';
import { listMyKeys } from '@/server/portal/keys';
import { myKeyUsage, myUsage } from '@/server/portal/usage';
import { listPublicApis } from '@/server/portal/catalog';
import { BillableNote, ERROR_WORDS, REFUSED_WORDS } from '@/components/billable-note';

export const metadata: Metadata = { title: 'Usage' };
export const dynamic = 'force-dynamic';

const RANGES = ['1h', '24h', '7d', '30d'] as const;

export default async function Usage({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string }>;
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const { tenant: slug } = await params;
  const sp = await searchParams;
  const dev = await requireDeveloper(slug);
  const range = (RANGES as readonly string[]).includes(String(sp.range)) ? (sp.range as (typeof RANGES)[number]) : '24h';
  // A custom range (from/to, whole UTC days) replaces the preset; the service validates it.
  const custom = sp.from !== undefined || sp.to !== undefined;
  const shown = (v: string | string[] | undefined) => (typeof v === 'string' ? v.slice(0, 32) : '');
  const span = custom ? { from: sp.from, to: sp.to } : { range };
  const [keys, apis] = await Promise.all([listMyKeys(dev), listPublicApis(dev.db, dev.tenant)]);
  const keyId = typeof sp.keyId === 'string' && keys.some((k) => k.id === sp.keyId) ? sp.keyId : undefined;
  const apiId = typeof sp.apiId === 'string' && apis.some((a) => a.id === sp.apiId) ? sp.apiId : undefined;
  let result: { usage: Awaited<ReturnType<typeof myUsage>>; perKey: Awaited<ReturnType<typeof myKeyUsage>> } | null = null;
  let problem: string | null = null;
  try {
    const [usage, perKey] = await Promise.all([
      myUsage(dev, { ...span, ...(keyId ? { keyId } : {}), ...(apiId ? { apiId } : {}) }),
      myKeyUsage(dev, { ...span, ...(apiId ? { apiId } : {}) }),
    ]);
    result = { usage, perKey };
  } catch (err) {
    if (!(err instanceof ServiceError)) throw err;
    problem = err.message;
  }
  const keyName = new Map(keys.map((k) => [k.id, k.name ? `${k.name} (${k.prefix}…)` : `${k.prefix}…`]));
  const base = `${(await portalSite(slug)).base}/usage`;
  const rangeLabel = custom ? `${shown(sp.from)} to ${shown(sp.to)} (UTC)` : `the last ${range}`;
  const today = new Date().toISOString().slice(0, 10);
  const filterHidden = custom ? (
    <>
      <input type="hidden" name="from" value={shown(sp.from)} />
      <input type="hidden" name="to" value={shown(sp.to)} />
    </>
  ) : (
    <input type="hidden" name="range" value={range} />
  );
  return (
    <>
      <PageHeader title="Usage" description="Your own calls only: requests, errors and latency per key, from the gateway's meter." />
      <div className="mb-4 flex flex-wrap items-end gap-4">
        <nav aria-label="Time range" className="flex gap-1">
          {RANGES.map((r) => (
            <Link
              key={r}
              href={`${base}?range=${r}${keyId ? `&keyId=${keyId}` : ''}${apiId ? `&apiId=${apiId}` : ''}`}
              aria-current={!custom && r === range ? 'page' : undefined}
              className={cx(
                'rounded-md px-3 py-1.5 text-sm font-medium',
                !custom && r === range ? 'bg-brand-600 text-white' : 'border border-slate-300 bg-white text-slate-800',
              )}
            >
              {r}
            </Link>
          ))}
        </nav>
        <form method="get" aria-label="Custom range" className="flex items-end gap-2">
          <DateField id="usage-from" name="from" label="From (UTC)" max={today} value={shown(sp.from)} />
          <DateField id="usage-to" name="to" label="To (UTC)" max={today} value={shown(sp.to)} />
          {keyId ? <input type="hidden" name="keyId" value={keyId} /> : null}
          {apiId ? <input type="hidden" name="apiId" value={apiId} /> : null}
          <button type="submit" className="rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium text-slate-800">
            Apply range
          </button>
        </form>
        <form method="get" className="flex items-end gap-2">
          {filterHidden}
          <div>
            <label htmlFor="usage-key" className="block text-xs font-medium text-slate-800">
              Key
            </label>
            <select
              id="usage-key"
              name="keyId"
              defaultValue={keyId ?? ''}
              className="mt-1 rounded-md border border-slate-300 px-2 py-1.5 text-sm"
            >
              <option value="">All my keys</option>
              {keys.map((k) => (
                <option key={k.id} value={k.id}>
                  {keyName.get(k.id)}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label htmlFor="usage-api" className="block text-xs font-medium text-slate-800">
              API
            </label>
            <select
              id="usage-api"
              name="apiId"
              defaultValue={apiId ?? ''}
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
          <button type="submit" className="rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium text-slate-800">
            Show
          </button>
        </form>
      </div>
      {problem || !result ? (
        <p role="alert" className="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800" data-testid="usage-error">
          {problem ?? 'No usage for this range.'}
        </p>
      ) : (
        <UsageView result={result} rangeLabel={rangeLabel} keyName={keyName} />
      )}
    </>
  );
}

function UsageView({
  result: { usage, perKey },
  rangeLabel,
  keyName,
}: {
  result: { usage: Awaited<ReturnType<typeof myUsage>>; perKey: Awaited<ReturnType<typeof myKeyUsage>> };
  rangeLabel: string;
  keyName: Map<string, string>;
}) {
  const labels = usage.points.map((p) =>
    usage.granularity === 'day'
      ? p.t.slice(5, 10)
      : usage.granularity === 'hour'
        ? `${p.t.slice(5, 10)} ${p.t.slice(11, 16)}`
        : p.t.slice(11, 16),
  );
  return (
    <>
      <dl className="mb-6 grid gap-4 md:grid-cols-4">
        <Stat label="Requests" value={<span data-testid="usage-total">{formatNumber(usage.totals.requests)}</span>} />
        <Stat
          label="Refused by policy"
          value={<span data-testid="usage-refused">{formatNumber(usage.totals.refused)}</span>}
          hint={REFUSED_WORDS}
        />
        <Stat
          label="Errors (5xx)"
          value={<span data-testid="usage-errors">{formatNumber(usage.totals.s5xx)}</span>}
          hint={`${(usage.totals.serverErrorRate * 100).toFixed(1)}%: ${ERROR_WORDS}`}
        />
        <Stat label="Latency p50" value={usage.totals.p50 === null ? '—' : `${usage.totals.p50} ms`} />
        <Stat label="Latency p95" value={usage.totals.p95 === null ? '—' : `${usage.totals.p95} ms`} />
      </dl>
      <section aria-labelledby="chart-title" className="rounded-lg border border-slate-200 bg-white p-5 shadow-sm">
        <h2 id="chart-title" className="mb-3 text-base font-semibold">
          Requests over {rangeLabel}
        </h2>
        <BarChart
          title={`Requests over ${rangeLabel}`}
          labels={labels}
          series={[
            { label: 'Successful', color: '#059669', values: usage.points.map((p) => p.s2xx + p.s3xx) },
            { label: 'Refused by policy', color: '#b45309', values: usage.points.map((p) => p.refused) },
            { label: 'Errors (5xx)', color: '#dc2626', values: usage.points.map((p) => p.serverErrors) },
          ]}
        />
        <dl className="mt-4 flex flex-wrap gap-x-6 gap-y-1 text-sm text-slate-700" aria-label="Requests by status">
          {(['s2xx', 's3xx', 's4xx', 's5xx'] as const).map((k) => (
            <div key={k} className="flex gap-1">
              <dt>{k.slice(1)}</dt>
              <dd className="font-semibold tabular-nums">{formatNumber(usage.totals[k])}</dd>
            </div>
          ))}
        </dl>
        <BillableNote />
      </section>
      <section aria-labelledby="latency-title" className="mt-6 rounded-lg border border-slate-200 bg-white p-5 shadow-sm">
        <h2 id="latency-title" className="mb-3 text-base font-semibold">
          Latency p95 (ms, bucket upper bound)
        </h2>
        <BarChart
          title={`Latency p95 over ${rangeLabel}`}
          labels={labels}
          unit=" ms"
          series={[{ label: 'p95', color: '#0d9488', values: usage.points.map((p) => p.p95 ?? 0) }]}
        />
      </section>
      <div className="mt-6">
        <Table head={['Key', 'Requests', 'Errors']} caption="Requests per key">
          {perKey.length === 0 ? (
            <tr>
              <Td>No calls in this range yet.</Td>
              <Td />
              <Td />
            </tr>
          ) : (
            perKey.map((k) => (
              <tr key={k.id}>
                <Td>{keyName.get(k.id) ?? k.label}</Td>
                <Td>{formatNumber(k.requests)}</Td>
                <Td>{formatNumber(k.errors)}</Td>
              </tr>
            ))
          )}
        </Table>
      </div>
    </>
  );
}

/** One labelled date input of the custom range form. */
function DateField({ id, name, label, max, value }: { id: string; name: string; label: string; max: string; value: string | undefined }) {
  return (
    <div>
      <label htmlFor={id} className="block text-xs font-medium text-slate-800">
        {label}
      </label>
      <input
        id={id}
        type="date"
        name={name}
        required
        max={max}
        defaultValue={value}
        className="mt-1 rounded-md border border-slate-300 px-2 py-1 text-sm"
      />
    </div>
  );
}
