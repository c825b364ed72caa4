import { createHash, timingSafeEqual } from 'node:crypto';
import { getMetrics } from '@/server/shared/metrics';
import { getRuntime } from '@/server/shared/runtime';

export const dynamic = 'force-dynamic';

const digest = (s: string) => createHash('sha256').update(s).digest();
const plain = (status: number, text: string, headers: Record<string, string> = {}) =>
  new Response(text, { status, headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers } });

/**
 * Prometheus metrics, for a scraper that sends `Authorization: Bearer $CONSOLE_METRICS_TOKEN`.
 * Without the variable there is nothing to scrape: 404, as if the route didn't exist (ADR 0023).
 */
export async function GET(req: Request) {
  const token = getRuntime().config.metricsToken;
  if (!token) return plain(404, 'not found');
  const m = /^Bearer\s+(\S{1,512})$/i.exec(req.headers.get('authorization') ?? '');
  // Digests of equal length, so the comparison takes the same time whatever was sent.
  if (!m || !timingSafeEqual(digest(m[1]!), digest(token))) {
    return plain(401, 'send the metrics token: Authorization: Bearer …', { 'www-authenticate': 'Bearer realm="metrics"' });
  }
  const { registry } = getMetrics();
  return new Response(await registry.metrics(), { headers: { 'content-type': registry.contentType, 'cache-control': 'no-store' } });
}
