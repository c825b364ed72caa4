import { coalesce, lookupCache, sendCached, type CacheState } from '../cache/cache-flow';
import { NEXT, type RequestContext, type Step } from './context';
import { closeIfDraining, leftEarly } from './reply';
import { isHeldUpgrade } from '../websocket/proxy';
import { withCors } from './cors';

/**
 * Routes with `cacheTtlSeconds > 0` (ADR 0012): after limits (a hit is a counted call), keyed on
 * what the upstream would see. Concurrent misses for one URL wait for the first one's fill.
 */
export function cacheLookup(ctx: RequestContext): Step | Promise<Step> {
  const cache = ctx.gw.cache;
  if (cache === null) return NEXT;
  // A WebSocket handshake is never answered from the cache (ADR 0026).
  if ((ctx.req as { upgrade?: boolean }).upgrade === true && isHeldUpgrade(ctx.req)) return NEXT;
  const api = ctx.api!;
  const route = ctx.route!;
  const cached = lookupCache({
    cache,
    method: ctx.method,
    tenant: ctx.tenant!,
    api,
    route,
    rest: ctx.rest,
    query: ctx.query,
    requestHeaders: ctx.headers,
    forwardHeaders: ctx.upstreamHeaders!,
  });
  if (cached.kind !== 'miss') return looked(ctx, cached);
  const timeouts = api.policy.timeouts;
  return coalesce(cached, Math.min(timeouts.headersMs, route.policy.timeoutMs ?? timeouts.requestMs)).then((c) => {
    if (c.end) ctx.reply.raw.once('close', c.end);
    return looked(ctx, c.state);
  });
}

function looked(ctx: RequestContext, cached: CacheState): Step {
  ctx.cached = cached;
  if (cached.kind !== 'hit') return NEXT;
  ctx.cacheHit = true;
  ctx.answeredBy = 'upstream';
  // The wait for a coalesced fill may have outlasted the client.
  if (ctx.reply.raw.destroyed) return leftEarly(ctx);
  const cache = ctx.gw.cache!;
  closeIfDraining(ctx);
  ctx.bytesOut = ctx.method === 'HEAD' ? 0 : cached.entry.body.length;
  const own = ctx.corsHeaders === null ? ctx.limitHeaders : withCors(ctx.limitHeaders, ctx.corsHeaders, cached.entry.headers.vary);
  return sendCached(ctx.reply, cache, cached.entry, ctx.method, ctx.headers, own, ctx.request.id);
}
