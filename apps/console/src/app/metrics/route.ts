import { getMetrics } from '@/server/shared/metrics';

export const dynamic = 'force-dynamic';

export async function GET() {
  const { registry } = getMetrics();
  return new Response(await registry.metrics(), { headers: { 'content-type': registry.contentType, 'cache-control': 'no-store' } });
}
