import { notFound } from 'next/navigation';
import type { Metadata } from 'next';
import type { ReactNode } from 'react';
import { Badge, PageHeader } from '@/components/ui';
import { getDeveloper, getPortalDeps, portalGatewayUrl, portalTenant } from '@/server/portal/next';
import { getPublicApi } from '@/server/portal/catalog';
import { listMyKeys } from '@/server/portal/keys';
import { codeSamples, sampleUrl, type SchemaView } from '@/server/portal/reference';
import { TryIt } from './try-it';
import { CodeSamples } from '../../code-samples';

export const dynamic = 'force-dynamic';

export async function generateMetadata({ params }: { params: Promise<{ tenant: string; api: string }> }): Promise<Metadata> {
  const { tenant: slug, api: apiSlug } = await params;
  const api = await getPublicApi(getPortalDeps().db, await portalTenant(slug), apiSlug);
  return { title: api ? `${api.name} reference` : 'Not found' };
}

const METHOD_TONE: Record<string, 'green' | 'blue' | 'amber' | 'red' | 'gray'> = {
  GET: 'green',
  POST: 'blue',
  PUT: 'amber',
  PATCH: 'amber',
  DELETE: 'red',
};

function Schema({ s, depth = 0 }: { s: SchemaView; depth?: number }): ReactNode {
  return (
    <span>
      <span className="font-mono text-xs text-slate-700">{s.ref ? `${s.ref} (${s.type})` : s.type}</span>
      {s.enum ? <span className="text-xs text-slate-600"> one of {s.enum.join(', ')}</span> : null}
      {s.description ? <span className="text-xs text-slate-600"> — {s.description}</span> : null}
      {s.properties && depth < 3 ? (
        <ul className="ml-4 mt-1 list-disc space-y-0.5">
          {s.properties.map((p) => (
            <li key={p.name} className="text-xs">
              <code className="font-semibold">{p.name}</code>
              {p.schema.required ? <span className="text-red-700"> required</span> : null}: <Schema s={p.schema} depth={depth + 1} />
            </li>
          ))}
        </ul>
      ) : null}
      {s.items && depth < 3 ? (
        <span className="text-xs">
          {' '}
          of <Schema s={s.items} depth={depth + 1} />
        </span>
      ) : null}
    </span>
  );
}

