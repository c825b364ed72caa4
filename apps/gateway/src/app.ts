import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { errorBody, fastUlid, REQUEST_ID_HEADER, requestIdFor, type ErrorCode } from '@tollgate/policy';
import { createTrustedProxyCheck, type GatewayConfig } from './env';
import type { ResponseCache } from './cache/response-cache';
import type { ColdPath } from './limits/cold-path';
import type { FairShare } from './limits/fair-share';
import { RequestContext, type Done, type Gateway } from './pipeline/context';
import { meter } from './pipeline/meter';
import { JSON_TYPE, sendError } from './pipeline/reply';
import { FailureBudget } from './auth/failure-budget';
import { runPipeline } from './pipeline/run';
import { attachUpgrades } from './transport/upgrade';
import type { WsConnections } from './websocket/connections';
import type { GatewayTracer } from './pipeline/trace';

export { clientAddress } from './pipeline/limit';

/** What `buildApp` is given: the Gateway's parts (pipeline/context.ts), the optional ones optional. */
export type AppDeps = Pick<Gateway, 'store' | 'keys' | 'upstreams' | 'limits' | 'usage' | 'metrics' | 'logger'> & {
  /** Response cache for routes with `cacheTtlSeconds > 0`; absent = no caching. */
  cache?: ResponseCache | null;
  /** A cold key's lookup and limit decision in one round trip (ADR 0020); absent = lookup, then decide. */
  cold?: ColdPath | null;
  /** Fair admission between tenants when saturated (ADR 0020); absent = none. */
  fair?: FairShare | null;
  /** Failed-authentication budget shared by this process's listeners; absent = one of its own. */
  authFailures?: FailureBudget;
  /** Open WebSocket connections, shared by this process's listeners; absent = WebSockets off. */
  websockets?: WsConnections | null;
  /** Shared by this process's listeners; the server sets `draining` on SIGTERM. Absent = never draining. */
  lifecycle?: { draining: boolean };
  /** OpenTelemetry (ADR 0027); absent = tracing off. */
  tracing?: GatewayTracer | null;
};

export type AppOptions = { https?: { cert: string | Buffer; key: string | Buffer; ALPNProtocols?: string[] } };

/** Raw-socket error for requests Node refuses before Fastify sees them: a request id of its own, like every error. */
function writeSocketError(socket: Socket, status: number, reason: string, code: ErrorCode, message: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const requestId = fastUlid();
  const body = JSON.stringify(errorBody(code, message, requestId));
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${JSON_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export function buildApp(config: GatewayConfig, deps: AppDeps, options: AppOptions = {}): FastifyInstance {
  const { logger } = deps;
  const gw: Gateway = {
    config,
    store: deps.store,
    keys: deps.keys,
    upstreams: deps.upstreams,
    limits: deps.limits,
    usage: deps.usage,
    metrics: deps.metrics,
    logger,
    cache: deps.cache ?? null,
    cold: deps.cold ?? null,
    fair: deps.fair ?? null,
    isTrusted: createTrustedProxyCheck(config.trustedProxies),
    proto: options.https ? 'https' : 'http',
    keyHashes: new Map<string, string>(),
    authFailures: deps.authFailures ?? new FailureBudget(),
    websockets: deps.websockets ?? null,
    lifecycle: deps.lifecycle ?? { draining: false },
    tracing: deps.tracing ?? null,
  };

  const app = Fastify({
    loggerInstance: logger as unknown as FastifyBaseLogger,
    // One access line per request from onResponse instead of Fastify's two, and no per-request
    // child logger (pino.child costs more than the rest of routing).
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (parent) => parent,
    requestIdHeader: false,
    // One scheme end to end (packages/policy/src/request-id.ts): a trusted proxy's ULID is kept,
    // anything else gets a new one. It is the usage event's id too, hence the strict format.
    genReqId: (req) => requestIdFor(req.headers[REQUEST_ID_HEADER], gw.isTrusted(req.socket.remoteAddress)),
    bodyLimit: config.maxBodyBytes,
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    connectionTimeout: 0,
    // A request that arrives on a kept-alive connection while the server drains is served: a 503
    // here reached clients through load balancers (nginx retries refused connections, not answers).
    // The drain closes each connection as soon as it falls idle (server.ts), and the listener is
    // closed, so the balancer moves new requests to other replicas.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    ...(options.https ? { https: { ...options.https, ...connectionOptions(config) } } : { http: connectionOptions(config) }),
    routerOptions: { ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, maxParamLength: 8192 },
    clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket) {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      if (err.code === 'HPE_HEADER_OVERFLOW')
        return writeSocketError(socket, 431, 'Request Header Fields Too Large', 'headers_too_large', 'request headers are too large');
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT')
        return writeSocketError(socket, 408, 'Request Timeout', 'bad_request', 'the request took too long to arrive');
      return writeSocketError(socket, 400, 'Bad Request', 'bad_request', 'malformed HTTP request');
    },
    frameworkErrors(err, request, reply) {
      request.tg = null;
      void sendError(reply, 'invalid_path', err.code === 'FST_ERR_BAD_URL' ? 'malformed request path' : 'invalid request');
    },
  });
  app.server.headersTimeout = Math.min(config.headersTimeoutMs, config.requestTimeoutMs);

  app.decorateRequest('tg', null);
  // Bodies are streamed to the upstream untouched: no parsing, no buffering.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));

  app.setErrorHandler((err, request, reply) => {
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status === 413) return sendError(reply, 'payload_too_large', 'request body is too large');
    if (status >= 400 && status < 500) return sendError(reply, 'bad_request', 'invalid request');
    logger.error({ err, requestId: request.id }, 'unhandled error');
    return sendError(reply, 'internal', 'internal error');
  });

  app.setNotFoundHandler((request, reply) => sendError(reply, 'not_found', 'no such route'));

  // The last stage: metrics, the usage event and the access line, once the response is over.
  app.addHook('onResponse', (request, reply, done) => {
    meter(gw, request, reply.statusCode, reply.elapsedTime);
    done();
  });

  /** The request path: the stages in `pipeline/`, over one context per request (ADR 0016). */
  function handle(request: FastifyRequest, reply: FastifyReply): Promise<Done> {
    const ctx = new RequestContext(gw, request, reply);
    request.tg = ctx;
    return runPipeline(ctx);
  }

  if (gw.websockets !== null) attachUpgrades(app);

  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE'],
    url: '/*',
    handler: handle,
    exposeHeadRoute: false,
  });
  return app;
}

/**
 * Node enforces headersTimeout/requestTimeout from a sweep that runs every
 * `connectionsCheckingInterval` (30 s by default), so a slowloris client sending a byte every few
 * seconds kept a 10 s headers timeout open for up to 40 s. A sweep every 500 ms cuts it within
 * half a second of its value.
 */
export const CONNECTIONS_CHECK_INTERVAL_MS = 500;

function connectionOptions(config: GatewayConfig) {
  return { maxHeaderSize: config.maxHeaderBytes, connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS };
}
