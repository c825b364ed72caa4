import { getSessionUser } from '@/server/auth';
import { getRuntime } from '@/server/runtime';
import { ServiceError } from '@/server/services/context';
import { exportUsageCsv } from '@/server/services/usage';
import { errorBody, ERROR_STATUS } from '@tollgate/policy';

export const dynamic = 'force-dynamic';

export async function GET(req: Request, { params }: { params: Promise<{ tenant: string }> }) {
  const { tenant: slug } = await params;
  const user = await getSessionUser();
  if (!user) return Response.json(errorBody('unauthorized', 'log in first'), { status: 401 });
  const { db } = getRuntime();
  const m = await db.membership.findFirst({ where: { userId: user.id, tenant: { slug } } });
  if (!m) return Response.json(errorBody('not_found', 'workspace not found'), { status: 404 });
  const sp = Object.fromEntries(new URL(req.url).searchParams);
  const input = Object.fromEntries(Object.entries(sp).filter(([k, v]) => v && ['range', 'from', 'to', 'apiId', 'keyId', 'consumerId', 'status', 'granularity'].includes(k)));
  try {
    const csv = await exportUsageCsv({ db, tenantId: m.tenantId, actor: { type: 'user', id: user.id }, role: m.role }, input);
    return new Response(csv, {
      headers: { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="usage-${slug}-${input.range ?? 'custom'}.csv"`, 'cache-control': 'no-store' },
    });
  } catch (err) {
    if (err instanceof ServiceError) return Response.json(errorBody(err.code, err.message), { status: ERROR_STATUS[err.code] });
    getRuntime().log.error({ err }, 'csv export failed');
    return Response.json(errorBody('internal', 'export failed'), { status: 500 });
  }
}
