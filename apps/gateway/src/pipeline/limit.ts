import { clientAddress } from '@tollgate/config';
import { mergeLimitHeaders, subjectId, type LimitVerdict } from '../limits/enforce-limits';
import { NEXT, type RequestContext, type Step } from './context';
import { answer, closeIfDraining, JSON_TYPE, leftEarly } from './reply';

/**
 * Rate limits and quota: one Redis round trip at most, none when a reservation covers the call
 * (ADR 0013), when a cold key's lookup already decided it or when the key is refused until its
 * reset (ADR 0020). Callers without a key count by their JWT subject, else by client address.
 */
export function limit(ctx: RequestContext): Step | Promise<Step> {
  const { gw } = ctx;
  const subject = (ctx.subject ??= {
    kind: 'anonymous',
    id: subjectId(`ip:${clientAddress(ctx.req.socket.remoteAddress, ctx.headers['x-forwarded-for'], gw.isTrusted)}`),
  });
  const verdict = ctx.coldVerdict ?? gw.limits.enforce(ctx.api!, ctx.route!, subject, ctx.request.id, Date.now());
  if (verdict instanceof Promise) return verdict.then((v) => decided(ctx, v));
  return decided(ctx, verdict);
}

function decided(ctx: RequestContext, verdict: LimitVerdict): Step {
  if (verdict.kind === 'allow') {
    // A route-wide or per-address limit decided first (shared-limit.ts): both sets of headers.
    const shared = ctx.limitHeaders;
    ctx.limitHeaders = shared === null ? verdict.headers : mergeLimitHeaders(shared, verdict.headers);
  } else if (verdict.kind === 'reject') {
    ctx.rejected = verdict.reason;
    const reply = ctx.reply;
    if (reply.raw.destroyed) return leftEarly(ctx);
    closeIfDraining(ctx);
    reply.code(429).header('content-type', JSON_TYPE).header('x-request-id', ctx.request.id).headers(verdict.headers);
    return reply.send(JSON.stringify(verdict.body));
  } else if (verdict.kind === 'unavailable') {
    ctx.rejected = 'unavailable';
    return answer(ctx, 'unavailable', 'rate limiting is unavailable and this API fails closed', { 'retry-after': '1' });
  }
  return NEXT;
}

/** The client's address: the socket peer, or — behind trusted proxies — the nearest untrusted hop. */
export { clientAddress };