export default async function ApiReference({ params }: { params: Promise<{ tenant: string; api: string }> }) {
  const { tenant: slug, api: apiSlug } = await params;
  const tenant = await portalTenant(slug);
  const api = await getPublicApi(getPortalDeps().db, tenant, apiSlug);
  if (!api) notFound();
  const dev = await getDeveloper(slug);
  const keys = dev ? (await listMyKeys(dev)).filter((k) => k.status === 'ACTIVE') : [];
  // The secret is never kept, so samples carry the key's visible prefix as a placeholder.
  const key = keys[0] ? `${keys[0].prefix}…` : 'YOUR_API_KEY';
  const base = `${portalGatewayUrl(tenant.slug)}${api.basePath === '/' ? '' : api.basePath}`;
  const ref = api.reference;
  return (
    <>
      <PageHeader
        title={ref.title}
        description={ref.description || api.description || undefined}
        actions={<Badge tone="gray">v{ref.version || api.version}</Badge>}
      />
      <p className="mb-6 text-sm text-slate-700">
        Base URL: <code className="rounded bg-white px-1.5 py-0.5 font-mono ring-1 ring-slate-200">{base}</code>. Authenticate with{' '}
        <code className="font-mono">Authorization: Bearer &lt;key&gt;</code>
        {dev
          ? keys.length
            ? `; samples show your key ${keys[0]!.prefix}… — paste the full secret you saved.`
            : '; create a key on the Keys page.'
          : '; sign up to get a key.'}
      </p>
      <div className="grid gap-8 lg:grid-cols-[14rem_1fr]">
        <nav aria-label="Operations" className="lg:sticky lg:top-4 lg:self-start">
          <h2 className="mb-2 text-xs font-semibold uppercase tracking-wide text-slate-600">Operations</h2>
          <ul className="space-y-1 text-sm">
            {ref.operations.map((o) => (
              <li key={o.id}>
                <a href={`#op-${o.id}`} className="text-brand-700 underline">
                  {o.method} {o.path}
                </a>
              </li>
            ))}
            <li>
              <a href="#try-it" className="font-medium text-brand-700 underline">
                Try it
              </a>
            </li>
          </ul>
        </nav>
        <div className="min-w-0 space-y-6">
          {ref.operations.length === 0 ? (
            <p className="text-sm text-slate-700">This API has no OpenAPI document yet; its owner will publish one soon.</p>
          ) : null}
          {ref.operations.map((o) => {
            const url = sampleUrl(o, base);
            const samples = codeSamples(url, o.method, key, o.requestBody?.example ?? null);
            return (
              <section
                key={o.id}
                id={`op-${o.id}`}
                aria-labelledby={`h-${o.id}`}
                className="rounded-lg border border-slate-200 bg-white p-5 shadow-sm"
              >
                <h2 id={`h-${o.id}`} className="flex flex-wrap items-center gap-2 text-base font-semibold">
                  <Badge tone={METHOD_TONE[o.method] ?? 'gray'}>{o.method}</Badge>
                  <code className="font-mono">{o.path}</code>
                  {o.summary ? <span className="font-normal text-slate-700">— {o.summary}</span> : null}
                </h2>
                {o.description ? <p className="mt-2 text-sm text-slate-700">{o.description}</p> : null}
                {o.parameters.length ? (
                  <>
                    <h3 className="mt-4 text-sm font-semibold">Parameters</h3>
                    <ul className="mt-1 space-y-1 text-sm">
                      {o.parameters.map((p) => (
                        <li key={`${p.in}:${p.name}`}>
                          <code className="font-semibold">{p.name}</code> <span className="text-xs text-slate-600">in {p.in}</span>
                          {p.required ? <span className="text-xs text-red-700"> required</span> : null} · <Schema s={p.schema} />
                          {p.description ? <span className="text-xs text-slate-600"> — {p.description}</span> : null}
                        </li>
                      ))}
                    </ul>
                  </>
                ) : null}
                {o.requestBody ? (
                  <>
                    <h3 className="mt-4 text-sm font-semibold">Request body ({o.requestBody.contentType})</h3>
                    <div className="mt-1">
                      <Schema s={o.requestBody.schema} />
                    </div>
                  </>
                ) : null}
                <h3 className="mt-4 text-sm font-semibold">Responses</h3>
                <ul className="mt-1 space-y-2 text-sm">
                  {o.responses.map((r) => (
                    <li key={r.status}>
                      <code className="font-semibold">{r.status}</code> {r.description}
                      {r.schema ? (
                        <div className="ml-4">
                          <Schema s={r.schema} />
                        </div>
                      ) : null}
                      {r.example ? (
                        <pre tabIndex={0} className="mt-1 max-h-48 overflow-auto rounded bg-slate-900 p-2 font-mono text-xs text-slate-100">
                          {r.example}
                        </pre>
                      ) : null}
                    </li>
                  ))}
                </ul>
                <h3 className="mt-4 text-sm font-semibold">Code samples</h3>
                <div className="mt-1 grid gap-2">
                  <CodeSamples samples={samples} testIdPrefix="sample-" />
                </div>
              </section>
            );
          })}
          <section id="try-it" aria-labelledby="try-it-title" className="rounded-lg border border-slate-200 bg-white p-5 shadow-sm">
            <h2 id="try-it-title" className="text-base font-semibold">
              Try it
            </h2>
            <p className="mb-3 mt-1 text-sm text-slate-700">
              Calls go through the live gateway with your key, so they count toward your quota.
            </p>
            <TryIt
              slug={tenant.slug}
              apiSlug={api.slug}
              operations={ref.operations.map((o) => ({
                id: o.id,
                method: o.method,
                path: sampleUrl(o, ''),
                body: o.requestBody?.example ?? null,
              }))}
            />
          </section>
        </div>
      </div>
    </>
  );
}
