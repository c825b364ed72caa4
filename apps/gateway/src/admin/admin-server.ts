import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export type AdminHandlers = {
  /** Process is alive and its event loop turns. */
  healthy: () => boolean;
  /** Configuration loaded and not shutting down. */
  ready: () => boolean;
  metrics: () => Promise<{ contentType: string; body: string }>;
  details?: () => Record<string, unknown>;
};

/** `/healthz`, `/readyz`, `/metrics` on their own port, never on the tenant-facing one. */
export function createAdminServer(h: AdminHandlers): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: { code: 'method_not_allowed', message: 'GET only' } });
    if (path === '/healthz') return h.healthy() ? json(200, { status: 'ok' }) : json(503, { status: 'unhealthy' });
    if (path === '/readyz') {
      const ready = h.ready();
      return json(ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', ...h.details?.() });
    }
    if (path === '/metrics') {
      h.metrics().then(
        ({ contentType, body }) => {
          res.writeHead(200, { 'content-type': contentType });
          res.end(body);
        },
        () => json(500, { error: { code: 'internal', message: 'metrics unavailable' } }),
      );
      return;
    }
    return json(404, { error: { code: 'not_found', message: 'no such admin endpoint' } });
  });
}

export async function registryMetrics(registry: Registry) {
  return { contentType: registry.contentType, body: await registry.metrics() };
}
