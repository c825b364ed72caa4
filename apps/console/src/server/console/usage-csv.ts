// The analytics CSV export.
import { ServiceError, type ServiceContext } from '../shared/context';
import { queryTopUsage, queryUsage } from '../shared/usage';

/**
 * One CSV cell. Spreadsheets run a cell starting with = + - @ (or a tab/CR that hides one) as a
 * formula, so such text gets a leading apostrophe; quotes, commas and line breaks are quoted.
 */
export function csvCell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  let s = v;
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) || s !== v ? `"${s.replace(/"/g, '""')}"` : s;
}

const csvLine = (cells: Array<string | number | null | undefined>) => cells.map(csvCell).join(',');

/**
 * CSV export: the time series, or with `kind=top` the top APIs, keys and consumers with their
 * names (which users chose, so every cell goes through csvCell).
 */
export async function exportUsageCsv(ctx: ServiceContext, input: unknown): Promise<string> {
  const { kind, ...rest } = (input && typeof input === 'object' ? input : {}) as Record<string, unknown>;
  if (kind !== undefined && kind !== 'series' && kind !== 'top')
    throw new ServiceError('unprocessable', 'kind must be series or top', { kind: 'must be series or top' });
  if (kind === 'top') {
    const top = await queryTopUsage(ctx, rest, 100);
    const lines = [csvLine(['kind', 'id', 'name', 'requests', 'errors'])];
    for (const [k, rows] of [
      ['api', top.apis],
      ['key', top.keys],
      ['consumer', top.consumers],
    ] as const) {
      for (const r of rows) lines.push(csvLine([k, r.id, r.label, r.requests, r.errors]));
    }
    return lines.join('\n') + '\n';
  }
  const u = await queryUsage(ctx, rest);
  const lines = ['bucket_start,requests,2xx,3xx,4xx,5xx,errors,p50_ms,p95_ms,p99_ms'];
  for (const p of u.points) lines.push(csvLine([p.t, p.requests, p.s2xx, p.s3xx, p.s4xx, p.s5xx, p.errors, p.p50, p.p95, p.p99]));
  return lines.join('\n') + '\n';
}
