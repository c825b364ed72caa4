import { tenantSession } from '@/server/console/auth';
import { listKeys } from '@/server/console/keys';
import { can } from '@/server/shared/context';
import { ActionForm, Checkbox, Field, Select } from '@/components/forms';
import { IpRulesFields, type IpRulesValue } from '@/components/edge-fields';
import { Card, EmptyState, formatDate, KeyStatusBadge, PageHeader, Pager, Table, Td } from '@/components/ui';
import { issueKeyAction, revokeKeyAction, rollKeyAction, updateKeyAction } from '../_actions/keys';

export default async function KeysPage({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string }>;
  searchParams: Promise<Record<string, string | undefined>>;
}) {
  const { tenant: slug } = await params;
  const sp = await searchParams;
  const { ctx, role } = await tenantSession(slug);
  const status = sp.status === 'ACTIVE' || sp.status === 'REVOKED' ? sp.status : undefined;
  const [page, plans, apis] = await Promise.all([
    listKeys(ctx, { cursor: sp.cursor, q: sp.q || undefined, status }).catch(() => listKeys(ctx, {})),
    ctx.db.plan.findMany({
      where: { tenantId: ctx.tenantId, status: 'ACTIVE' },
      select: { id: true, name: true },
      orderBy: { createdAt: 'asc' },
    }),
    ctx.db.api.findMany({ where: { tenantId: ctx.tenantId }, select: { id: true, name: true }, orderBy: { name: 'asc' } }),
  ]);
  const canEdit = can(role, 'manageKeys');
  const base = `/t/${slug}/keys`;
  return (
    <>
      <PageHeader
        title="API keys"
        description="Keys your consumers and your own services call the gateway with. A key's secret is shown once; afterwards only its prefix."
      />
      {canEdit ? (
        <Card
          title="Issue a key"
          description="For internal use or testing. Keys on a plan get that plan's limits and APIs."
          className="mb-6"
        >
          <ActionForm action={issueKeyAction.bind(null, slug)} submitLabel="Issue key" pendingLabel="Issuing…">
            <div className="grid gap-4 md:grid-cols-3">
              <Field name="name" label="Name" placeholder="Staging backend" maxLength={100} />
              <Select
                name="planId"
                label="Plan"
                options={[{ value: '', label: 'No plan (no limits, all APIs)' }, ...plans.map((p) => ({ value: p.id, label: p.name }))]}
                defaultValue={plans[0]?.id ?? ''}
              />
              <Select
                name="env"
                label="Environment"
                options={[
                  { value: 'live', label: 'Live (tg_live_…)' },
                  { value: 'test', label: 'Test (tg_test_…)' },
                ]}
              />
            </div>
            <details>
              <summary className="cursor-pointer text-sm font-medium text-brand-700">Expiry and limit overrides</summary>
              <div className="mt-3 grid gap-4 md:grid-cols-4">
                <Field name="expiresAt" label="Expires" type="datetime-local" />
                <Field name="rateLimitOverride" label="Rate limit" type="number" hint="Overrides the plan's" />
                <Field name="rateWindowOverride" label="Window (s)" type="number" />
                <Field name="quotaOverride" label="Monthly quota" type="number" />
              </div>
              <div className="mt-4 space-y-4">
                <Field
                  name="scopes"
                  label="Scopes"
                  hint="What routes that require scopes let this key do (space-separated)"
                  maxLength={4000}
                />
                <IpRulesFields />
              </div>
              {apis.length > 1 ? (
                <fieldset className="mt-4">
                  <legend className="text-sm font-medium text-slate-800">Only these APIs (none ticked = all its plan grants)</legend>
                  <div className="mt-2 flex flex-wrap gap-4">
                    {apis.map((a) => (
                      <Checkbox key={a.id} name="apiIds" value={a.id} label={a.name} />
                    ))}
                  </div>
                </fieldset>
              ) : null}
            </details>
          </ActionForm>
        </Card>
      ) : null}
      <form className="mb-4 flex flex-wrap items-end gap-2" role="search">
        <div>
          <label htmlFor="q" className="block text-xs font-medium text-slate-600">
            Search
          </label>
          <input
            id="q"
            name="q"
            defaultValue={sp.q}
            placeholder="Name or prefix"
            className="mt-1 block rounded-md border border-slate-300 px-3 py-2 text-sm"
          />
        </div>
        <div>
          <label htmlFor="status" className="block text-xs font-medium text-slate-600">
            Status
          </label>
          <select
            id="status"
            name="status"
            defaultValue={status ?? ''}
            className="mt-1 block rounded-md border border-slate-300 px-3 py-2 text-sm"
          >
            <option value="">All</option>
            <option value="ACTIVE">Active</option>
            <option value="REVOKED">Revoked</option>
          </select>
        </div>
        <button className="rounded-md border border-slate-300 bg-white px-3 py-2 text-sm">Filter</button>
      </form>
      {page.data.length === 0 ? (
        <EmptyState
          title="No keys"
          body={
            sp.q || status
              ? 'No keys match the filter.'
              : 'Issue a key above, then call your API with it: curl -H "Authorization: Bearer <key>" …'
          }
        />
      ) : (
        <Table head={['Key', 'Consumer', 'Plan', 'Status', 'Expires', 'Last used', '']} caption="API keys">
          {page.data.map((k) => {
            return (
              <tr key={k.id}>
                <Td>
                  <span className="font-mono text-xs">{k.prefix}…</span>
                  <div className="text-xs text-slate-500">{k.name || 'unnamed'}</div>
                </Td>
                <Td>{k.consumer.internal ? <span className="text-slate-500">internal</span> : k.consumer.email}</Td>
                <Td>{k.subscription?.plan.name ?? '—'}</Td>
                <Td>
                  <KeyStatusBadge status={k.status} expiresAt={k.expiresAt} />
                </Td>
                <Td>{formatDate(k.expiresAt)}</Td>
                <Td>{formatDate(k.lastUsedAt)}</Td>
                <Td>
                  {canEdit && k.status === 'ACTIVE' ? (
                    <details>
                      <summary className="cursor-pointer text-sm font-medium text-brand-700">Manage</summary>
                      <div className="mt-2 w-72 space-y-4 rounded-md border border-slate-200 bg-white p-3 shadow-sm">
                        <ActionForm
                          action={rollKeyAction.bind(null, slug, k.id)}
                          submitLabel="Roll key"
                          variant="secondary"
                          idPrefix={`${k.id}-roll-`}
                        >
                          <Field name="graceHours" label="Old key keeps working for (hours)" type="number" defaultValue={24} />
                        </ActionForm>
                        <ActionForm
                          action={updateKeyAction.bind(null, slug, k.id)}
                          submitLabel="Save overrides"
                          variant="secondary"
                          idPrefix={`${k.id}-`}
                        >
                          <Field name="name" label="Name" defaultValue={k.name} />
                          <Field
                            name="expiresAt"
                            label="Expires"
                            type="datetime-local"
                            defaultValue={k.expiresAt ? k.expiresAt.toISOString().slice(0, 16) : ''}
                          />
                          <Field name="rateLimitOverride" label="Rate limit" type="number" defaultValue={k.rateLimitOverride} />
                          <Field name="rateWindowOverride" label="Window (s)" type="number" defaultValue={k.rateWindowOverride} />
                          <Field name="quotaOverride" label="Monthly quota" type="number" defaultValue={k.quotaOverride} />
                          <Field name="scopes" label="Scopes" defaultValue={k.scopes.join(' ')} maxLength={4000} />
                          <IpRulesFields d={k.ipRules as IpRulesValue} />
                        </ActionForm>
                        <ActionForm
                          action={revokeKeyAction.bind(null, slug, k.id)}
                          submitLabel="Revoke now"
                          variant="danger"
                          confirm={`Revoke ${k.prefix}…? Calls with it fail within a second.`}
                        />
                      </div>
                    </details>
                  ) : null}
                </Td>
              </tr>
            );
          })}
        </Table>
      )}
      <Pager
        nextHref={
          page.nextCursor
            ? `${base}?cursor=${page.nextCursor}${sp.q ? `&q=${encodeURIComponent(sp.q)}` : ''}${status ? `&status=${status}` : ''}`
            : null
        }
      />
    </>
  );
}
