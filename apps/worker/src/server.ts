import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { errorBody, ERROR_STATUS, REQUEST_ID_HEADER, requestIdFor, type ErrorCode } from '@tollgate/policy';
import type { Logger } from '@tollgate/config';
import type { Metrics } from './metrics';
import { describeReadiness, type Readiness } from './readiness';

export type WebhookHandler = (rawBody: Buffer, signature: string | undefined) => Promise<{ status: number; body: unknown }>;

export type HttpOptions = {
  logger: Logger;
  metrics: Metrics;
  /** Each dependency's state; bounded in time by the caller (see readiness.ts). */
  ready: () => Promise<Readiness>;
  /** null when Stripe webhooks are not configured. */
  stripeWebhook: WebhookHandler | null;
  maxBodyBytes?: number;
};

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json') {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(payload), 'cache-control': 'no-store' });
  res.end(payload);
}

function fail(res: ServerResponse, code: ErrorCode, message: string, requestId: string) {
  send(res, ERROR_STATUS[code], errorBody(code, message, requestId));
}

class TooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) return reject(new TooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new TooLarge());
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Health, readiness, Prometheus metrics and Stripe's webhook endpoint (raw body, for the signature). */
export function createHttpServer(opts: HttpOptions): Server {
  const limit = opts.maxBodyBytes ?? 1024 * 1024;
  return createServer(async (req, res) => {
    // The worker's port is internal (probes, metrics, Stripe): a caller's id is kept when it is in
    // the one format (a ULID), and replaced otherwise (packages/policy/src/request-id.ts).
    const requestId = requestIdFor(req.headers[REQUEST_ID_HEADER], true);
    res.setHeader(REQUEST_ID_HEADER, requestId);
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (path === '/healthz') {
        if (req.method !== 'GET' && req.method !== 'HEAD') return fail(res, 'method_not_allowed', 'use GET', requestId);
        return send(res, 200, { status: 'ok' });
      }
      if (path === '/readyz') {
        if (req.method !== 'GET' && req.method !== 'HEAD') return fail(res, 'method_not_allowed', 'use GET', requestId);
        const r: Readiness = await opts.ready().catch(() => ({ ready: false, checks: { readiness: 'down' as const } }));
        if (r.ready) return send(res, 200, { status: 'ready', checks: r.checks });
        return send(res, 503, errorBody('unavailable', `not ready: ${describeReadiness(r)}`, requestId, { checks: r.checks }));
      }
      if (path === '/metrics') {
        if (req.method !== 'GET') return fail(res, 'method_not_allowed', 'use GET', requestId);
        return send(res, 200, await opts.metrics.registry.metrics(), opts.metrics.registry.contentType);
      }
      if (path === '/webhooks/stripe') {
        if (req.method !== 'POST') return fail(res, 'method_not_allowed', 'use POST', requestId);
        if (!opts.stripeWebhook) return fail(res, 'not_found', 'Stripe webhooks are not configured', requestId);
        const raw = await readBody(req, limit);
        const sig = req.headers['stripe-signature'];
        const out = await opts.stripeWebhook(raw, typeof sig === 'string' ? sig : undefined);
        return send(res, out.status, out.body);
      }
      return fail(res, 'not_found', 'no such endpoint', requestId);
    } catch (err) {
      if (err instanceof TooLarge) {
        res.setHeader('connection', 'close');
        return fail(res, 'payload_too_large', `body over ${limit} bytes`, requestId);
      }
      opts.logger.error({ err, requestId, path }, 'http handler failed');
      if (!res.headersSent) fail(res, 'internal', 'internal error', requestId);
      else res.destroy();
    }
  });
}
