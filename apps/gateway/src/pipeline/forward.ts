import { performance } from 'node:perf_hooks';
import { forwardToUpstream, requestBody } from '../proxy/forward';
import { proxyWebSocket, takeUpgrade } from '../websocket/proxy';
import { NEXT, type RequestContext, type Step } from './context';
import { answer } from './reply';

/**
 * Sends the request to one of the API's targets (the body streamed, counted when chunked) and
 * waits for the response headers; failures are answered here, an answer goes on to `respond`.
 */
export async function forward(ctx: RequestContext): Promise<Step> {
  const { gw } = ctx;
  // A WebSocket handshake the stages admitted: its own upstream exchange (ADR 0026).
  if ((ctx.req as { upgrade?: boolean }).upgrade === true) {
    const up = takeUpgrade(ctx.req);
    if (up !== undefined) return proxyWebSocket(ctx, up);
  }
  const api = ctx.api!;
  const apiPolicy = api.policy;
  const route = ctx.route!;
  const maxBodyBytes = gw.config.maxBodyBytes;
  const { body, limiter } = requestBody(ctx.req, maxBodyBytes);
  ctx.bytesIn = ctx.declared;
  const routeTimeout = route.policy.timeoutMs ?? apiPolicy.timeouts.requestMs;
  const query = ctx.query;
  const upstreamStart = performance.now();
  const outcome = await forwardToUpstream(gw.upstreams, {
    method: ctx.method,
    pathAndQuery: query === '' ? ctx.rest : `${ctx.rest}?${query}`,
    headers: ctx.upstreamHeaders!,
    body,
    // Test keys go to the API's sandbox targets when it has some (ADR 0017).
    balancer: api.sandboxBalancer !== null && ctx.identity?.record.env === 'test' ? api.sandboxBalancer : api.balancer,
    connectTimeoutMs: apiPolicy.timeouts.connectMs,
    headersTimeoutMs: Math.min(apiPolicy.timeouts.headersMs, routeTimeout),
    totalTimeoutMs: routeTimeout,
    retries: apiPolicy.retries,
  });
  ctx.upstreamMs = performance.now() - upstreamStart;
  if (limiter) ctx.bytesIn = limiter.bytes;
  if (!outcome.ok) {
    if (limiter?.exceeded) {
      ctx.rejected = 'invalid';
      return answer(ctx, 'payload_too_large', `request body exceeds ${maxBodyBytes} bytes`);
    }
    gw.metrics.upstreamErrors.inc({ kind: outcome.code });
    return answer(ctx, outcome.code, outcome.message, outcome.status === 503 ? { 'retry-after': '1' } : undefined);
  }
  // Failures were counted by the target pick's health report; a 5xx answer is one too (ADR 0025).
  if (outcome.target.breakerPolicy !== null) gw.upstreams.recordResponse(outcome.target, outcome.exchange.statusCode);
  ctx.exchange = outcome.exchange;
  ctx.answeredBy = 'upstream';
  return NEXT;
}
