import { notFound } from 'next/navigation';
import { tenantSession } from '@/server/console/auth';
import { getApi } from '@/server/console/apis';
import { can, ServiceError } from '@/server/shared/context';
import { getTenant } from '@/server/console/tenant';
import { getRuntime } from '@/server/shared/runtime';
import { gatewayUrlFor } from '@/env';
import { ActionForm } from '@/components/forms';
import { ApiFields } from '@/components/api-fields';
import { RouteFields } from '@/components/route-fields';
import { EdgePolicyFields } from '@/components/edge-fields';
import { TestCall } from '@/components/test-call';
import { Badge, Card, formatDate, PageHeader, Table, Td } from '@/components/ui';
import {
  createRouteAction,
  deleteApiAction,
  deleteRouteAction,
  updateApiAction,
  updateApiEdgeAction,
  updateRouteAction,
} from '../../_actions/apis';
import { testCallAction } from '../../_actions/test-call';

type Transform = { requestHeaders?: { set?: object; remove?: string[] }; responseHeaders?: { set?: object; remove?: string[] } } | null;
const transformCount = (t: Transform) =>
  [t?.requestHeaders, t?.responseHeaders].reduce((n, side) => n + Object.keys(side?.set ?? {}).length + (side?.remove?.length ?? 0), 0);

