import { performance } from 'node:perf_hooks';
import type { FastifyRequest } from 'fastify';
import type { UsageEvent } from '@tollgate/usage';
import type { Gateway, RequestContext } from './context';

/** nginx's status for a client that closed the connection before the response was complete. */
export const CLIENT_CLOSED = 499;

/**
 * The last stage, run once per request when its response is over (Fastify's onResponse hook, or
 * the relay reporting a client gone or a body cut short): metrics, the usage event, the access line.
 */
export function meter(gw: Gateway, request: FastifyRequest, status: number, elapsedFallback: number): void {
  const st = request.tg;
  const tenant = st?.tenant ?? null;
  const api = st?.api ?? null;
  const elapsedMs = st ? performance.now() - st.start : elapsedFallback;
  if (st?.admitted) {
    st.admitted = false;
    gw.fair!.release(tenant!.tenantId);
  }
  gw.metrics.requests.record(tenant ? tenant.tenantId : '-', api ? api.id : '-', status, elapsedMs / 1000);
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
      answeredBy: st.answeredBy,
      ...(rec?.env === 'test' ? { test: true } : {}),
    };
    // Sampled requests only (ADR 0027): the worker links its batch span to this one.
    if (st.trace !== null && st.trace.parent !== null) event.traceparent = st.trace.usageTraceparent();
    gw.usage.add(event);
  }
  if (st?.trace) st.trace.end(st, status);
  if (gw.config.accessLog) {
    // Only ids, never key material: the key itself is not in any of these fields.
    gw.logger.info(
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

/**
 * A client that went away before its response was complete never fires 'finish', but its call
 * was counted against its limits and may have reached the upstream: it is metered as 499.
 */
export function clientGone(ctx: RequestContext): void {
  meter(ctx.gw, ctx.request, CLIENT_CLOSED, 0);
}
