import Link from 'next/link';
import type { Metadata } from 'next';
import { Card, EmptyState, formatDate, formatNumber, KeyStatusBadge, LinkButton, PageHeader, Table, Td } from '@/components/ui';
import { portalGatewayUrl, portalSite, requireDeveloper } from '@/server/portal/next';
import { listPublicApis } from '@/server/portal/catalog';
import { buildReference, sampleUrl as opUrl } from '@/server/portal/reference';
import { listMyKeys } from '@/server/portal/keys';
import { currentSubscription, periodUsage, quotaLevel } from '@/server/portal/subscriptions';
import { myKeyUsage } from '@/server/portal/usage';
import { QuotaMeter } from '../quota-meter';
import { KeyRowActions } from '../key-row-actions';
import { CreateKeyForm } from './create-key-form';

export const metadata: Metadata = { title: 'API keys' };
export const dynamic = 'force-dynamic';

export default async function Keys({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string }>;
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const { tenant: slug } = await params;
  const sp = await searchParams;
  const dev = await requireDeveloper(slug);
  const [keys, sub, usage] = await Promise.all([listMyKeys(dev), currentSubscription(dev), myKeyUsage(dev, { range: '30d' })]);
  const used = sub ? await periodUsage(dev, sub) : 0;
  // The first documented GET of the first public API, for the samples shown with a new key.
  const firstApi = (await listPublicApis(dev.db, dev.tenant))[0];
  let sampleUrl: string | null = null;
  if (firstApi) {
    const api = await dev.db.api.findUnique({ where: { id: firstApi.id }, select: { openapi: true } });
    const op = buildReference(api?.openapi ?? {}, firstApi.name).operations.find((o) => o.method === 'GET');
    const base = `${portalGatewayUrl(dev.tenant.slug)}${firstApi.basePath === '/' ? '' : firstApi.basePath}`;
    sampleUrl = op ? opUrl(op, base) : `${base}/`;
  }
  const byKey = new Map(usage.map((u) => [u.id, u]));
  const { base } = await portalSite(slug);
  return (
    <>
      <PageHeader
        title="API keys"
        description="Keys authenticate your calls. Send one as Authorization: Bearer <key> or in the X-API-Key header."
      />
      {sp.welcome ? (
        <p role="status" className="mb-4 rounded-md border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-900">
          Welcome, {dev.name}! Pick a plan, then create your first key.
        </p>
      ) : null}
      {!sub ? (
        <EmptyState
          title="Pick a plan to get a key"
          body="Keys work within a plan: the plan sets your rate limit and monthly quota. The free plan starts instantly."
          action={<LinkButton href={`${base}/pricing`}>See plans</LinkButton>}
        />
      ) : (
        <div className="space-y-6">
          <Card
            title={`Plan: ${sub.plan.name}`}
            description={`Current period ${formatDate(sub.currentPeriodStart)} – ${formatDate(sub.currentPeriodEnd)}.`}
          >
            <QuotaMeter
              used={used}
              quota={sub.plan.monthlyQuota}
              level={quotaLevel(used, sub.plan.monthlyQuota)}
              hardCap={sub.plan.quotaMode === 'HARD_CAP'}
              upgradeHref={`${base}/pricing`}
            />
          </Card>
          <Card title="Create a key" description="The secret is shown once. Store it in your secrets manager.">
            <CreateKeyForm slug={dev.tenant.slug} sampleUrl={sampleUrl} />
          </Card>
        </div>
      )}
      {keys.length ? (
        <div className="mt-6">
          <Table head={['Name', 'Key', 'Status', 'Calls (30 days)', 'Last used', 'Actions']} caption="Your keys">
            {keys.map((k) => {
              const u = byKey.get(k.id);
              const expired = k.expiresAt && k.expiresAt < new Date();
              return (
                <tr key={k.id}>
                  <Td>{k.name || <span className="text-slate-600">unnamed</span>}</Td>
                  <Td className="font-mono text-xs">{k.prefix}…</Td>
                  <Td>
                    <KeyStatusBadge status={k.status} expiresAt={k.expiresAt} showExpiry />
                  </Td>
                  <Td>
                    <Link href={`${base}/usage?keyId=${k.id}`} className="text-brand-700 underline">
                      {formatNumber(u?.requests ?? 0)}
                    </Link>
                    {u?.errors ? <span className="text-xs text-slate-600"> ({formatNumber(u.errors)} errors)</span> : null}
                  </Td>
                  <Td>{k.lastUsedAt ? formatDate(k.lastUsedAt) : 'never'}</Td>
                  <Td>
                    {k.status === 'ACTIVE' && !expired ? (
                      <KeyRowActions slug={dev.tenant.slug} keyId={k.id} name={k.name} prefix={k.prefix} />
                    ) : null}
                  </Td>
                </tr>
              );
            })}
          </Table>
        </div>
      ) : null}
    </>
  );
}
