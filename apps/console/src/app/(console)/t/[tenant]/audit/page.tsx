import { tenantSession } from '@/server/console/auth';
import { listAuditLogs } from '@/server/shared/audit';
import { EmptyState, formatDate, PageHeader, Pager, Table, Td } from '@/components/ui';

const TARGETS = ['', 'tenant', 'api', 'route', 'plan', 'consumer', 'key', 'token', 'member', 'invitation'];

export default async function AuditPage({
  params,
  searchParams,
}: {
  params: Promise<{ tenant: string }>;
  searchParams: Promise<Record<string, string | undefined>>;
}) {
  const { tenant: slug } = await params;
  const sp = await searchParams;
  const { ctx } = await tenantSession(slug);
  const filter = {
    cursor: sp.cursor,
    action: sp.action || undefined,
    targetType: sp.targetType || undefined,
    targetId: sp.targetId || undefined,
  };
  const page = await listAuditLogs(ctx, filter).catch(() => listAuditLogs(ctx, {}));
  const actorIds = [...new Set(page.data.map((r) => r.actorId).filter((x): x is string => !!x))];
  const [users, tokens] = await Promise.all([
    ctx.db.user.findMany({ where: { id: { in: actorIds } }, select: { id: true, email: true } }),
    ctx.db.accessToken.findMany({ where: { id: { in: actorIds }, tenantId: ctx.tenantId }, select: { id: true, name: true } }),
  ]);
  const who = new Map<string, string>([
    ...users.map((u) => [u.id, u.email] as const),
    ...tokens.map((t) => [t.id, `token “${t.name}”`] as const),
  ]);
  const qs = new URLSearchParams(
    Object.entries({ action: sp.action, targetType: sp.targetType, targetId: sp.targetId }).filter(([, v]) => v) as [string, string][],
  ).toString();
  return (
    <>
      <PageHeader title="Audit log" description="Every change to this workspace: who, what, when and from where." />
      <form className="mb-4 flex flex-wrap items-end gap-2" role="search">
        <div>
          <label htmlFor="action" className="block text-xs font-medium text-slate-600">
            Action starts with
          </label>
          <input
            id="action"
            name="action"
            defaultValue={sp.action}
            placeholder="key."
            className="mt-1 block rounded-md border border-slate-300 px-3 py-2 text-sm"
          />
        </div>
        <div>
          <label htmlFor="targetType" className="block text-xs font-medium text-slate-600">
            Target
          </label>
          <select
            id="targetType"
            name="targetType"
            defaultValue={sp.targetType ?? ''}
            className="mt-1 block rounded-md border border-slate-300 px-3 py-2 text-sm"
          >
            {TARGETS.map((t) => (
              <option key={t} value={t}>
                {t || 'Any'}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="targetId" className="block text-xs font-medium text-slate-600">
            Target id
          </label>
          <input
            id="targetId"
            name="targetId"
            defaultValue={sp.targetId}
            className="mt-1 block rounded-md border border-slate-300 px-3 py-2 text-sm"
          />
        </div>
        <button className="rounded-md border border-slate-300 bg-white px-3 py-2 text-sm">Filter</button>
      </form>
      {page.data.length === 0 ? (
        <EmptyState title="No entries" body="Nothing matches this filter." />
      ) : (
        <Table head={['When', 'Who', 'Action', 'Target', 'Details', 'IP']} caption="Audit log">
          {page.data.map((r) => (
            <tr key={r.id}>
              <Td className="whitespace-nowrap text-xs">{formatDate(r.createdAt)}</Td>
              <Td className="text-xs">{(r.actorId && who.get(r.actorId)) ?? r.actorId ?? r.actorType}</Td>
              <Td className="font-mono text-xs">{r.action}</Td>
              <Td className="font-mono text-xs">
                {r.targetType}
                {r.targetId ? <div className="text-slate-500">{r.targetId}</div> : null}
              </Td>
              <Td className="max-w-xs truncate font-mono text-xs text-slate-500">{r.data ? JSON.stringify(r.data).slice(0, 160) : ''}</Td>
              <Td className="text-xs">{r.ip ?? ''}</Td>
            </tr>
          ))}
        </Table>
      )}
      <Pager nextHref={page.nextCursor ? `?cursor=${page.nextCursor}${qs ? `&${qs}` : ''}` : null} />
    </>
  );
}
