import type { Redis } from 'ioredis';
import type { Db } from '@tollgate/db';
import type { Logger } from '@tollgate/config';
import { errorBody, ERROR_STATUS, type Keyspace } from '@tollgate/policy';
import { isSessionRevoked, readSessionToken, SESSION_COOKIE } from './session';
import { ServiceError } from '../shared/context';
import { exportUsageCsv } from './usage-csv';

export type UsageExportDeps = { db: Db; redis: Redis; keyspace: Keyspace; sessionSecret: string; log: Pick<Logger, 'error'> };

const FILTERS = ['range', 'from', 'to', 'apiId', 'keyId', 'consumerId', 'status', 'granularity', 'kind'];

function cookieValue(header: string | null, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

const fail = (code: keyof typeof ERROR_STATUS, message: string) =>
  Response.json(errorBody(code, message), { status: ERROR_STATUS[code], headers: { 'cache-control': 'no-store' } });

/**
 * GET /t/{slug}/analytics/export: the session cookie is read from the request itself (not
 * next/headers), so the handler runs the same inside Next and when a test calls it directly.
 */
export function createUsageExportHandler(getDeps: () => UsageExportDeps) {
  return async function GET(req: Request, { params }: { params: Promise<{ tenant: string }> }): Promise<Response> {
    const deps = getDeps();
    const { tenant: slug } = await params;
    const session = await readSessionToken(deps.sessionSecret, cookieValue(req.headers.get('cookie'), SESSION_COOKIE));
    if (!session || (await isSessionRevoked(deps, session))) return fail('unauthorized', 'log in first');
    // Another tenant's slug answers exactly like a slug that doesn't exist.
    if (!/^[a-z0-9-]{1,48}$/.test(slug)) return fail('not_found', 'workspace not found');
    const m = await deps.db.membership.findFirst({ where: { userId: session.userId, tenant: { slug } } });
    if (!m) return fail('not_found', 'workspace not found');
    const sp = new URL(req.url).searchParams;
    const input = Object.fromEntries(FILTERS.flatMap((k) => (sp.get(k) ? [[k, sp.get(k)!]] : [])));
    try {
      const csv = await exportUsageCsv(
        { db: deps.db, tenantId: m.tenantId, actor: { type: 'user', id: session.userId }, role: m.role },
        input,
      );
      const name = `usage-${slug}-${input.kind === 'top' ? 'top-' : ''}${/^\w+$/.test(input.range ?? '') ? input.range : 'custom'}.csv`;
      return new Response(csv, {
        headers: {
          'content-type': 'text/csv; charset=utf-8',
          'content-disposition': `attachment; filename="${name}"`,
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
        },
      });
    } catch (err) {
      if (err instanceof ServiceError)
        return Response.json(errorBody(err.code, err.message, undefined, err.fields ? { fields: err.fields } : undefined), {
          status: ERROR_STATUS[err.code],
        });
      deps.log.error({ err }, 'csv export failed');
      return fail('internal', 'export failed');
    }
  };
}
