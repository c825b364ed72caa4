import Link from 'next/link';
import { tenantSession } from '@/server/console/auth';
import { listApis } from '@/server/console/apis';
import { can } from '@/server/shared/context';
import { Badge, EmptyState, LinkButton, PageHeader, Pager, Table, Td } from '@/components/ui';

export default async function ApisPage({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string }>;
  searchParams: Promise<Record<string, string | undefined>>;
}) {
  const { tenant: slug } = await params;
  const sp = await searchParams;
  const { ctx, role } = await tenantSession(slug);
  const page = await listApis(ctx, { cursor: sp.cursor, q: sp.q || undefined }).catch(() => listApis(ctx, {}));
  const base = `/t/${slug}/apis`;
  const canEdit = can(role, 'manageApis');
  return (
    <>
      <PageHeader
        title="APIs"
        description="The services your gateway fronts. Each API has upstream targets, routes and an optional OpenAPI document."
        actions={canEdit ? <LinkButton href={`${base}/new`}>Register API</LinkButton> : null}
      />
      <form className="mb-4 flex max-w-sm gap-2" role="search">
        <label htmlFor="q" className="sr-only">
          Search APIs
        </label>
        <input
          id="q"
          name="q"
          defaultValue={sp.q}
          placeholder="Search by name or slug"
          className="block w-full rounded-md border border-slate-300 px-3 py-2 text-sm"
        />
      </form>
      {page.data.length === 0 ? (
        <EmptyState
          title={sp.q ? 'No APIs match' : 'No APIs yet'}
          body={
            sp.q
              ? 'Try another search.'
              : 'Register your first API: give it a base path and the URL of your service, and the gateway starts forwarding calls.'
          }
          action={canEdit && !sp.q ? <LinkButton href={`${base}/new`}>Register your first API</LinkButton> : null}
        />
      ) : (
        <Table head={['Name', 'Base path', 'Upstream', 'Routes', 'Auth', 'Portal']} caption="APIs">
          {page.data.map((a) => (
            <tr key={a.id}>
              <Td>
                <Link href={`${base}/${a.id}`} className="font-medium text-brand-700 hover:underline">
                  {a.name}
                </Link>
                <div className="text-xs text-slate-500">{a.version}</div>
              </Td>
              <Td className="font-mono text-xs">{a.basePath}</Td>
              <Td className="font-mono text-xs">
                {a.targets[0]?.url ?? '—'}
                {a.targets.length > 1 ? ` +${a.targets.length - 1}` : ''}
              </Td>
              <Td>{a._count.routes === 0 ? <Badge tone="amber">none: 404</Badge> : a._count.routes}</Td>
              <Td>
                {a.authMode === 'NONE' ? (
                  <Badge tone="amber">none</Badge>
                ) : (
                  <Badge>{a.authMode === 'API_KEY' ? 'API key' : a.authMode === 'INTROSPECTION' ? 'OAuth' : 'JWT'}</Badge>
                )}
              </Td>
              <Td>
                {a.visibility === 'PUBLIC' ? (
                  <>
                    <Badge tone="green">public</Badge>{' '}
                    <a href={`/portal/${slug}/apis/${a.slug}`} className="text-xs text-brand-700 underline">
                      View in portal
                    </a>
                  </>
                ) : (
                  <span title="Hidden from the portal: only keys you issue here can call it">
                    <Badge>private</Badge>
                  </span>
                )}
              </Td>
            </tr>
          ))}
        </Table>
      )}
      <Pager nextHref={page.nextCursor ? `${base}?cursor=${page.nextCursor}${sp.q ? `&q=${encodeURIComponent(sp.q)}` : ''}` : null} />
    </>
  );
}
