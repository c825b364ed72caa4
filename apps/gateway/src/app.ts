import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { fastUlid } from './util/request-id';
import { ERROR_STATUS, errorBody, type ErrorCode } from '@tollgate/policy';
import type { RejectReason, UsageEvent } from '@tollgate/usage';
import type { GatewayMetrics } from './admin/metrics';
import { authorizeRecord, checkKeyFormat, extractApiKey, QUERY_KEY_PARAM, type Identity } from './auth/authenticate';
import type { KeyCache, KeyLookup } from './auth/key-cache';
import { claimHeaderValue, jwtVerifierFor } from './auth/jwt';
import { createTrustedProxyCheck, normalizeIp, type GatewayConfig } from './env';
import { subjectId, type LimitEnforcer, type LimitSubjectInput, type LimitVerdict } from './limits/enforce-limits';
import { forwardToUpstream, requestBody, type UpstreamExchange } from './proxy/forward';
import { buildForwardHeaders, filterResponseHeaders, forwardedFor, headerRecord, setHeaderInList } from './proxy/headers';
import type { Upstreams } from './proxy/upstreams';
import { canonicalizeTarget } from './routing/canonical-path';
import {
  matchRoute,
  normalizeHost,
  type CompiledApi,
  type CompiledRoute,
  type RouteTable,
  type TenantRuntime,
} from './routing/route-table';
import type { UsageSink } from './usage/usage-sink';
import { captureResponse, coalesce, lookupCache, sendCached, type CacheState } from './cache/cache-flow';
import type { ResponseCache } from './cache/response-cache';

export type AppDeps = {
  store: { readonly table: RouteTable; readonly loaded: boolean };
  keys: KeyCache;
  upstreams: Upstreams;
  limits: LimitEnforcer;
  usage: UsageSink;
  metrics: GatewayMetrics;
  logger: Logger;
  /** Response cache for routes with `cacheTtlSeconds > 0`; absent = no caching. */
  cache?: ResponseCache | null;
};

export type AppOptions = { https?: { cert: string | Buffer; key: string | Buffer } };

/** What one request learned on its way through, read by the onResponse hook. */
type RequestState = {
  start: number;
  tenant: TenantRuntime | null;
  api: CompiledApi | null;
  route: CompiledRoute | null;
  identity: Identity | null;
  consumerId: string | null;
  rejected: RejectReason | null;
  upstreamMs: number | null;
  bytesIn: number;
  bytesOut: number;
  /** The upstream exchange of a body still streaming to the client: its byte count is read at the end. */
  upstream: UpstreamExchange | null;
  cacheHit: boolean;
};

declare module 'fastify' {
  interface FastifyRequest {
    tg: RequestState | null;
  }
}

const JSON_TYPE = 'application/json; charset=utf-8';
/** nginx's status for a client that closed the connection before the response was complete. */
const CLIENT_CLOSED = 499;
/** What a response cut short mid-body is metered as (the client already has the upstream's status line). */
const INCOMPLETE_STATUS = { client: CLIENT_CLOSED, upstream: ERROR_STATUS.bad_gateway, timeout: ERROR_STATUS.gateway_timeout } as const;

function sendError(reply: FastifyReply, code: ErrorCode, message: string, extraHeaders?: Record<string, string>): FastifyReply {
  // The request id goes in the header too, as on every response the gateway relays.
  reply.code(ERROR_STATUS[code]).header('content-type', JSON_TYPE).header('x-request-id', reply.request.id);
  if (extraHeaders) reply.headers(extraHeaders);
  return reply.send(JSON.stringify(errorBody(code, message, reply.request.id)));
}