export default async function ApiPage({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string; apiId: string }>;
  searchParams: Promise<Record<string, string | undefined>>;
}) {
  const { tenant: slug, apiId } = await params;
  const sp = await searchParams;
  const { ctx, role } = await tenantSession(slug);
  const api = await getApi(ctx, apiId).catch((err) => {
    if (err instanceof ServiceError && err.code === 'not_found') notFound();
    throw err;
  });
  const tenant = await getTenant(ctx);
  const canEdit = can(role, 'manageApis');
  const publicUrl = `${gatewayUrlFor(getRuntime().config, slug)}${api.basePath === '/' ? '' : api.basePath}`;
  const doc = api.openapi as { info?: { title?: string; version?: string }; paths?: Record<string, unknown> } | null;
  return (
    <>
      <PageHeader
        title={api.name}
        description={
          <>
            Callable at <code className="font-mono">{publicUrl}</code>
          </>
        }
        actions={
          api.visibility === 'PUBLIC' ? (
            <>
              <Badge tone="green">In portal</Badge>
              <a href={`/portal/${slug}/apis/${api.slug}`} className="text-sm font-medium text-brand-700 underline">
                View in portal
              </a>
            </>
          ) : (
            <Badge>Private: hidden from the portal</Badge>
          )
        }
      />
      {sp.created ? (
        <div role="status" className="mb-6 rounded-md border border-emerald-200 bg-emerald-50 px-4 py-3 text-sm text-emerald-800">
          API registered. Next: create a plan that grants it, then issue a key.
        </div>
      ) : null}
      <div className="grid gap-6 lg:grid-cols-3">
        <div className="space-y-6 lg:col-span-2">
          <Card
            title="Routes"
            description="The gateway forwards only paths that match a route. New APIs start with a catch-all route (/*); add specific routes to restrict methods and paths or to set per-route limits and caching."
          >
            {api.routes.length === 0 ? (
              <p className="text-sm text-amber-800">No routes: the gateway answers 404 for every path. Add one, e.g. /* for everything.</p>
            ) : (
              <Table head={['Methods', 'Path', 'Timeout', 'Cache', 'Limit', 'Headers', '']} caption="Routes">
                {api.routes.map((r) => {
                  const rl = r.rateLimit as { limit: number; windowSeconds: number } | null;
                  return (
                    <tr key={r.id}>
                      <Td>{r.methods.length ? r.methods.join(', ') : 'any'}</Td>
                      <Td className="font-mono text-xs">{r.path}</Td>
                      <Td>{r.requestTimeoutMs ? `${r.requestTimeoutMs} ms` : 'API default'}</Td>
                      <Td>{r.cacheTtlSeconds ? `${r.cacheTtlSeconds}s` : '—'}</Td>
                      <Td>{rl ? `${rl.limit}/${rl.windowSeconds}s` : '—'}</Td>
                      <Td>{transformCount(r.transform as Transform) || '—'}</Td>
                      <Td>
                        {canEdit ? (
                          <ActionForm
                            inline
                            action={deleteRouteAction.bind(null, slug, api.id, r.id)}
                            submitLabel="Remove"
                            variant="ghost"
                            confirm="Remove this route?"
                          />
                        ) : null}
                      </Td>
                    </tr>
                  );
                })}
              </Table>
            )}
            {canEdit ? (
              <details className="mt-4">
                <summary className="cursor-pointer text-sm font-medium text-brand-700">Add a route</summary>
                <div className="mt-3">
                  <ActionForm action={createRouteAction.bind(null, slug, api.id)} submitLabel="Add route" idPrefix="new-route-">
                    <RouteFields />
                  </ActionForm>
                </div>
              </details>
            ) : null}
            {canEdit
              ? api.routes.map((r) => (
                  <details key={r.id} className="mt-3">
                    <summary className="cursor-pointer text-sm font-medium text-brand-700">
                      Edit {r.methods.length ? r.methods.join(', ') : 'any'} <span className="font-mono">{r.path}</span>
                    </summary>
                    <div className="mt-3">
                      <ActionForm action={updateRouteAction.bind(null, slug, api.id, r.id)} submitLabel="Save route" idPrefix={`${r.id}-`}>
                        <RouteFields d={r} />
                      </ActionForm>
                    </div>
                  </details>
                ))
              : null}
          </Card>
          <Card title="Test call" description="Send a request through the gateway and see what your consumers would get.">
            <TestCall action={testCallAction.bind(null, slug, api.id)} />
          </Card>
          {canEdit ? (
            <Card title="Settings">
              <ActionForm action={updateApiAction.bind(null, slug, api.id)} submitLabel="Save changes" idPrefix="api-">
                <ApiFields
                  d={{
                    ...api,
                    targets: api.targets.map((t) => ({ url: t.url, weight: t.weight })),
                  }}
                />
              </ActionForm>
            </Card>
          ) : null}
          {canEdit ? (
            <Card
              title="Edge policies"
              description="CORS, client address rules, a limit per client address and a circuit breaker, enforced by the gateway before your upstream sees a call."
            >
              <ActionForm action={updateApiEdgeAction.bind(null, slug, api.id)} submitLabel="Save edge policies" idPrefix="edge-">
                <EdgePolicyFields d={api} />
              </ActionForm>
            </Card>
          ) : null}
        </div>
        <div className="space-y-6">
          <Card title="Gateway status">
            <dl className="space-y-2 text-sm">
              <div className="flex justify-between">
                <dt className="text-slate-600">Configured version</dt>
                <dd className="font-mono">{tenant.policyVersion}</dd>
              </div>
              <div className="flex justify-between">
                <dt className="text-slate-600">Gateway has</dt>
                <dd className="font-mono">{tenant.publishedPolicyVersion}</dd>
              </div>
              <div className="flex justify-between">
                <dt className="text-slate-600">Picked up</dt>
                <dd>{formatDate(tenant.policyPublishedAt)}</dd>
              </div>
            </dl>
            <div className="mt-3">
              {tenant.policyVersion === tenant.publishedPolicyVersion ? (
                <Badge tone="green">In sync</Badge>
              ) : (
                <Badge tone="amber">Publishing…</Badge>
              )}
            </div>
          </Card>
          <Card title="OpenAPI">
            {doc ? (
              <p className="text-sm text-slate-700">
                {doc.info?.title} <span className="text-slate-500">v{doc.info?.version}</span> · {Object.keys(doc.paths ?? {}).length} paths
              </p>
            ) : (
              <p className="text-sm text-slate-600">No document yet. Upload one in settings so the portal can show a reference.</p>
            )}
          </Card>
          <Card title="Upstream targets">
            <ul className="space-y-1 text-sm">
              {api.targets.map((t) => (
                <li key={t.id} className="flex justify-between gap-2">
                  <span className="truncate font-mono text-xs">{t.url}</span>
                  <span className="text-slate-500">w{t.weight}</span>
                </li>
              ))}
            </ul>
          </Card>
          {canEdit ? (
            <Card title="Danger zone">
              <ActionForm
                action={deleteApiAction.bind(null, slug, api.id)}
                submitLabel="Delete API"
                variant="danger"
                confirm={`Delete ${api.name}? Calls to it stop at once.`}
              />
            </Card>
          ) : null}
        </div>
      </div>
    </>
  );
}
