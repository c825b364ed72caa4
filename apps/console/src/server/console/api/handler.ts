import type { Db } from '@tollgate/db';
import type { Logger } from '@tollgate/config';
import { errorBody, ERROR_STATUS, requestIdFor, type ErrorCode } from '@tollgate/policy';
import { ServiceError, type ServiceContext } from '../../shared/context';
import { clientIpFrom } from '../../shared/request-scope';
import { authenticateAccessToken } from '../tokens';
import type { ConsoleMetrics } from '../../shared/metrics';

export type V1Deps = {
  db: Db;
  log: Pick<Logger, 'error' | 'warn'>;
  consoleUrl?: string;
  metrics?: Pick<ConsoleMetrics, 'apiRequests' | 'apiDuration'>;
};
export type V1Args<P> = {
  req: Request;
  ctx: ServiceContext;
  params: P;
  query: URLSearchParams;
  requestId: string;
  body: () => Promise<unknown>;
};
type RouteContext<P> = { params: Promise<P> };
export type RouteHandler<P> = (req: Request, route: RouteContext<P>) => Promise<Response>;

export const MAX_BODY_BYTES = 1_500_000;

/** A value returned with a status other than 200. */
export class Status {
  constructor(
    public readonly status: number,
    public readonly body: unknown,
  ) {}
}

/**
 * The platform's one request-id scheme (docs/architecture.md, "Request ids"): a caller's
 * X-Request-Id is kept only when it is a well-formed ULID (so it can't carry control characters
 * or unbounded text into logs and audit rows); anything else is replaced by a fresh one.
 */
function newRequestId(req: Request): string {
  return requestIdFor(req.headers.get('x-request-id'), true);
}

export function errorResponse(code: ErrorCode, message: string, requestId: string, extra?: Record<string, unknown>): Response {
  return Response.json(errorBody(code, message, requestId, extra), {
    status: ERROR_STATUS[code],
    headers: { 'x-request-id': requestId, 'cache-control': 'no-store' },
  });
}

async function readJson(req: Request): Promise<unknown> {
  const type = req.headers.get('content-type') ?? '';
  if (!/^application\/([\w.+-]*\+)?json\b/i.test(type))
    throw new ServiceError('bad_request', 'send a JSON body with content-type: application/json');
  const declared = Number(req.headers.get('content-length') ?? '0');
  if (declared > MAX_BODY_BYTES) throw new ServiceError('payload_too_large', `the body is larger than ${MAX_BODY_BYTES} bytes`);
  if (!req.body) throw new ServiceError('bad_request', 'the request needs a JSON body');
  // Count while reading: content-length can be absent or wrong.
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => undefined);
      throw new ServiceError('payload_too_large', `the body is larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(value);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ServiceError('bad_request', 'the body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new ServiceError('bad_request', 'the body must be a JSON object');
  return parsed;
}

/**
 * Wraps one admin-API operation: request id, bearer-token auth (tenant and role come from the
 * token, never from the URL), JSON body limits, and the shared error envelope for every failure.
 */
export function makeHandler(getDeps: () => V1Deps) {
  return function v1<P = Record<string, never>>(fn: (a: V1Args<P>) => Promise<unknown>): RouteHandler<P> {
    return async (req, route) => {
      const started = performance.now();
      const res = await handle(req, route);
      let m: V1Deps['metrics'];
      try {
        m = getDeps().metrics;
      } catch {
        m = undefined;
      }
      m?.apiRequests.inc({ method: req.method, status: String(res.status) });
      m?.apiDuration.observe({ method: req.method }, (performance.now() - started) / 1000);
      return res;
    };
    async function handle(req: Request, route: RouteContext<P>): Promise<Response> {
      const requestId = newRequestId(req);
      let deps: V1Deps | undefined;
      try {
        deps = getDeps();
        const auth = req.headers.get('authorization') ?? '';
        const m = /^Bearer\s+(\S+)$/i.exec(auth);
        const identity = m ? await authenticateAccessToken(deps.db, m[1]) : null;
        if (!identity)
          return errorResponse(
            'unauthorized',
            m ? 'the access token is invalid, expired or revoked' : 'send an access token: Authorization: Bearer tgat_…',
            requestId,
          );
        const ctx: ServiceContext = {
          db: deps.db,
          tenantId: identity.tenantId,
          actor: { type: 'token', id: identity.tokenId, label: identity.name },
          role: identity.role,
          ip: clientIpFrom(req.headers),
        };
        const params = ((await route?.params) ?? {}) as P;
        const out = await fn({ req, ctx, params, query: new URL(req.url).searchParams, requestId, body: () => readJson(req) });
        if (out instanceof Response) return out;
        const status = out instanceof Status ? out.status : 200;
        const body = out instanceof Status ? out.body : out;
        if (status === 204) return new Response(null, { status, headers: { 'x-request-id': requestId } });
        return Response.json(body, { status, headers: { 'x-request-id': requestId, 'cache-control': 'no-store' } });
      } catch (err) {
        if (err instanceof ServiceError)
          return errorResponse(err.code, err.message, requestId, err.fields ? { fields: err.fields } : undefined);
        deps?.log.error({ err, requestId }, 'admin api request failed');
        return errorResponse('internal', 'internal error; quote the request id when reporting it', requestId);
      }
    }
  };
}

/** Query parameters as a plain object, only the names an operation accepts. */
export function pick(q: URLSearchParams, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = q.get(n);
    if (v !== null && v !== '') out[n] = v;
  }
  return out;
}