/** Raw-socket error for requests Node refuses before Fastify sees them (no request id exists yet). */
function writeSocketError(socket: Socket, status: number, reason: string, code: ErrorCode, message: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(code, message));
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${JSON_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

const WWW_AUTHENTICATE_MISSING = 'Bearer realm="tollgate"';
const WWW_AUTHENTICATE_INVALID = 'Bearer realm="tollgate", error="invalid_token"';

export function buildApp(config: GatewayConfig, deps: AppDeps, options: AppOptions = {}): FastifyInstance {
  const { store, keys, upstreams, limits, usage, metrics, logger } = deps;
  const cache = deps.cache ?? null;
  const isTrusted = createTrustedProxyCheck(config.trustedProxies);
  const proto = options.https ? 'https' : 'http';
  const keyHashes = new Map<string, string>();

  const app = Fastify({
    loggerInstance: logger as unknown as FastifyBaseLogger,
    // One access line per request from onResponse instead of Fastify's two, and no per-request
    // child logger (pino.child costs more than the rest of routing).
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (parent) => parent,
    requestIdHeader: false,
    genReqId: () => fastUlid(),
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
    ...(options.https
      ? { https: { ...options.https, maxHeaderSize: config.maxHeaderBytes } }
      : { http: { maxHeaderSize: config.maxHeaderBytes } }),
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

  /** Metrics, the usage event and the access line: once per request, when its response is over. */
  function complete(request: FastifyRequest, status: number, elapsedFallback: number): void {
    const st = request.tg;
    const tenant = st?.tenant ?? null;
    const api = st?.api ?? null;
    const elapsedMs = st ? performance.now() - st.start : elapsedFallback;
    metrics.requests.record(tenant ? tenant.tenantId : '-', api ? api.id : '-', status, elapsedMs / 1000);
    if (st && tenant && api) {
      const rec = st.identity?.record ?? null;
      const event: UsageEvent = {
        id: request.id,
        ts: Date.now(),
        tenantId: tenant.tenantId,
        apiId: api.id,
        routeId: st.route?.id ?? null,
        keyId: rec?.keyId ?? null,
        consumerId: rec?.consumerId ?? st.consumerId,
        subscriptionId: rec?.subscriptionId ?? null,
        planId: rec?.planId ?? null,
        method: request.raw.method!.slice(0, 16),
        status,
        latencyMs: elapsedMs,
        upstreamLatencyMs: st.upstreamMs,
        bytesIn: st.bytesIn,
        bytesOut: st.upstream === null ? st.bytesOut : st.upstream.bodyBytes,
        cacheHit: st.cacheHit,
        rejected: st.rejected,
      };
      usage.add(event);
    }
    if (config.accessLog) {
      // Only ids, never key material: the key itself is not in any of these fields.
      logger.info(
        {
          requestId: request.id,
          method: request.raw.method,
          host: request.raw.headers.host,
          path: request.raw.url?.split('?', 1)[0]?.slice(0, 512),
          status,
          ms: Math.round(elapsedMs * 100) / 100,
          upstreamMs: st?.upstreamMs ?? null,
          tenantId: tenant?.tenantId,
          apiId: api?.id,
          keyId: st?.identity?.record.keyId,
          rejected: st?.rejected ?? undefined,
        },
        'request',
      );
    }
  }

  app.addHook('onResponse', (request, reply, done) => {
    complete(request, reply.statusCode, reply.elapsedTime);
    done();
  });

  /**
   * A client that went away before its response was complete never fires 'finish', but its call
   * was counted against its limits and may have reached the upstream: it is metered as 499.
   */
  function clientGone(request: FastifyRequest): void {
    complete(request, CLIENT_CLOSED, 0);
  }

  /**
   * An answer the gateway writes itself. A client already gone gets none: Fastify's onResponse
   * would never fire on its closed socket, so the call is metered as 499 here instead.
   */
  function answer(reply: FastifyReply, code: ErrorCode, message: string, extraHeaders?: Record<string, string>): FastifyReply | undefined {
    if (reply.raw.destroyed) return leftEarly(reply);
    return sendError(reply, code, message, extraHeaders);
  }

  /** The client closed its connection before anything was written: nothing to send, meter 499. */
  function leftEarly(reply: FastifyReply): undefined {
    reply.hijack();
    clientGone(reply.request);
    return undefined;
  }

  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const req = request.raw;
    const st: RequestState = {
      start: performance.now(),
      tenant: null,
      api: null,
      route: null,
      identity: null,
      consumerId: null,
      rejected: null,
      upstreamMs: null,
      bytesIn: 0,
      bytesOut: 0,
      upstream: null,
      cacheHit: false,
    };
    request.tg = st;
    const headers = req.headers;

    // Request smuggling: a message framed two ways is refused, never "fixed".
    if (headers['transfer-encoding'] !== undefined && headers['content-length'] !== undefined) {
      return answer(reply, 'bad_request', 'Content-Length together with Transfer-Encoding is not allowed');
    }
    const declared = headers['content-length'] === undefined ? 0 : Number(headers['content-length']);
    if (declared > config.maxBodyBytes) return answer(reply, 'payload_too_large', `request body exceeds ${config.maxBodyBytes} bytes`);

    // Two Host headers: which one routed the request would be a guess (RFC 9112 §3.2 says 400).
    if (hasDuplicateHost(req.rawHeaders)) return answer(reply, 'bad_request', 'more than one Host header');

    const target = canonicalizeTarget(req.url ?? '');
    if (!target.ok) return answer(reply, 'invalid_path', `invalid request path: ${target.reason}`);

    if (!store.loaded) return answer(reply, 'unavailable', 'the gateway is starting; configuration not loaded yet');
    const host = normalizeHost(headers.host);
    const tenant = host === null ? undefined : store.table.byHost.get(host);
    if (!tenant) return answer(reply, 'not_found', 'unknown host');
    st.tenant = tenant;

    const method = req.method!;
    const match = matchRoute(tenant, method, target.path);
    if (match.kind === 'no_api') return answer(reply, 'not_found', 'no API at this path');
    st.api = match.api;
    if (match.kind === 'no_route') {
      st.rejected = 'invalid';
      return answer(reply, 'not_found', 'no route matches this path');
    }
    if (match.kind === 'method_not_allowed') {
      st.rejected = 'invalid';
      return answer(reply, 'method_not_allowed', `method ${method} is not allowed here`, { allow: match.allow.join(', ') });
    }
    const { api, route, rest } = match;
    st.route = route;
    const apiPolicy = api.policy;

    // --- authentication
    let credentialHeader: string | null = null;
    let query = target.query;
    let subject: LimitSubjectInput | null = null;
    const claimHeaders: string[] = [];
    if (apiPolicy.authMode === 'api_key') {
      const found = extractApiKey(headers, query, apiPolicy.allowQueryKey);
      if (!found || found.key === '') {
        st.rejected = 'auth';
        return answer(reply, 'unauthorized', 'an API key is required (Authorization: Bearer or X-API-Key)', {
          'www-authenticate': WWW_AUTHENTICATE_MISSING,
        });
      }
      // A key seen before skips the checksum and SHA-256: only well-formed keys are memoised.
      let hash = keyHashes.get(found.key);
      if (hash === undefined) {
        const fmt = checkKeyFormat(found.key);
        if (!fmt.ok) {
          st.rejected = 'auth';
          return answer(reply, 'invalid_key', 'the API key is not valid', { 'www-authenticate': WWW_AUTHENTICATE_INVALID });
        }
        hash = fmt.hash;
        if (keyHashes.size >= config.keyCache.size) keyHashes.clear();
        keyHashes.set(found.key, hash);
      }
      let lookup: KeyLookup | Promise<KeyLookup> = keys.lookup(hash);
      if (lookup instanceof Promise) {
        metrics.keyCache.inc({ result: 'miss' });
        lookup = await lookup;
      }
      const auth = authorizeRecord(lookup, hash, tenant, api, Date.now());
      if (!auth.ok) {
        const f = auth.failure;
        st.rejected = f.status === 403 ? 'forbidden' : f.status === 503 ? 'unavailable' : 'auth';
        return answer(reply, f.code, f.message, f.status === 401 ? { 'www-authenticate': WWW_AUTHENTICATE_INVALID } : undefined);
      }
      st.identity = auth.identity;
      subject = { kind: 'key', record: auth.identity.record, plan: auth.identity.plan };
      if (found.source === 'query') query = withoutParam(query, QUERY_KEY_PARAM);
      else credentialHeader = found.source;
    } else if (apiPolicy.authMode === 'jwt') {
      const auth = headers.authorization;
      const token = auth && /^bearer /i.test(auth) ? auth.slice(7).trim() : '';
      const claims = token && apiPolicy.jwt ? await jwtVerifierFor(apiPolicy.jwt)(token) : null;
      if (!claims) {
        st.rejected = 'auth';
        return answer(reply, 'unauthorized', token ? 'the token is not valid' : 'a bearer token is required', {
          'www-authenticate': token ? WWW_AUTHENTICATE_INVALID : WWW_AUTHENTICATE_MISSING,
        });
      }
      const sub = typeof claims.sub === 'string' ? claims.sub : '';
      st.consumerId = sub || null;
      subject = { kind: 'anonymous', id: subjectId(`jwt:${sub}`) };
      for (const name of apiPolicy.jwt!.forwardClaims) {
        const v = claimHeaderValue(claims[name]);
        if (v !== null && /^[A-Za-z0-9_-]{1,64}$/.test(name)) claimHeaders.push(`x-tollgate-claim-${name.toLowerCase()}`, v);
      }
      credentialHeader = null;
    }
    const peer = req.socket.remoteAddress;
    const peerTrusted = isTrusted(peer);
    if (!subject) subject = { kind: 'anonymous', id: subjectId(`ip:${clientAddress(peer, headers['x-forwarded-for'], isTrusted)}`) };

    // --- limits: one Redis round trip at most
    let limitHeaders: Record<string, string> | null = null;
    let verdict: LimitVerdict | Promise<LimitVerdict> = limits.enforce(api, route, subject, request.id, Date.now());
    if (verdict instanceof Promise) verdict = await verdict;
    if (verdict.kind === 'allow') limitHeaders = verdict.headers;
    else if (verdict.kind === 'reject') {
      st.rejected = verdict.reason;
      if (reply.raw.destroyed) return leftEarly(reply);
      reply.code(429).header('content-type', JSON_TYPE).header('x-request-id', request.id).headers(verdict.headers);
      return reply.send(JSON.stringify(verdict.body));
    } else if (verdict.kind === 'unavailable') {
      st.rejected = 'unavailable';
      return answer(reply, 'unavailable', 'rate limiting is unavailable and this API fails closed', { 'retry-after': '1' });
    }

    // A client that left while its call waited on Redis: nothing to forward it for.
    if (reply.raw.destroyed) return leftEarly(reply);

    // --- forward
    const transform = route.policy.transform;
    const fwdHeaders = buildForwardHeaders(req, {
      credentialHeader,
      remove: transform?.requestHeaders?.remove?.map((h) => h.toLowerCase()) ?? null,
    });
    const reqSet = transform?.requestHeaders?.set;
    if (reqSet)
      for (const name in reqSet) if (!name.toLowerCase().startsWith('x-tollgate-')) fwdHeaders.push(name.toLowerCase(), reqSet[name]!);
    const rec = st.identity?.record;
    fwdHeaders.push(
      'x-forwarded-for',
      forwardedFor(headers['x-forwarded-for'], normalizeIp(peer ?? ''), peerTrusted),
      'x-forwarded-proto',
      peerTrusted && typeof headers['x-forwarded-proto'] === 'string' ? headers['x-forwarded-proto'] : proto,
      'x-forwarded-host',
      peerTrusted && typeof headers['x-forwarded-host'] === 'string' ? headers['x-forwarded-host'] : (headers.host ?? ''),
      'x-tollgate-tenant',
      tenant.tenantId,
      'x-tollgate-request-id',
      request.id,
    );
    if (rec) {
      fwdHeaders.push('x-tollgate-consumer', rec.consumerId, 'x-tollgate-key-id', rec.keyId);
      if (rec.planId) fwdHeaders.push('x-tollgate-plan', st.identity!.plan?.slug ?? rec.planId);
    } else if (st.consumerId) {
      const v = claimHeaderValue(st.consumerId);
      if (v) fwdHeaders.push('x-tollgate-consumer', v);
    }
    for (let i = 0; i < claimHeaders.length; i++) fwdHeaders.push(claimHeaders[i]!);

    // --- response cache: after limits (a hit is a counted call), keyed on what the upstream would see
    let cached: CacheState | null = null;
    if (cache !== null && route.policy.cacheTtlSeconds > 0) {
      cached = lookupCache({ cache, method, tenant, api, route, rest, query, requestHeaders: headers, forwardHeaders: fwdHeaders });
      if (cached.kind === 'miss') {
        const c = await coalesce(cached, Math.min(apiPolicy.timeouts.headersMs, route.policy.timeoutMs ?? apiPolicy.timeouts.requestMs));
        cached = c.state;
        if (c.end) reply.raw.once('close', c.end);
      }
      if (cached.kind === 'hit') {
        st.cacheHit = true;
        // The wait for a coalesced fill may have outlasted the client.
        if (reply.raw.destroyed) return leftEarly(reply);
        st.bytesOut = method === 'HEAD' ? 0 : cached.entry.body.length;
        return sendCached(reply, cache, cached.entry, method, headers, limitHeaders, request.id);
      }
    }

    const { body, limiter } = requestBody(req, config.maxBodyBytes);
    st.bytesIn = declared;
    const routeTimeout = route.policy.timeoutMs ?? apiPolicy.timeouts.requestMs;
    const upstreamStart = performance.now();
    const outcome = await forwardToUpstream(upstreams, {
      method,
      pathAndQuery: query === '' ? rest : `${rest}?${query}`,
      headers: fwdHeaders,
      body,
      balancer: api.balancer,
      connectTimeoutMs: apiPolicy.timeouts.connectMs,
      headersTimeoutMs: Math.min(apiPolicy.timeouts.headersMs, routeTimeout),
      totalTimeoutMs: routeTimeout,
      retries: apiPolicy.retries,
    });
    st.upstreamMs = performance.now() - upstreamStart;
    if (limiter) st.bytesIn = limiter.bytes;
    if (!outcome.ok) {
      if (limiter?.exceeded) {
        st.rejected = 'invalid';
        return answer(reply, 'payload_too_large', `request body exceeds ${config.maxBodyBytes} bytes`);
      }
      metrics.upstreamErrors.inc({ kind: outcome.code });
      return answer(reply, outcome.code, outcome.message, outcome.status === 503 ? { 'retry-after': '1' } : undefined);
    }
    const exchange = outcome.exchange;
    const status = exchange.statusCode;
    const resHeaders = filterResponseHeaders(
      exchange.rawHeaders,
      transform?.responseHeaders?.remove?.map((h) => h.toLowerCase()) ?? null,
      limitHeaders !== null,
    );
    const resSet = transform?.responseHeaders?.set;
    if (resSet) for (const name in resSet) setHeaderInList(resHeaders, name.toLowerCase(), resSet[name]!);
    const tap =
      cached === null
        ? null
        : captureResponse(cached, status, headerRecord(filterResponseHeaders(exchange.rawHeaders, null, false)), resHeaders);
    if (limitHeaders) for (const name in limitHeaders) resHeaders.push(name, limitHeaders[name]!);
    resHeaders.push('x-request-id', request.id);
    const bodyless = method === 'HEAD' || status === 204 || status === 304;
    // Straight into the client's response: Fastify's send pipeline (and a body stream) would
    // cost more than the rest of the request. The onResponse hook still runs on 'finish'.
    const relayed = exchange.respond(reply.raw, resHeaders, bodyless, tap);
    if (relayed === 'failed') {
      exchange.abandon();
      metrics.upstreamErrors.inc({ kind: 'bad_gateway' });
      return answer(reply, 'bad_gateway', 'the upstream response could not be relayed');
    }
    reply.hijack();
    if (relayed === 'gone') {
      clientGone(request);
    } else if (relayed === 'streaming') {
      // Only a body still on its way keeps the exchange: its byte count is read at the end, and
      // it reports a body cut short. (Holding every exchange in the request's state
      // kept undici's buffers alive past a scavenge and cost ~10 µs per request in GC.)
      st.upstream = exchange;
      exchange.onIncomplete = (cause) => complete(request, INCOMPLETE_STATUS[cause], 0);
    } else {
      st.bytesOut = exchange.bodyBytes;
    }
    return undefined;
  }

  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE'],
    url: '/*',
    handler: handle,
    exposeHeadRoute: false,
  });
  return app;
}

function hasDuplicateHost(raw: string[]): boolean {
  let seen = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

/** The client's address: the socket peer, or — behind trusted proxies — the nearest untrusted hop. */
export function clientAddress(
  peer: string | undefined,
  xff: string | string[] | undefined,
  isTrusted: (ip: string | undefined) => boolean,
): string {
  const ip = normalizeIp(peer ?? '');
  if (!xff || !isTrusted(peer)) return ip;
  const hops = (Array.isArray(xff) ? xff.join(',') : xff).split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!.trim();
    if (hop && !isTrusted(hop)) return normalizeIp(hop);
  }
  return ip;
}

/** Drops every `name=` pair, leaving the rest of the query byte-for-byte as sent. */
function withoutParam(query: string, name: string): string {
  return query
    .split('&')
    .filter((pair) => {
      const eq = pair.indexOf('=');
      const key = eq === -1 ? pair : pair.slice(0, eq);
      try {
        return decodeURIComponent(key.replace(/\+/g, ' ')) !== name;
      } catch {
        return true;
      }
    })
    .join('&');
}
