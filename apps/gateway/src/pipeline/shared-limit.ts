import type { LimitVerdict } from '../limits/enforce-limits';
import { NEXT, type RequestContext, type Step } from './context';
import { clientIp } from './ip-rules';
import { answer, JSON_TYPE, leftEarly } from './reply';

/**
 * Routes with a route-wide limit, APIs with a per-address limit (ADR 0025): after the caller is
 * authorised (refused calls use up nothing shared) and before the key's own limits (a call the
 * shared limit refuses doesn't use up the key's rate or quota). Same algorithms, same headers.
 */
export function sharedLimit(ctx: RequestContext): Step | Promise<Step> {
  const api = ctx.api!;
  const ip = api.policy.perIpRateLimit ? clientIp(ctx) : null;
  const verdict = ctx.gw.limits.enforceShared(api, ctx.route!, ip, ctx.request.id);
  if (verdict instanceof Promise) return verdict.then((v) => decided(ctx, v));
  return decided(ctx, verdict);
}

function decided(ctx: RequestContext, verdict: LimitVerdict): Step {
  if (verdict.kind === 'allow') ctx.limitHeaders = verdict.headers;
  else if (verdict.kind === 'reject') {
    ctx.rejected = verdict.reason;
    const reply = ctx.reply;
    if (reply.raw.destroyed) return leftEarly(ctx);
    reply.code(429).header('content-type', JSON_TYPE).header('x-request-id', ctx.request.id).headers(verdict.headers);
    return reply.send(JSON.stringify(verdict.body));
  } else if (verdict.kind === 'unavailable') {
    ctx.rejected = 'unavailable';
    return answer(ctx, 'unavailable', 'rate limiting is unavailable and this API fails closed', { 'retry-after': '1' });
  }
  return NEXT;
}
