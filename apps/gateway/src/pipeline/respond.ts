import { ERROR_STATUS } from '@tollgate/policy';
import { captureResponse } from '../cache/cache-flow';
import { filterResponseHeaders, headerRecord, setHeaderInList } from '../proxy/headers';
import type { RequestContext, Step } from './context';
import { appendLifecycleHeaders } from './lifecycle';
import { CLIENT_CLOSED, clientGone, meter } from './meter';
import { answer, closeIfDraining } from './reply';
import { applyCors } from './cors';

/** What a response cut short mid-body is metered as (the client already has the upstream's status line). */
const INCOMPLETE_STATUS = { client: CLIENT_CLOSED, upstream: ERROR_STATUS.bad_gateway, timeout: ERROR_STATUS.gateway_timeout } as const;

/**
 * Relays the upstream's answer: its headers filtered and transformed, the gateway's own added
 * (rate-limit headers, request id, `X-Cache`), the body streamed straight into the client's
 * response (a copy to the cache when it may be stored).
 */
export function respond(ctx: RequestContext): Step {
  const exchange = ctx.exchange!;
  // Only a body still streaming keeps its exchange referenced from the context (below).
  ctx.exchange = null;
  const { reply, method, limitHeaders } = ctx;
  const transform = ctx.route!.policy.transform;
  const status = exchange.statusCode;
  const resHeaders = filterResponseHeaders(
    exchange.rawHeaders,
    transform?.responseHeaders?.remove?.map((h) => h.toLowerCase()) ?? null,
    limitHeaders !== null,
  );
  const resSet = transform?.responseHeaders?.set;
  if (resSet) for (const name in resSet) setHeaderInList(resHeaders, name.toLowerCase(), resSet[name]!);
  const cached = ctx.cached;
  const tap =
    cached === null
      ? null
      : captureResponse(cached, status, headerRecord(filterResponseHeaders(exchange.rawHeaders, null, false)), resHeaders);
  if (limitHeaders) for (const name in limitHeaders) resHeaders.push(name, limitHeaders[name]!);
  resHeaders.push('x-request-id', ctx.request.id);
  if (ctx.corsHeaders !== null) applyCors(resHeaders, ctx.corsHeaders);
  const lifecycle = ctx.api!.policy.lifecycle;
  if (lifecycle) appendLifecycleHeaders(resHeaders, lifecycle);
  const bodyless = method === 'HEAD' || status === 204 || status === 304;
  // Straight into the client's response: Fastify's send pipeline (and a body stream) would
  // cost more than the rest of the request. The onResponse hook still runs on 'finish'.
  closeIfDraining(ctx);
  const relayed = exchange.respond(reply.raw, resHeaders, bodyless, tap);
  if (relayed === 'failed') {
    exchange.abandon();
    ctx.answeredBy = 'gateway';
    ctx.gw.metrics.upstreamErrors.inc({ kind: 'bad_gateway' });
    return answer(ctx, 'bad_gateway', 'the upstream response could not be relayed');
  }
  reply.hijack();
  if (relayed === 'gone') {
    clientGone(ctx);
  } else if (relayed === 'streaming') {
    // Only a body still on its way keeps the exchange: its byte count is read at the end, and
    // it reports a body cut short. (Holding every exchange in the request's state
    // kept undici's buffers alive past a scavenge and cost ~10 µs per request in GC.)
    ctx.upstream = exchange;
    exchange.onIncomplete = (cause) => {
      // A body the upstream broke off or that timed out is no answer to bill (ADR 0017); one
      // the client walked away from was answered.
      if (cause !== 'client') ctx.answeredBy = 'gateway';
      meter(ctx.gw, ctx.request, INCOMPLETE_STATUS[cause], 0);
    };
  } else {
    ctx.bytesOut = exchange.bodyBytes;
  }
  return undefined;
}
